// In-memory stand-ins for the orchestration's ports: a provider whose containers and a pool whose agents follow
// a script in virtual time (sinon fake timers drive every setTimeout), and a log that keeps what it was told.
import sinon from "sinon";
import { ENV, type AgentIdentity } from "../../tasks/common/core/contract";
import type { Log } from "../../tasks/common/core/log";
import type {
  AgentContainerSpec,
  AgentProvider,
  ContainerStatus,
  LaunchedContainer,
  NewAgentRegistration,
  Pool,
  PoolAccess,
  PoolAgent,
} from "../../tasks/common/core/ports";
import { DEFAULT_POLL_INTERVAL_MS } from "../../tasks/common/core/timing";
import {
  startAgents,
  type StartContext,
  type StartOptions,
  type StartResult,
} from "../../tasks/common/start/startAgents";
import { reusedAgentKey } from "../agentKeys";

/** One call to a port, in the order it was made, at virtual time `at` (ms since the test began). */
export interface Call {
  method: string;
  name?: string;
  at: number;
}

/** What happens to the container and the agent of one name once it is created, in ms after its creation. */
export interface AgentScript {
  registersAfterMs?: number;
  onlineAfterMs?: number;
  /** The container stops by itself. */
  stops?: { afterMs: number; state: "exited" | "failed"; exitCode?: number; detail?: string };
  logs?: string;
}

/** The default: registers after 2 s, online after 3 s, never stops. */
export const PROMPT_AGENT: AgentScript = { registersAfterMs: 2000, onlineAfterMs: 3000 };

type Method =
  | "prepare"
  | "create"
  | "pollStatuses"
  | "status"
  | "logs"
  | "remove"
  | "list"
  | "findPool"
  | "checkCanManage"
  | "listAgents"
  | "deleteAgent"
  | "registerAgent"
  | "agentPackage";

interface Failure {
  method: Method;
  /** Fails only calls about this name (create, status, logs, remove, deleteAgent). */
  name?: string;
  error: Error;
  /** How many calls fail; all when undefined. */
  times?: number;
}

interface FakeContainer {
  identity: AgentIdentity;
  status: ContainerStatus;
  logs: string;
  environment: Readonly<Record<string, string>>;
  token: string;
}

/** An error with an HTTP status, as the SDK clients throw. */
export function httpError(status: number, message: string): Error {
  return Object.assign(new Error(message), { statusCode: status });
}

/**
 * A provider and a pool that share one virtual world: creating a container schedules its agent's registration
 * and coming online, as the agent in a real container would.
 */
export class FakeWorld {
  readonly calls: Call[] = [];
  readonly containers = new Map<string, FakeContainer>();
  readonly agents = new Map<string, PoolAgent>();
  readonly pool: Pool = { id: 7, name: "Default" };
  /** Scripts by agent name; names without one follow `defaultScript`. */
  readonly scripts = new Map<string, AgentScript>();
  defaultScript: AgentScript = PROMPT_AGENT;
  /** Called at the start of every call, before it fails or answers: lets a test act at an exact point. */
  onCall?: (call: Call) => void;
  private readonly failures: Failure[] = [];
  private nextAgentId = 1;

  constructor(readonly clock: sinon.SinonFakeTimers) {}

  /** Makes matching calls throw `error`, `times` times or always. */
  fail(method: Method, error: Error, options: { name?: string; times?: number } = {}): void {
    this.failures.push({ method, error, ...options });
  }

  callsOf(method: Method): Call[] {
    return this.calls.filter((call) => call.method === method);
  }

  /** Records the call; settles as the port would answer it, failing when a failure is set for it. */
  private record(method: Method, name?: string): Promise<void> {
    const call = { method, name, at: this.clock.now };
    this.calls.push(call);
    this.onCall?.(call);
    const failure = this.failures.find(
      (candidate) =>
        candidate.method === method &&
        (candidate.name === undefined || candidate.name === name) &&
        candidate.times !== 0,
    );
    if (!failure) return Promise.resolve();
    if (failure.times !== undefined) failure.times -= 1;
    return Promise.reject(failure.error);
  }

  /** A container as the start task leaves it, created `minutesAgo` minutes before now. */
  addContainer(
    name: string,
    options: {
      runKey: string;
      minutesAgo?: number;
      lifetimeMinutes?: number;
      status?: ContainerStatus;
      logs?: string;
    },
  ): void {
    this.containers.set(name, {
      identity: {
        name,
        pool: this.pool.name,
        runKey: options.runKey,
        created: new Date(this.clock.now - (options.minutesAgo ?? 0) * 60_000),
        lifetimeMinutes: options.lifetimeMinutes ?? 120,
      },
      status: options.status ?? { state: "running" },
      logs: options.logs ?? `agent ${name} listening for jobs\n`,
      environment: {},
      token: "",
    });
  }

  /** Registers an agent in the pool, as config.sh does. */
  addAgent(name: string, fields: Partial<Omit<PoolAgent, "id" | "name">> = {}): PoolAgent {
    const agent: PoolAgent = {
      id: this.nextAgentId++,
      name,
      online: false,
      createdOn: new Date(this.clock.now),
      ...fields,
    };
    this.agents.set(name, agent);
    return agent;
  }

  /** Ends the agent's current job; with `exit`, its container then exits 0 and the agent unregisters itself. */
  finishJob(name: string, result = "succeeded", then: "exit" | "stay" = "stay"): void {
    const agent = this.agents.get(name);
    if (!agent?.currentJob) throw new Error(`${name} runs no job`);
    agent.lastJob = { ...agent.currentJob, result, finished: new Date(this.clock.now) };
    agent.currentJob = undefined;
    if (then === "exit") {
      this.agents.delete(name);
      this.stopContainer(name, { state: "exited", exitCode: 0, detail: "Completed" });
    }
  }

  stopContainer(name: string, status: ContainerStatus): void {
    const container = this.containers.get(name);
    if (container) container.status = status;
  }

  /** Runs `action` at virtual time `atMs` after now. */
  at(atMs: number, action: () => void): void {
    setTimeout(action, atMs);
  }

  readonly provider: AgentProvider = {
    description: "the fake provider",
    prepare: async () => await this.record("prepare"),
    create: async (spec: AgentContainerSpec) => {
      const name = spec.identity.name;
      await this.record("create", name);
      const script = this.scripts.get(name) ?? this.defaultScript;
      this.containers.set(name, {
        identity: spec.identity,
        status: { state: "running" },
        logs: script.logs ?? `agent ${name} starting\n`,
        environment: spec.environment,
        token: spec.token ?? "",
      });
      const alive = () => this.containers.get(name)?.status.state === "running";
      if (script.registersAfterMs !== undefined)
        this.at(
          script.registersAfterMs,
          () => alive() && this.addAgent(name, { runKey: spec.identity.runKey }),
        );
      if (script.onlineAfterMs !== undefined)
        this.at(script.onlineAfterMs, () => {
          const agent = this.agents.get(name);
          if (agent && alive()) agent.online = true;
        });
      const stops = script.stops;
      if (stops)
        this.at(stops.afterMs, () => {
          const agent = this.agents.get(name);
          if (agent) agent.online = false;
          this.stopContainer(name, { state: stops.state, exitCode: stops.exitCode, detail: stops.detail });
        });
    },
    pollStatuses: async (names: readonly string[]) => {
      await this.record("pollStatuses");
      return new Map(names.map((name) => [name, this.statusOf(name)]));
    },
    status: async (name: string) => {
      await this.record("status", name);
      return this.statusOf(name);
    },
    logs: async (name: string) => {
      await this.record("logs", name);
      const container = this.containers.get(name);
      if (!container) throw httpError(404, `container ${name} not found`);
      return container.logs;
    },
    remove: async (name: string) => {
      await this.record("remove", name);
      const existed = this.containers.delete(name);
      const agent = this.agents.get(name);
      if (agent) agent.online = false;
      return existed;
    },
    list: async (pool: string) => {
      await this.record("list");
      return [...this.containers.values()]
        .filter((container) => container.identity.pool.toLowerCase() === pool.toLowerCase())
        .map((container): LaunchedContainer => ({ identity: { ...container.identity } }));
    },
  };

  readonly pools: PoolAccess = {
    findPool: async (name: string) => {
      await this.record("findPool");
      if (name.toLowerCase() !== this.pool.name.toLowerCase())
        throw new Error(`Input 'agentPool': '${name}' was not found.`);
      return this.pool;
    },
    checkCanManage: async () => await this.record("checkCanManage"),
    listAgents: async () => {
      await this.record("listAgents");
      return [...this.agents.values()].map((agent) => ({ ...agent }));
    },
    deleteAgent: async (_pool: Pool, agentId: number) => {
      const agent = [...this.agents.values()].find((candidate) => candidate.id === agentId);
      await this.record("deleteAgent", agent?.name);
      if (!agent) return false;
      this.agents.delete(agent.name);
      return true;
    },
    registerAgent: async (_pool: Pool, registration: NewAgentRegistration) => {
      await this.record("registerAgent", registration.name);
      const agent = this.addAgent(registration.name, {
        runKey: registration.systemCapabilities[ENV.runKey],
      });
      return {
        id: agent.id,
        clientId: `00000000-0000-4000-8000-${String(agent.id).padStart(12, "0")}`,
        authorizationUrl: "https://vstoken.dev.azure.com/fake-organization",
      };
    },
    agentPackage: async (platform: string) => {
      await this.record("agentPackage");
      return {
        version: "4.260.0",
        downloadUrl: `https://download.agent.dev.azure.com/agent/4.260.0/vsts-agent-${platform}-4.260.0.tar.gz`,
        sha256: "0".repeat(64),
      };
    },
  };

  private statusOf(name: string): ContainerStatus {
    return { ...(this.containers.get(name)?.status ?? { state: "missing" }) };
  }

  /** What is left of the world: container and registration names. */
  left(): { containers: string[]; agents: string[] } {
    return { containers: [...this.containers.keys()].sort(), agents: [...this.agents.keys()].sort() };
  }
}

/** A log that keeps every line, by level, and every group. */
export class RecordingLog implements Log {
  readonly lines: { level: "info" | "warn"; message: string }[] = [];
  readonly groups: { title: string; lines: string }[] = [];

  info(message: string): void {
    this.lines.push({ level: "info", message });
  }

  warn(message: string): void {
    this.lines.push({ level: "warn", message });
  }

  group(title: string, lines: string): void {
    this.groups.push({ title, lines });
  }

  get text(): string {
    return this.lines.map((line) => line.message).join("\n");
  }

  get warnings(): string[] {
    return this.lines.filter((line) => line.level === "warn").map((line) => line.message);
  }
}

/** Fake timers from virtual time 0, with room for the many rounds of a long wait. */
export function installVirtualClock(): sinon.SinonFakeTimers {
  return sinon.useFakeTimers({ now: 0, toFake: ["setTimeout", "clearTimeout", "Date"], loopLimit: 100_000 });
}

export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Longest virtual time an operation may take before the test calls it hung. */
const VIRTUAL_HANG_GUARD_MS = 24 * 60 * 60_000;

/** Runs virtual time, timer by timer, until the operation ends, and says how it ended. */
export async function runToEnd<T>(clock: sinon.SinonFakeTimers, operation: Promise<T>): Promise<Settled<T>> {
  const ended: { as?: Settled<T> } = {};
  const settled = operation.then(
    (value) => (ended.as = { ok: true, value }),
    (error: unknown) => (ended.as = { ok: false, error }),
  );
  const began = clock.now;
  for (;;) {
    await clock.tickAsync(0);
    if (ended.as) break;
    if (clock.countTimers() === 0) throw new Error("the operation waits for something that never comes");
    if (clock.now - began > VIRTUAL_HANG_GUARD_MS) throw new Error("the operation ran a whole virtual day");
    await clock.nextAsync();
  }
  return settled;
}

/** What the start suites share: the launch id, the registration token and the agent names they give. */
export const LAUNCH_ID = "abcde";
export const TOKEN = "registration-token-0123456789";
export const nameOf = (number: number) => `ephemeral-4711-${LAUNCH_ID}-${number}`;

/** A start of one agent in pool Default with run key 4711, registration token mode unless overridden. */
export function startOptionsWith(overrides: Partial<StartOptions> = {}): StartOptions {
  return {
    pool: "Default",
    runKey: "4711",
    namePrefix: "ephemeral",
    count: 1,
    image: "myregistry.azurecr.io/ephemeral-agent:1",
    collectionUrl: "https://dev.azure.com/myorg/",
    token: TOKEN,
    environment: { FOO: "bar" },
    onlineTimeoutMs: 10 * 60_000,
    maxLifetimeMinutes: 120,
    keepOnFailure: false,
    pollIntervalMs: DEFAULT_POLL_INTERVAL_MS.start,
    ...overrides,
  };
}

/** Runs startAgents in the world's virtual time and says how it ended. */
export function startInWorld(
  world: FakeWorld,
  clock: sinon.SinonFakeTimers,
  options: StartOptions,
  context: Pick<StartContext, "log" | "signal"> &
    Partial<Pick<StartContext, "provider" | "pools" | "newAgentKey">>,
): Promise<Settled<StartResult>> {
  const operation = startAgents(options, {
    provider: world.provider,
    pools: world.pools,
    clock: () => clock.now,
    launchId: LAUNCH_ID,
    newAgentKey: reusedAgentKey,
    ...context,
  });
  return runToEnd(clock, operation);
}
