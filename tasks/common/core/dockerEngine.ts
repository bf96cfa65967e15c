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
