import type { AgentCredentialFiles, AgentPublicKey } from "./agentCredential";
import type { WarmAgentSettings } from "./warmStart";
import type { AgentIdentity } from "./contract";
import type { BilledSize } from "./cost";

/**
 * What the tasks need from the place agents run in. Each provider is given its settings when it is made;
 * every method speaks of agents by name (the container's name is the agent's name).
 */
export interface AgentProvider {
  /** One line saying where agents run, for logs and summaries. */
  readonly description: string;
  /** What else to check when agents do not come online in time, given the provider's settings; for the timeout message. */
  readonly timeoutHint?: string;
  /** Region and size of the containers it creates, once prepare has resolved the region; undefined when they have no price (Docker). */
  readonly billedSize?: BilledSize;
  /** Set when agents are claimed from a pool of containers started ahead (a warm start) instead of created. */
  readonly warm?: WarmStart;
  /** Checks settings, access and room for the planned agents before anything is created; throws a UserError naming the fix. */
  prepare(plan?: LaunchPlan): Promise<void>;
  create(spec: AgentContainerSpec): Promise<void>;
  /** States of the named containers for one polling round, with a bounded number of requests. */
  pollStatuses(names: readonly string[]): Promise<Map<string, ContainerStatus>>;
  status(name: string): Promise<ContainerStatus>;
  logs(name: string): Promise<string>;
  /** Removes the container; resolves false when it was already gone. */
  remove(name: string): Promise<boolean>;
  /** Containers of ours (by tags or labels) for the given pool. */
  list(pool: string): Promise<LaunchedContainer[]>;
}

/**
 * A warm start: a container that runs already, waiting for its settings, is claimed under the agent's name. It
 * makes its own key and prints only the public half; the task registers the agent with it and hands the container
 * the agent's settings, none of them secret. Nothing secret travels in either request.
 */
export interface WarmStart {
  /** One line saying where containers are claimed from, for logs. */
  readonly description: string;
  /** Claims a container for the agent; `warm` is false when none was ready and one was created cold instead. */
  claim(identity: AgentIdentity): Promise<{ warm: boolean }>;
  /** The public key the claimed container printed, or undefined while it has printed none yet. */
  publicKey(name: string): Promise<AgentPublicKey | undefined>;
  /** Hands the claimed container its agent's settings. */
  deliver(name: string, settings: WarmAgentSettings): Promise<void>;
}

/** What a start is about to create. */
export interface LaunchPlan {
  count: number;
}

export interface AgentContainerSpec {
  identity: AgentIdentity;
  image: string;
  /** Visible environment of the container. */
  environment: Readonly<Record<string, string>>;
  /**
   * What the container authenticates with, never part of its visible environment: the registration token
   * (registration "token"), or the agent's own credential files (registration "agentCredential"). Exactly one.
   */
  token?: string;
  agentCredential?: AgentCredentialFiles;
}

export type ContainerState = "provisioning" | "running" | "exited" | "failed" | "missing";

export interface ContainerStatus {
  state: ContainerState;
  exitCode?: number;
  /** What the platform says about the state, such as a provisioning error. */
  detail?: string;
  /** When the container started running, as the platform reports it. */
  startedAt?: Date;
  /** When the container exited, as the platform reports it. */
  finishedAt?: Date;
}

export interface LaunchedContainer {
  identity: AgentIdentity;
  /** What the container group is billed by, as the platform reports it; undefined when it has no price (Docker). */
  billedSize?: BilledSize;
}

export function isFinished(status: ContainerStatus): boolean {
  return status.state === "exited" || status.state === "failed" || status.state === "missing";
}

export function describeStatus(status: ContainerStatus): string {
  const parts: string[] = [status.state];
  if (status.exitCode !== undefined) parts.push(`exit code ${status.exitCode}`);
  if (status.detail) parts.push(status.detail);
  return parts.join(", ");
}

/** Azure DevOps pool names are case-insensitive. */
export function samePool(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

export interface Pool {
  id: number;
  name: string;
}

/** An agent of a pool, reduced to what the tasks decide on. */
export interface PoolAgent {
  id: number;
  name: string;
  online: boolean;
  /** When the agent's status last changed; while it is online, when it came online. */
  statusChangedOn?: Date;
  /** The job the agent runs now. */
  currentJob?: { name: string } & JobTimes;
  /** The last job the agent finished. */
  lastJob?: { name: string; result: string } & JobTimes;
  createdOn?: Date;
  /** Value of the run-key capability, when capabilities were asked for. */
  runKey?: string;
}

/** When a job was queued, reached its agent, and finished, as the pool's job request says. */
export interface JobTimes {
  queued?: Date;
  started?: Date;
  finished?: Date;
}

/** The agent pool operations the tasks use; clients/azureDevOps implements it over the REST API. */
export interface PoolAccess {
  /** The pool by name; a clear error when it is missing or cannot take self-hosted agents. */
  findPool(name: string): Promise<Pool>;
  /** Fails when the token's identity cannot register and remove agents in the pool. */
  checkCanManage(pool: Pool): Promise<void>;
  /** All agents of the pool, with what they run and their capabilities, in one request. */
  listAgents(pool: Pool): Promise<PoolAgent[]>;
  /** Removes an agent registration; resolves false when it was already gone. */
  deleteAgent(pool: Pool, agentId: number): Promise<boolean>;
  /** Registers an agent with its public key, as config.sh does; the answer carries its OAuth client. */
  registerAgent(pool: Pool, registration: NewAgentRegistration): Promise<RegisteredAgent>;
  /** The newest agent package for a platform (e.g. linux-x64), from the organization's packages API; undefined when it lists none. */
  agentPackage(platform: string): Promise<AgentPackage | undefined>;
}

export interface NewAgentRegistration {
  name: string;
  /** The version of the agent the container runs; undefined when unknown (an agent baked into the image). */
  version?: string;
  publicKey: AgentPublicKey;
  systemCapabilities: Readonly<Record<string, string>>;
}

export interface RegisteredAgent {
  id: number;
  /** The agent's OAuth client; a server that gives none cannot run agents without a token. */
  clientId?: string;
  authorizationUrl?: string;
}

export interface AgentPackage {
  version: string;
  downloadUrl: string;
  /** SHA-256 of the package, hex; undefined when the server lists none (Azure DevOps Server serving its own). */
  sha256?: string;
}
