import type { AgentIdentity } from "../core/contract";
import type { BilledSize } from "../core/cost";
import { errorMessage } from "../core/errors";
import { formatDuration, type Log } from "../core/log";
import {
  describeStatus,
  isFinished,
  type AgentProvider,
  type Pool,
  type PoolAccess,
  type PoolAgent,
  type ContainerStatus,
  type LaunchedContainer,
} from "../core/ports";
import {
  isEphemeralAgentName,
  maySweepContainer,
  maySweepRegistration,
  shouldAwait,
  shouldGrantGrace,
  teardownOutcome,
  type SweepPolicy,
  type TeardownOutcome,
} from "./decisions";
import { Deadline, sleep, throwIfCancelled, type Clock } from "../core/timing";
import { listeningSince, type Milestones } from "../core/timeline";

export interface TeardownOptions {
  pool: string;
  runKey: string;
  /** Explicit agent names; found through the run key when empty. */
  agentNames: readonly string[];
  agentNamePrefix: string;
  awaitTimeoutMs: number;
  gracePeriodMs: number;
  showLogs: boolean;
  /** 0 turns the sweep off. */
  sweepOlderThanMinutes: number;
  pollIntervalMs: number;
}

export interface TeardownContext {
  provider: AgentProvider;
  pools: Pick<PoolAccess, "findPool" | "listAgents" | "deleteAgent">;
  log: Log;
  signal: AbortSignal;
  clock: Clock;
}

export interface AgentTeardown {
  name: string;
  lived?: string;
  job: string;
  container: string;
  registration: string;
  swept: boolean;
  /** From the container's creation (its tags) to its removal by this task; undefined when it was gone already. */
  lifetimeMs?: number;
  billedSize?: BilledSize;
  /** When the agent was requested, ran, came online, ran its job and was removed, as far as known. */
  milestones: Milestones;
}

export interface TeardownResult {
  outcome: TeardownOutcome;
  agents: AgentTeardown[];
  issues: string[];
  providerDescription: string;
}

type Removal = "removed" | "already gone" | "failed";

const PROGRESS_EVERY_MS = 60_000;

/** Awaits this run's agents, shows their logs, removes containers and registrations, and sweeps leftovers. */
export async function teardownAgents(
  options: TeardownOptions,
  context: TeardownContext,
): Promise<TeardownResult> {
  const { provider, pools, log } = context;
  const pool = await pools.findPool(options.pool);
  const issues: string[] = [];
  const reports: AgentTeardown[] = [];

  const launched = await provider.list(pool.name);
  let agents = await pools.listAgents(pool);
  const names = runAgentNames(options, launched, agents);
  if (names.length === 0) {
    log.info(
      `No ephemeral agents of run '${options.runKey}' were found in pool '${pool.name}' or on ${provider.description}.`,
    );
  } else {
    log.info(`Tearing down ${names.length} agent(s) of run '${options.runKey}': ${names.join(", ")}`);
    const seen: SeenAgents = { lastSeen: new Map(), onlineSince: new Map() };
    agents = await awaitJobs(names, pool, agents, seen, options, context, issues);
    await settleContainers(names, agents, options, context);
    const identities = new Map(launched.map((container) => [container.identity.name, container.identity]));
    const sizes = billedSizes(launched);
    reports.push(
      ...(await removeAgents(names, pool, { identities, ...seen, sizes }, options, context, issues, false)),
    );
  }

  if (options.sweepOlderThanMinutes > 0) {
    reports.push(...(await sweep(pool, new Set(names), options, context, issues)));
  }
  for (const report of reports) {
    log.info(
      `${report.swept ? "Swept" : "Agent"} ${report.name}: ${report.lived ? `lived ${report.lived}, ` : ""}job ${report.job}; container ${report.container}; registration ${report.registration}.`,
    );
  }
  return {
    outcome: teardownOutcome(issues),
    agents: reports,
    issues,
    providerDescription: provider.description,
  };
}

/** The run's agents: the names given, or those whose container tags or agent capabilities carry the run key. */
function runAgentNames(
  options: TeardownOptions,
  launched: readonly { identity: AgentIdentity }[],
  agents: readonly PoolAgent[],
): string[] {
  if (options.agentNames.length) return [...new Set(options.agentNames)];
  const names = new Set<string>();
  for (const container of launched)
    if (container.identity.runKey === options.runKey) names.add(container.identity.name);
  for (const agent of agents) if (agent.runKey === options.runKey) names.add(agent.name);
  return [...names].sort();
}

interface SeenAgents {
  /** Each agent as last listed, for agents that then unregister. */
  lastSeen: Map<string, PoolAgent>;
  /** When each agent came online, from a listing that showed it online: a one-job agent goes offline after its job. */
  onlineSince: Map<string, Date>;
}

/** Remembers what a listing says of the run's agents. */
function remember(names: readonly string[], agents: readonly PoolAgent[], seen: SeenAgents): void {
  const byName = new Map(agents.map((agent) => [agent.name, agent]));
  for (const name of names) {
    const agent = byName.get(name);
    if (!agent) continue;
    seen.lastSeen.set(name, agent);
    if (agent.online && agent.statusChangedOn && !seen.onlineSince.has(name))
      seen.onlineSince.set(name, agent.statusChangedOn);
  }
}

/** Waits while agents run a job, remembering what the listings say of them. */
async function awaitJobs(
  names: readonly string[],
  pool: Pool,
  agents: PoolAgent[],
  seen: SeenAgents,
  options: TeardownOptions,
  context: TeardownContext,
  issues: string[],
): Promise<PoolAgent[]> {
  const { provider, pools, log, signal, clock } = context;
  const deadline = new Deadline(clock, options.awaitTimeoutMs);
  const started = clock();
  let progressAt = started + PROGRESS_EVERY_MS;
  const announced = new Set<string>();
  for (;;) {
    throwIfCancelled(signal);
    remember(names, agents, seen);
    const byName = new Map(agents.map((agent) => [agent.name, agent]));
    const busy = names.filter((name) => byName.get(name)?.currentJob);
    const statuses = busy.length ? await provider.pollStatuses(busy) : new Map<string, ContainerStatus>();
    const waiting = busy.filter((name) => shouldAwait(byName.get(name), statuses.get(name)));
    for (const name of waiting) {
      const job = byName.get(name)!.currentJob!;
      const key = `${name}/${job.name}`;
      if (!announced.has(key)) {
        announced.add(key);
        log.info(`Agent ${name} is running '${job.name}': waiting for it to finish.`);
      }
    }
    if (waiting.length === 0) {
      if (announced.size) log.info(`Jobs finished after ${formatDuration(clock() - started)}.`);
      return agents;
    }
    if (clock() >= progressAt) {
      progressAt = clock() + PROGRESS_EVERY_MS;
      log.info(
        `Still waiting after ${formatDuration(clock() - started)} for ${waiting.map((name) => `${name} ('${byName.get(name)!.currentJob!.name}')`).join(", ")}.`,
      );
    }
    if (deadline.passed) {
      issues.push(
        `Agent(s) ${waiting.join(", ")} still ran a job after ${formatDuration(options.awaitTimeoutMs)} and were removed anyway: raise awaitTimeoutMinutes if jobs take longer.`,
      );
      return agents;
    }
    await sleep(deadline.nextWaitMs(options.pollIntervalMs), signal);
    agents = await pools.listAgents(pool);
  }
}

/** Lets containers whose agent did its job exit by themselves, so the agent can unregister cleanly. */
async function settleContainers(
  names: readonly string[],
  agents: readonly PoolAgent[],
  options: TeardownOptions,
  context: TeardownContext,
): Promise<void> {
  const { provider, log, signal, clock } = context;
  const byName = new Map(agents.map((agent) => [agent.name, agent]));
  const deadline = new Deadline(clock, options.gracePeriodMs);
  let statuses = await provider.pollStatuses(names);
  let graced = names.filter((name) => shouldGrantGrace(byName.get(name), statuses.get(name)));
  if (graced.length && options.gracePeriodMs > 0)
    log.info(`Giving ${graced.join(", ")} up to ${formatDuration(options.gracePeriodMs)} to exit.`);
  while (graced.length && !deadline.passed) {
    await sleep(deadline.nextWaitMs(options.pollIntervalMs), signal);
    statuses = await provider.pollStatuses(graced);
    graced = graced.filter((name) => {
      const status = statuses.get(name);
      return status !== undefined && !isFinished(status);
    });
  }
}

interface KnownAgents {
  /** Identities read from the containers' tags. */
  identities: ReadonlyMap<string, AgentIdentity>;
  /** Agents as listed earlier, before some unregistered themselves. */
  lastSeen: ReadonlyMap<string, PoolAgent>;
  /** When agents came online, as listed earlier. */
  onlineSince: ReadonlyMap<string, Date>;
  /** What the containers are billed by, where the provider says. */
  sizes: ReadonlyMap<string, BilledSize>;
}

function billedSizes(launched: readonly LaunchedContainer[]): Map<string, BilledSize> {
  const sizes = new Map<string, BilledSize>();
  for (const container of launched) {
    if (container.billedSize) sizes.set(container.identity.name, container.billedSize);
  }
  return sizes;
}

async function removeAgents(
  names: readonly string[],
  pool: Pool,
  known: KnownAgents,
  options: Pick<TeardownOptions, "showLogs">,
  context: TeardownContext,
  issues: string[],
  swept: boolean,
): Promise<AgentTeardown[]> {
  const { provider, pools, log, clock } = context;
  const containers = await Promise.all(
    names.map(async (name) => {
      let status: ContainerStatus | undefined;
      let listening: Date | undefined;
      try {
        status = await provider.status(name);
        if (options.showLogs && status.state !== "missing") {
          const text = await provider.logs(name);
          log.group(`Log of ${name} (${describeStatus(status)})`, text.trimEnd() || "(empty)");
          listening = listeningSince(text);
        }
      } catch (error) {
        log.warn(`Could not read the container of ${name}: ${errorMessage(error)}`);
      }
      let container: Removal;
      let removedAt: Date | undefined;
      try {
        container = (await provider.remove(name)) ? "removed" : "already gone";
        if (container === "removed") removedAt = new Date(clock());
      } catch (error) {
        container = "failed";
        issues.push(`The container of ${name} could not be removed: ${errorMessage(error)}`);
      }
      return { name, status, container, removedAt, listening };
    }),
  );

  // Registrations after containers: a running container would register its agent again.
  const registered = new Map((await pools.listAgents(pool)).map((agent) => [agent.name, agent]));
  return Promise.all(
    containers.map(async ({ name, status, container, removedAt, listening }) => {
      const agent = registered.get(name);
      let registration: Removal = "already gone";
      if (agent) {
        try {
          registration = (await pools.deleteAgent(pool, agent.id)) ? "removed" : "already gone";
        } catch (error) {
          registration = "failed";
          issues.push(
            `The registration of ${name} could not be removed from pool '${pool.name}': ${errorMessage(error)}`,
          );
        }
      }
      const earlier = known.lastSeen.get(name);
      const requested = known.identities.get(name)?.created;
      const created = requested ?? agent?.createdOn ?? earlier?.createdOn;
      return {
        name,
        lived: created ? formatDuration(clock() - created.getTime()) : undefined,
        job: describeJob(agent, earlier, status),
        container: container === "removed" && status ? `removed (${describeStatus(status)})` : container,
        registration,
        swept,
        lifetimeMs: requested && removedAt ? removedAt.getTime() - requested.getTime() : undefined,
        billedSize: known.sizes.get(name),
        milestones: {
          requested,
          running: status?.startedAt,
          // The pool's time when a listing showed the agent online; else the agent's own, from its log.
          online: known.onlineSince.get(name) ?? onlineSince(agent) ?? onlineSince(earlier) ?? listening,
          ...jobMilestones(agent ?? earlier),
          removed: removedAt,
        },
      };
    }),
  );
}

function onlineSince(agent: PoolAgent | undefined): Date | undefined {
  return agent?.online ? agent.statusChangedOn : undefined;
}

/** The times of the job the agent runs, or else of the last one it ran. */
function jobMilestones(agent: PoolAgent | undefined): Milestones {
  const job = agent?.currentJob ?? agent?.lastJob;
  return { "job queued": job?.queued, "job started": job?.started, "job ended": job?.finished };
}

function describeJob(
  agent: PoolAgent | undefined,
  earlier: PoolAgent | undefined,
  status: ContainerStatus | undefined,
): string {
  if (agent?.currentJob) return `'${agent.currentJob.name}' still running`;
  if (agent?.lastJob) return `'${agent.lastJob.name}' ${agent.lastJob.result}`;
  if (agent) return "none taken";
  if (earlier?.currentJob) return `'${earlier.currentJob.name}' ended, then the agent unregistered itself`;
  if (earlier?.lastJob)
    return `'${earlier.lastJob.name}' ${earlier.lastJob.result}, then the agent unregistered itself`;
  if (status && isFinished(status)) return "unknown (the agent unregistered itself)";
  return "none taken";
}

async function sweep(
  pool: Pool,
  handled: ReadonlySet<string>,
  options: TeardownOptions,
  context: TeardownContext,
  issues: string[],
): Promise<AgentTeardown[]> {
  const { provider, pools, log, clock } = context;
  const policy: SweepPolicy = { olderThanMinutes: options.sweepOlderThanMinutes, now: new Date(clock()) };
  const agents = new Map((await pools.listAgents(pool)).map((agent) => [agent.name, agent]));
  const launched = (await provider.list(pool.name)).filter(
    (container) => !handled.has(container.identity.name),
  );
  const sweptContainers = launched.filter((container) =>
    maySweepContainer(container.identity, agents.get(container.identity.name), policy),
  );
  const keptContainers = new Set(
    launched
      .filter((container) => !sweptContainers.includes(container))
      .map((container) => container.identity.name),
  );
  const strayRegistrations = [...agents.values()].filter(
    (agent) =>
      !handled.has(agent.name) &&
      !sweptContainers.some((container) => container.identity.name === agent.name) &&
      (agent.runKey !== undefined || isEphemeralAgentName(agent.name, options.agentNamePrefix)) &&
      maySweepRegistration(agent, keptContainers.has(agent.name), policy),
  );
  const names = [
    ...sweptContainers.map((container) => container.identity.name),
    ...strayRegistrations.map((agent) => agent.name),
  ];
  log.info(
    names.length
      ? `Sweep: removing ${names.length} leftover(s) older than ${options.sweepOlderThanMinutes} minutes: ${names.join(", ")}`
      : `Sweep: no leftovers older than ${options.sweepOlderThanMinutes} minutes in pool '${pool.name}'.`,
  );
  if (!names.length) return [];
  const identities = new Map(
    sweptContainers.map((container) => [container.identity.name, container.identity]),
  );
  return removeAgents(
    names,
    pool,
    { identities, lastSeen: agents, onlineSince: new Map(), sizes: billedSizes(sweptContainers) },
    { showLogs: false },
    context,
    issues,
    true,
  );
}
