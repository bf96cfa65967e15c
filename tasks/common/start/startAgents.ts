import {
  ENV,
  agentEnvironment,
  demandFor,
  type AgentIdentity,
  type RegistrationMode,
} from "../core/contract";
import { UserError, errorMessage } from "../core/errors";
import { formatDuration, type Log } from "../core/log";
import { agentNames } from "../core/naming";
import { unreportedEnvironment } from "../inputs/capabilities";
import {
  describeStatus,
  isFinished,
  type AgentProvider,
  type Pool,
  type PoolAccess,
  type PoolAgent,
  type ContainerStatus,
  type AgentContainerSpec,
} from "../core/ports";
import { agentCredentialFiles, type AgentKey } from "../core/agentCredential";
import { registerAgent, type RegistrationSettings } from "./registrations";
import { CreationPacer, KeySupply, launchEach, type LaunchAgent } from "./launches";
import { waitForPublicKey } from "./warmLaunch";
import { warmAgentSettings } from "../core/warmStart";
import {
  CancelledError,
  Deadline,
  StepTimer,
  sleep,
  throwIfCancelled,
  type Clock,
  type PollTiming,
} from "../core/timing";

export interface StartOptions {
  pool: string;
  runKey: string;
  namePrefix: string;
  count: number;
  image: string;
  collectionUrl: string;
  /**
   * Registration token. With registration "token" it goes to the containers as a secret; with "agentCredential"
   * (the task registers each agent and hands its container only the agent's own credential) it never leaves the task.
   */
  token: string;
  /** Defaults to "token". */
  registration?: RegistrationMode;
  environment: Readonly<Record<string, string>>;
  onlineTimeoutMs: number;
  maxLifetimeMinutes: number;
  keepOnFailure: boolean;
  pollIntervalMs: number;
}

export interface StartContext {
  provider: AgentProvider;
  pools: Pick<
    PoolAccess,
    "findPool" | "checkCanManage" | "listAgents" | "deleteAgent" | "registerAgent" | "agentPackage"
  >;
  log: Log;
  signal: AbortSignal;
  clock: Clock;
  /** Distinguishes this start from parallel starts and re-runs with the same run key. */
  launchId: string;
  /** Makes each agent's RSA key in registration agentCredential: generateAgentKey. */
  newAgentKey: () => Promise<AgentKey>;
}

export interface AgentReport {
  name: string;
  /** In a warm start: whether the container came ready from the standby pool, or was created cold instead. */
  claimed?: "warm" | "cold";
  onlineAfterMs?: number;
  status?: ContainerStatus;
}

export interface StartResult {
  pool: string;
  runKey: string;
  demand: string;
  agents: AgentReport[];
  steps: { name: string; ms: number }[];
  totalMs: number;
  providerDescription: string;
}

/** The start failed; `result` tells what was launched and how far it got, for the summary. */
export class StartFailure extends Error {
  constructor(
    override readonly cause: unknown,
    readonly result: StartResult,
  ) {
    super(errorMessage(cause));
    this.name = "StartFailure";
  }
}

const LOG_TAIL_LINES = 30;
/** Agents registered by the task run Linux x64 images: the agent keeps its key in DPAPI on Windows. */
const AGENT_PLATFORM = "linux-x64";
const AGENT_WORK_FOLDER = "_work";
/** Creations start at most 8 per second, under Resource Manager's write throttling of about 10 per second. */
const CREATE_SPACING_MS = 125;
/**
 * Keys are made from the task's start, while the pool and the provider are checked, two at a time in agent order,
 * so that the first agent's key is not slowed by all the others: each takes one of libuv's 4 threads and a core
 * while it is made, and threads stay free for the requests' DNS lookups. Two keep up with the creation spacing
 * where a key takes up to 250 ms of CPU.
 */
const KEYS_AT_ONCE = 2;
const PROGRESS_EVERY_MS = 30_000;
/**
 * The pool is asked every round, since it tells when agents are online; the containers, which only tell of a
 * failure, every third round: Resource Manager's read limits are tighter than Azure DevOps' rate limits.
 */
const CONTAINER_ROUNDS = 3;

/** Launches the agents, waits until all are online, and removes what it made if that fails. */
export async function startAgents(options: StartOptions, context: StartContext): Promise<StartResult> {
  const { provider, pools, log, signal, clock } = context;
  const timer = new StepTimer(clock);
  const names = agentNames(options.namePrefix, options.runKey, context.launchId, options.count);
  const reports = new Map<string, AgentReport>(names.map((name) => [name, { name }]));
  const result = (): StartResult => ({
    pool: options.pool,
    runKey: options.runKey,
    demand: demandFor(options.runKey),
    agents: [...reports.values()],
    steps: timer.steps,
    totalMs: timer.elapsedMs,
    providerDescription: provider.description,
  });
  /** Whether a registration or a creation was requested: from then on a failure removes what may exist. */
  let madeRequests = false;
  const ownCredential = options.registration === "agentCredential";
  let pool: Pool | undefined;

  for (const entry of unreportedEnvironment(options.environment)) {
    log.warn(
      `The agent will not report environment entry ${entry.name} as a capability (${entry.reason}): a demand on it would never match.`,
    );
  }
  const warm = ownCredential ? provider.warm : undefined;
  // Claimed containers make their own keys.
  const keys = ownCredential && !warm ? new KeySupply(names, context.newAgentKey, KEYS_AT_ONCE) : undefined;
  try {
    const { found, agentPackage } = await timer.time("Check pool and provider", async () => {
      const found = await pools.findPool(options.pool);
      await pools.checkCanManage(found);
      await provider.prepare({ count: names.length });
      return { found, agentPackage: ownCredential ? await pools.agentPackage(AGENT_PLATFORM) : undefined };
    });
    pool = found;
    throwIfCancelled(signal);
    log.info(
      `Launching ${names.length} agent(s) for pool '${pool.name}' on ${provider.description}: ${names.join(", ")}`,
    );

    if (ownCredential && !agentPackage) {
      log.warn(
        `${options.collectionUrl} lists no agent package for ${AGENT_PLATFORM}: the image must have the agent baked in.`,
      );
    }
    const packageEnvironment: Record<string, string> = agentPackage
      ? {
          [ENV.agentPackageUrl]: agentPackage.downloadUrl,
          [ENV.agentPackageSha256]: agentPackage.sha256 ?? "",
        }
      : {};
    const launchPool = pool;
    const pacer = new CreationPacer(clock, CREATE_SPACING_MS);
    /** When the first container was requested, on the step timer. */
    let firstCreationMs: number | undefined;
    const identityOf = (name: string): AgentIdentity => ({
      name,
      pool: launchPool.name,
      runKey: options.runKey,
      created: new Date(),
      lifetimeMinutes: options.maxLifetimeMinutes,
    });
    const environmentOf = (identity: AgentIdentity): Record<string, string> => ({
      ...agentEnvironment(identity, options.collectionUrl, options.environment),
      ...packageEnvironment,
    });
    const createContainer = async (
      name: string,
      secret: Pick<AgentContainerSpec, "token" | "agentCredential">,
      launchSignal: AbortSignal,
    ): Promise<void> => {
      await pacer.slot(launchSignal);
      const identity = identityOf(name);
      madeRequests = true;
      firstCreationMs ??= timer.elapsedMs;
      await provider.create({
        identity,
        image: options.image,
        environment: environmentOf(identity),
        ...secret,
      });
    };
    const registration: RegistrationSettings = {
      runKey: options.runKey,
      collectionUrl: options.collectionUrl,
      agentVersion: agentPackage?.version,
      workFolder: AGENT_WORK_FOLDER,
    };
    // onlineTimeoutMinutes bounds the whole wait for the agents, from the first launch on, whatever phase it is in.
    const onlineWait: PollTiming = {
      deadline: new Deadline(clock, options.onlineTimeoutMs),
      pollIntervalMs: options.pollIntervalMs,
    };
    const claimContainer: LaunchAgent | undefined =
      warm &&
      (async (name, launchSignal) => {
        await pacer.slot(launchSignal);
        const identity = identityOf(name);
        madeRequests = true;
        firstCreationMs ??= timer.elapsedMs;
        const claimed = await warm.claim(identity);
        reports.get(name)!.claimed = claimed.warm ? "warm" : "cold";
        if (!claimed.warm) {
          log.warn(
            `${warm.description} had no container ready for agent ${name}: Azure created one cold from the same profile, which takes as long as a start without the pool. Raise the pool's ready capacity if this happens often.`,
          );
        }
        throwIfCancelled(launchSignal);
        const publicKey = await waitForPublicKey(name, warm, provider, onlineWait, launchSignal);
        const registered = await registerAgent(name, publicKey, launchPool, registration, pools);
        throwIfCancelled(launchSignal);
        await warm.deliver(
          name,
          warmAgentSettings(registered.settings, registered.authorization, environmentOf(identity)),
        );
      });
    const launchAgent: LaunchAgent = claimContainer
      ? claimContainer
      : keys
        ? async (name, launchSignal) => {
            const key = await keys.take(name, launchSignal);
            madeRequests = true;
            const registered = await registerAgent(name, key.publicKey, launchPool, registration, pools);
            const files = agentCredentialFiles(registered.settings, registered.authorization, key);
            await createContainer(name, { agentCredential: files }, launchSignal);
          }
        : (name, launchSignal) => createContainer(name, { token: options.token }, launchSignal);

    const launchBegan = clock();
    const launchStep = warm
      ? "Claim containers and register agents"
      : ownCredential
        ? "Register agents and create containers"
        : "Create containers";
    if (warm) log.info(`Claiming ${names.length} container(s) from ${warm.description}.`);
    await timer.time(launchStep, () => launchEach(names, launchAgent, signal));
    if (ownCredential)
      log.info(
        `Registered ${names.length} agent(s) with their own credentials in pool '${launchPool.name}'.`,
      );
    log.info(
      `${warm ? "Claimed" : "Created"} ${names.length} container(s) in ${formatDuration(clock() - launchBegan)}; the first was requested after ${formatDuration(firstCreationMs ?? 0)}.`,
    );

    await timer.time("Wait for agents online", () =>
      waitUntilOnline(names, launchPool, onlineWait, context, reports, timer),
    );
    log.info(`All ${names.length} agent(s) are online after ${formatDuration(timer.elapsedMs)}.`);
    return result();
  } catch (error) {
    if (options.keepOnFailure) {
      if (madeRequests) log.warn(`keepOnFailure is set: leaving ${names.join(", ")} in place for debugging.`);
    } else if (madeRequests) {
      await removeEverything(names, pool, context);
    }
    throw new StartFailure(error, result());
  } finally {
    keys?.stop();
  }
}

async function waitUntilOnline(
  names: readonly string[],
  pool: Pool,
  timing: PollTiming,
  context: StartContext,
  reports: Map<string, AgentReport>,
  timer: StepTimer,
): Promise<void> {
  const { provider, pools, log, signal, clock } = context;
  const { deadline } = timing;
  const registered = new Set<string>();
  let lastProgress = clock();
  let statuses = new Map<string, ContainerStatus>();
  let round = 0;

  for (;;) {
    throwIfCancelled(signal);
    const waiting = names.filter((name) => reports.get(name)?.onlineAfterMs === undefined);
    const agents = new Map<string, PoolAgent>(
      (await pools.listAgents(pool))
        .filter((agent) => names.includes(agent.name))
        .map((agent) => [agent.name, agent]),
    );
    for (const name of waiting) {
      const agent = agents.get(name);
      if (agent && !registered.has(name)) {
        registered.add(name);
        log.info(`Agent ${name} registered in pool '${pool.name}' after ${formatDuration(timer.elapsedMs)}.`);
      }
      if (agent?.online) {
        reports.get(name)!.onlineAfterMs = timer.elapsedMs;
        log.info(`Agent ${name} is online after ${formatDuration(timer.elapsedMs)}.`);
      }
    }
    const stillWaiting = waiting.filter((name) => reports.get(name)?.onlineAfterMs === undefined);
    if (stillWaiting.length === 0) return;

    if (round++ % CONTAINER_ROUNDS === 0) {
      statuses = await provider.pollStatuses(stillWaiting);
      for (const [name, status] of statuses) reports.get(name)!.status = status;
    }
    const stopped = stillWaiting.find((name) => {
      const status = statuses.get(name);
      return status !== undefined && isFinished(status);
    });
    if (stopped) {
      throw new UserError(
        `The container of agent ${stopped} stopped before the agent came online (${describeStatus(statuses.get(stopped)!)}).${await logTail(provider, stopped)}`,
      );
    }
    if (deadline.passed) {
      const states = stillWaiting
        .map(
          (name) =>
            `${name}: ${registered.has(name) ? "registered, offline" : "not registered"}, container ${statuses.has(name) ? describeStatus(statuses.get(name)!) : "unknown"}`,
        )
        .join("; ");
      throw new UserError(
        `Timed out after ${formatDuration(deadline.budgetMs)} waiting for ${stillWaiting.length} agent(s) to come online (${states}). Raise onlineTimeoutMinutes if the image is large or the agent is downloaded at start.${provider.timeoutHint ? ` ${provider.timeoutHint}` : ""}${await logTail(provider, stillWaiting[0])}`,
      );
    }
    if (clock() - lastProgress >= PROGRESS_EVERY_MS) {
      lastProgress = clock();
      log.info(
        `Waiting for ${stillWaiting.length} of ${names.length} agent(s) to come online (${formatDuration(timer.elapsedMs)} so far).`,
      );
    }
    await sleep(deadline.nextWaitMs(timing.pollIntervalMs), signal);
  }
}

async function logTail(provider: AgentProvider, name: string): Promise<string> {
  try {
    const lines = (await provider.logs(name)).trimEnd().split("\n");
    if (lines.length === 1 && lines[0] === "") return " The container wrote no log.";
    return `\nLast lines of its log:\n${lines.slice(-LOG_TAIL_LINES).join("\n")}`;
  } catch (error) {
    return ` Its log could not be read: ${errorMessage(error)}`;
  }
}

/** Removes every container and agent registration this start made; reports, never throws. */
async function removeEverything(
  names: readonly string[],
  pool: Pool | undefined,
  context: StartContext,
): Promise<void> {
  const { provider, pools, log } = context;
  log.info(`Removing what this task created: ${names.join(", ")}`);
  await Promise.all(
    names.map(async (name) => {
      try {
        await provider.remove(name);
      } catch (error) {
        log.warn(`Could not remove the container of agent ${name}: ${errorMessage(error)}`);
      }
    }),
  );
  // Registrations last: a container removed before its agent registered can no longer add one.
  if (!pool) return;
  try {
    const agents = (await pools.listAgents(pool)).filter((agent) => names.includes(agent.name));
    await Promise.all(agents.map((agent) => pools.deleteAgent(pool, agent.id)));
  } catch (error) {
    log.warn(`Could not remove the agent registrations from pool '${pool.name}': ${errorMessage(error)}`);
  }
}

export function isCancellation(error: unknown): boolean {
  return (
    error instanceof CancelledError ||
    (error instanceof StartFailure && error.cause instanceof CancelledError)
  );
}
