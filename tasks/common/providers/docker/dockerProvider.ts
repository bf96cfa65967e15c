import Docker from "dockerode";
import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { ENV, TAG, identityFromTags, tagsFor } from "../../core/contract";
import { InputError, UserError, errorMessage, httpStatusOf } from "../../core/errors";
import {
  SHARED_ENGINE_SOCKET,
  socketToShare,
  type DockerConnection,
  type PullPolicy,
} from "../../core/dockerEngine";
import type { Log } from "../../core/log";
import { demultiplexLogs, privateFilesArchive, tokenArchive } from "./dockerWire";
import {
  samePool,
  type AgentContainerSpec,
  type AgentProvider,
  type ContainerStatus,
  type LaunchedContainer,
} from "../../core/ports";

export interface DockerSettings {
  connection: DockerConnection;
  /** The agent image, made present on the engine by prepare() as pullPolicy says; absent for teardown. */
  image?: string;
  /** Network the containers join; the engine's default bridge when undefined. */
  network?: string;
  pullPolicy: PullPolicy;
  registry?: { server: string; username: string; password: string };
  /** Mount the engine's own Unix socket into each agent's container (shareDockerEngine). */
  shareEngine?: boolean;
  /** Where the warning about a shared engine goes. */
  log?: Log;
}

/** Where the image's start script looks for the token; the directory belongs to the image's user. */
export const TOKEN_DIRECTORY = "/azp";
export const TOKEN_FILE_NAME = ".token";
/** Where, under TOKEN_DIRECTORY, the start script finds the agent's own credential files. */
export const AGENT_CREDENTIAL_DIRECTORY = "agent-credential";
/** The agent image's non-root user "agent". */
export const AGENT_UID = 1000;
/**
 * Each agent's own Docker configuration (DOCKER_CONFIG): a tmpfs, empty at the start, owned by the agent user,
 * gone with the container, so that one job's `docker login` never reaches another job nor the host.
 */
export const DOCKER_CONFIG_DIRECTORY = `${TOKEN_DIRECTORY}/.docker`;
const PING_TIMEOUT_MS = 10_000;
/**
 * Time a running container gets after SIGTERM before the engine kills it. The image's start script gives the
 * agent 35 s to cancel its job (the listener itself waits up to 30 s), then makes up to three unregister
 * attempts of at most 15 s each, 5 s apart: 90 s at worst. Docker's default of 10 s would cut that short and
 * leave registrations behind; a container that finishes sooner ends the stop sooner.
 */
const STOP_TIMEOUT_SECONDS = 100;
const DEFAULT_SOCKET = "/var/run/docker.sock";

const CONNECTION_FAILURES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ENOENT",
  "EACCES",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ABORT_ERR",
]);

export function createDockerClient(connection: DockerConnection): Docker {
  if (connection.kind === "local") {
    try {
      return new Docker();
    } catch (error) {
      throw new UserError(
        `The DOCKER_HOST environment variable of the agent is not usable: ${errorMessage(error)}`,
      );
    }
  }
  const url = parseEndpointUrl(connection.url);
  if (url.protocol === "unix:") return new Docker({ socketPath: url.pathname });
  const hasTlsMaterial = Boolean(connection.ca || connection.cert || connection.key);
  const secure =
    url.protocol === "https:" || (url.protocol === "tcp:" && (hasTlsMaterial || url.port === "2376"));
  // Every option is set, so that DOCKER_HOST and DOCKER_CERT_PATH of the agent machine cannot mix in.
  return new Docker({
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port || (secure ? "2376" : "2375"),
    protocol: secure ? "https" : "http",
    ca: connection.ca,
    cert: connection.cert,
    key: connection.key,
  });
}

function parseEndpointUrl(value: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  const supported = ["tcp:", "https:", "http:", "unix:"];
  if (
    !url ||
    !supported.includes(url.protocol) ||
    (url.protocol === "unix:" ? !url.pathname : !url.hostname)
  ) {
    throw new InputError(
      "dockerEndpoint",
      `'${value}' is not a Docker engine address: use tcp://host:2376 (TLS), tcp://host:2375 or unix:///var/run/docker.sock.`,
    );
  }
  return url;
}

/** The address the client talks to, as the user would write it. */
export function engineAddress(connection: DockerConnection): string {
  if (connection.kind === "remote") return connection.url;
  if (process.env.DOCKER_HOST) return process.env.DOCKER_HOST;
  if (process.platform === "win32") return "npipe:////./pipe/docker_engine";
  // docker-modem prefers Docker Desktop's per-user socket when there is one.
  const userSocket = path.join(homedir(), ".docker", "run", "docker.sock");
  return `unix://${existsSync(userSocket) ? userSocket : DEFAULT_SOCKET}`;
}

/** The engine socket as a container gets it: the host's socket, and the socket's group for the agent user. */
interface SharedEngine {
  socketPath: string;
  groupId: number;
}

export class DockerProvider implements AgentProvider {
  private readonly address: string;
  private sharedEngine: SharedEngine | undefined;

  constructor(
    private readonly settings: DockerSettings,
    private readonly docker: Docker = createDockerClient(settings.connection),
  ) {
    this.address = engineAddress(settings.connection);
  }

  get description(): string {
    const network = this.settings.network ? `network ${this.settings.network}` : "default bridge network";
    return `Docker engine at ${this.address} (${network})`;
  }

  async prepare(): Promise<void> {
    if (this.settings.shareEngine) this.sharedEngine = await this.engineToShare();
    await this.ping();
    if (this.settings.network) await this.checkNetwork(this.settings.network);
    if (this.settings.image) await this.provideImage(this.settings.image);
  }

  async create(spec: AgentContainerSpec): Promise<void> {
    const name = spec.identity.name;
    const tokenPath = `${TOKEN_DIRECTORY}/${TOKEN_FILE_NAME}`;
    const environment: Record<string, string> = spec.agentCredential
      ? { ...spec.environment }
      : { ...spec.environment, [ENV.tokenFile]: tokenPath };
    environment.DOCKER_CONFIG = DOCKER_CONFIG_DIRECTORY;
    const shared = this.sharedEngine;
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer({
        name,
        Image: spec.image,
        Env: Object.entries(environment).map(([variable, value]) => `${variable}=${value}`),
        Labels: tagsFor(spec.identity),
        HostConfig: {
          NetworkMode: this.settings.network,
          AutoRemove: false,
          RestartPolicy: { Name: "no" },
          Tmpfs: { [DOCKER_CONFIG_DIRECTORY]: `uid=${AGENT_UID},gid=${AGENT_UID},mode=0700` },
          ...(shared
            ? { Binds: [`${shared.socketPath}:${SHARED_ENGINE_SOCKET}`], GroupAdd: [String(shared.groupId)] }
            : {}),
        },
      });
    } catch (error) {
      if (httpStatusOf(error) === 409) {
        throw new UserError(
          `A container named ${name} already exists on the Docker host at ${this.address}: remove it (docker rm -f ${name}) or use another agentNamePrefix.`,
        );
      }
      throw this.explain(error, `create container ${name}`);
    }
    try {
      // The token or the agent's credential go in as files before the start: an environment variable would
      // show in docker inspect.
      const secretArchive = spec.agentCredential
        ? await privateFilesArchive(AGENT_CREDENTIAL_DIRECTORY, spec.agentCredential, AGENT_UID)
        : await tokenArchive(TOKEN_FILE_NAME, spec.token ?? "", AGENT_UID);
      await container.putArchive(secretArchive, { path: TOKEN_DIRECTORY });
      await container.start();
    } catch (error) {
      // A container that never started holds nothing worth keeping; the original failure is what matters.
      await container.remove({ force: true }).catch(() => undefined);
      if (httpStatusOf(error) === 404 && /could not find the file/i.test(dockerMessage(error))) {
        throw new InputError(
          "image",
          `image '${spec.image}' has no ${TOKEN_DIRECTORY} directory for the agent's token: use the ephemeral agent image, or an image built FROM it.`,
        );
      }
      throw this.explain(error, `start container ${name}`);
    }
  }

  async pollStatuses(names: readonly string[]): Promise<Map<string, ContainerStatus>> {
    const listed = new Map<string, Docker.ContainerInfo>();
    for (const container of await this.listContainers([TAG.pool])) {
      for (const containerName of container.Names) listed.set(containerName.replace(/^\//, ""), container);
    }
    const statuses = new Map<string, ContainerStatus>();
    const unexplained: string[] = [];
    for (const name of names) {
      const container = listed.get(name);
      const status: ContainerStatus = container ? statusOfListed(container) : { state: "missing" };
      statuses.set(name, status);
      if (status.state === "exited" && status.exitCode === undefined) unexplained.push(name);
    }
    // The list's status text carries the exit code except for dead containers: only those are read in full.
    await Promise.all(unexplained.map(async (name) => statuses.set(name, await this.status(name))));
    return statuses;
  }

  async status(name: string): Promise<ContainerStatus> {
    try {
      return statusOfInspected((await this.docker.getContainer(name).inspect()).State);
    } catch (error) {
      if (httpStatusOf(error) === 404) return { state: "missing" };
      throw this.explain(error, `read container ${name}`);
    }
  }

  async logs(name: string): Promise<string> {
    try {
      const output = await this.docker.getContainer(name).logs({ stdout: true, stderr: true, follow: false });
      return demultiplexLogs(output);
    } catch (error) {
      if (httpStatusOf(error) === 404) return "";
      throw this.explain(error, `read the log of container ${name}`);
    }
  }

  async remove(name: string): Promise<boolean> {
    const container = this.docker.getContainer(name);
    try {
      // A stop first gives the agent its SIGTERM, to finish and unregister, before the forced removal.
      await container.stop({ t: STOP_TIMEOUT_SECONDS });
    } catch (error) {
      const status = httpStatusOf(error);
      if (status === 404) return false;
      if (status !== 304) throw this.explain(error, `stop container ${name}`);
    }
    try {
      await container.remove({ force: true });
    } catch (error) {
      const status = httpStatusOf(error);
      // Gone meanwhile, or already being removed: it existed when the stop reached it.
      if (status !== 404 && status !== 409) throw this.explain(error, `remove container ${name}`);
    }
    return true;
  }

  async list(pool: string): Promise<LaunchedContainer[]> {
    const launched: LaunchedContainer[] = [];
    // Pool names are case-insensitive, label filters are not: filter by the label's presence only.
    for (const container of await this.listContainers([TAG.pool])) {
      const identity = identityFromTags(container.Labels);
      if (identity && samePool(identity.pool, pool)) launched.push({ identity });
    }
    return launched;
  }

  private async listContainers(labelFilters: string[]): Promise<Docker.ContainerInfo[]> {
    try {
      return await this.docker.listContainers({ all: true, filters: { label: labelFilters } });
    } catch (error) {
      throw this.explain(error, "list containers");
    }
  }

  private async ping(): Promise<void> {
    // dockerode passes abortSignal through, but its typings do not declare the option.
    const ping = this.docker.ping.bind(this.docker) as (options: {
      abortSignal: AbortSignal;
    }) => Promise<unknown>;
    try {
      await ping({ abortSignal: AbortSignal.timeout(PING_TIMEOUT_MS) });
    } catch (error) {
      throw this.explain(error, "reach the Docker engine");
    }
  }

  /** The socket of the engine the task talks to, on this machine; refused for an engine on another one. */
  private async engineToShare(): Promise<SharedEngine> {
    const socketPath = socketToShare(this.address);
    let groupId: number;
    try {
      groupId = (await stat(socketPath)).gid;
    } catch (error) {
      throw new InputError(
        "shareDockerEngine",
        `the Docker engine's socket ${socketPath} cannot be read on the machine the start task runs on (${errorCode(error) ?? errorMessage(error)}): run the start job on the engine's host, or clear shareDockerEngine.`,
      );
    }
    this.settings.log?.warn(
      `shareDockerEngine: each agent's container gets the Docker engine's socket (${socketPath}). A job that can use the engine is root on this host: it can start a privileged container that mounts the host's file system, and it sees every other container on the engine. Share the engine only with pipelines you would give root on this host; otherwise give the builds a separate engine (another machine or VM).`,
    );
    return { socketPath, groupId };
  }

  private async checkNetwork(network: string): Promise<void> {
    try {
      await this.docker.getNetwork(network).inspect();
    } catch (error) {
      if (httpStatusOf(error) === 404) {
        throw new InputError(
          "dockerNetwork",
          `network '${network}' does not exist on the Docker host at ${this.address}: create it (docker network create ${network}) or pick one that docker network ls lists.`,
        );
      }
      throw this.explain(error, `read network ${network}`);
    }
  }

  private async provideImage(image: string): Promise<void> {
    const policy = this.settings.pullPolicy;
    const present = policy === "always" ? undefined : await this.imageIsPresent(image);
    if (policy === "never" && !present) {
      throw new InputError(
        "pullPolicy",
        `image '${image}' is not on the Docker host at ${this.address} and pullPolicy is never: put it there (docker pull or docker load on that host), or set pullPolicy to ifNotPresent.`,
      );
    }
    if (!present && policy !== "never") await this.pull(image);
  }

  private async imageIsPresent(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (error) {
      if (httpStatusOf(error) === 404) return false;
      throw this.explain(error, `read image ${image}`);
    }
  }

  private async pull(image: string): Promise<void> {
    const registry = this.settings.registry;
    const options = registry
      ? {
          authconfig: {
            username: registry.username,
            password: registry.password,
            serveraddress: registry.server,
          },
        }
      : {};
    let failure: string | undefined;
    try {
      const progress = await this.docker.pull(image, options);
      // The engine answers 200 at once and reports a failed pull as an error event in the progress stream.
      for await (const line of createInterface({ input: progress, crlfDelay: Infinity })) {
        const event = parseProgressEvent(line);
        if (event?.error) failure ??= event.error;
      }
    } catch (error) {
      if (httpStatusOf(error) === undefined) throw this.explain(error, `pull image ${image}`);
      failure = dockerMessage(error);
    }
    if (failure !== undefined) {
      throw new UserError(
        `The Docker host at ${this.address} could not pull image '${image}': ${failure.trim().replace(/\.$/, "")}. Check the image name and tag, the registry connection (registryConnection), and that the Docker host reaches the registry.`,
      );
    }
  }

  /** Says what failed and how to fix it; failures to connect name the dockerEndpoint input. */
  private explain(error: unknown, action: string): Error {
    if (error instanceof UserError) return error;
    const code = errorCode(error);
    if (code && (CONNECTION_FAILURES.has(code) || isTlsFailure(code))) {
      return new InputError(
        "dockerEndpoint",
        `${connectionProblem(code, this.address)} (while trying to ${action}).`,
      );
    }
    const status = httpStatusOf(error);
    return new Error(
      `Could not ${action} on the Docker host at ${this.address}${status ? ` (HTTP ${status})` : ""}: ${dockerMessage(error)}`,
    );
  }
}

function connectionProblem(code: string, address: string): string {
  if (code === "ABORT_ERR") {
    return `the Docker engine at ${address} did not answer within ${PING_TIMEOUT_MS / 1000} s: check that it runs and that the agent machine reaches it`;
  }
  if (code === "ENOENT") {
    return `there is no Docker engine socket at ${address}: install and start Docker on the agent machine, or set dockerEndpoint to a Docker host connection`;
  }
  if (code === "EACCES") {
    return `the agent's user may not open the Docker engine socket at ${address}: add that user to the docker group, or set dockerEndpoint to a Docker host connection`;
  }
  if (isTlsFailure(code)) {
    return `the TLS handshake with the Docker engine at ${address} failed (${code}): check the CA certificate, client certificate and key of the Docker host connection`;
  }
  return `cannot connect to the Docker engine at ${address} (${code}): check that it runs, listens there and that the agent machine reaches it`;
}

function isTlsFailure(code: string): boolean {
  return (
    /^(ERR_TLS_|ERR_SSL_|CERT_)/.test(code) ||
    [
      "DEPTH_ZERO_SELF_SIGNED_CERT",
      "SELF_SIGNED_CERT_IN_CHAIN",
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    ].includes(code)
  );
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The engine's own words from a dockerode error, which otherwise prefixes them with HTTP details. */
function dockerMessage(error: unknown): string {
  const body = (error as { json?: unknown } | null)?.json;
  if (
    typeof body === "object" &&
    body !== null &&
    typeof (body as { message?: unknown }).message === "string"
  ) {
    return (body as { message: string }).message;
  }
  return errorMessage(error)
    .replace(/^\(HTTP code \d+\) [^-]*- /, "")
    .trim();
}

function parseProgressEvent(line: string): { error?: string } | undefined {
  if (!line.trim()) return undefined;
  try {
    return JSON.parse(line) as { error?: string };
  } catch {
    return undefined;
  }
}

const EXIT_CODE_IN_STATUS = /^Exited \((-?\d+)\)/;

/** Maps a container of the list call (State plus a Status text such as "Exited (1) 3 seconds ago"). */
export function statusOfListed(container: Pick<Docker.ContainerInfo, "State" | "Status">): ContainerStatus {
  switch (container.State) {
    case "created":
      return { state: "provisioning", detail: "created" };
    case "exited":
    case "dead": {
      const exitCode = EXIT_CODE_IN_STATUS.exec(container.Status)?.[1];
      return exitCode === undefined
        ? { state: "exited", detail: container.Status }
        : { state: "exited", exitCode: Number(exitCode) };
    }
    case "removing":
      return { state: "missing", detail: "being removed" };
    case "running":
      return { state: "running" };
    default:
      return { state: "running", detail: container.State };
  }
}

export function statusOfInspected(state: Docker.ContainerInspectInfo["State"]): ContainerStatus {
  return { ...stateOfInspected(state), ...timesOfInspected(state) };
}

/**
 * StartedAt and FinishedAt of the Engine API's ContainerState ("the time when this container was last started",
 * "... last exited"); a container that never started or never exited has Go's zero time there.
 */
function timesOfInspected(
  state: Docker.ContainerInspectInfo["State"],
): Pick<ContainerStatus, "startedAt" | "finishedAt"> {
  const times: Pick<ContainerStatus, "startedAt" | "finishedAt"> = {};
  const startedAt = dockerTime(state.StartedAt);
  const finishedAt = dockerTime(state.FinishedAt);
  if (startedAt) times.startedAt = startedAt;
  if (finishedAt && startedAt && finishedAt >= startedAt) times.finishedAt = finishedAt;
  return times;
}

function dockerTime(text: string | undefined): Date | undefined {
  const at = new Date(text ?? "");
  return Number.isNaN(at.getTime()) || at.getUTCFullYear() <= 1 ? undefined : at;
}

function stateOfInspected(state: Docker.ContainerInspectInfo["State"]): ContainerStatus {
  switch (state.Status) {
    case "created":
      return state.Error
        ? { state: "failed", detail: state.Error }
        : { state: "provisioning", detail: "created" };
    case "exited":
    case "dead": {
      const detail = state.OOMKilled ? "out of memory" : state.Error || undefined;
      return { state: "exited", exitCode: state.ExitCode, ...(detail ? { detail } : {}) };
    }
    case "removing":
      return { state: "missing", detail: "being removed" };
    case "running":
      return { state: "running" };
    default:
      return { state: "running", detail: state.Status };
  }
}
