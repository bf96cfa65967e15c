import { InputError } from "./errors";

/**
 * What the platform layer reads from a Docker host service connection and the inputs say about the image, and
 * what the Docker provider is made with: shared here so that neither layer imports the other.
 */

export const PULL_POLICIES = ["always", "ifNotPresent", "never"] as const;
export type PullPolicy = (typeof PULL_POLICIES)[number];

/** The engine of the agent machine (DOCKER_HOST, or the default socket), or an engine at a URL. */
export type DockerConnection =
  | { kind: "local" }
  | {
      kind: "remote";
      /** tcp://host:2376, https://host:2376, http://host:2375 or unix:///path/docker.sock */
      url: string;
      /** PEM text, as a Docker host service connection holds it. */
      ca?: string;
      cert?: string;
      key?: string;
    };

/** Where a job finds the shared engine inside the agent's container: the Docker CLI's default socket. */
export const SHARED_ENGINE_SOCKET = "/var/run/docker.sock";

/**
 * The path of the engine's Unix socket on the machine the task runs on, to mount into the agents' containers
 * (shareDockerEngine). An engine reached over the network is refused: its socket is on another machine, and
 * handing a job the connection itself would hand it the client certificate's private key.
 */
export function socketToShare(address: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(address)?.[1]?.toLowerCase();
  if (scheme === "unix") {
    const socketPath = address.slice("unix://".length);
    if (socketPath.startsWith("/")) return socketPath;
  }
  if (scheme === "npipe") {
    throw new InputError(
      "shareDockerEngine",
      `the Docker engine at ${address} is a Windows named pipe, which a Linux agent container cannot use: run the start job on a Linux engine's host, or clear shareDockerEngine.`,
    );
  }
  throw new InputError(
    "shareDockerEngine",
    `the Docker engine at ${address} is reached over the network, so its Unix socket is on another machine, and the connection's client key must not reach a job: run the start job on that engine's host with no dockerEndpoint (or unix:///var/run/docker.sock), give the jobs a separate engine that they reach with their own credentials, or clear shareDockerEngine.`,
  );
}
