import { DEFAULT_POLL_INTERVAL_MS } from "../tasks/common/core/timing";
import type { Agent, RecordedRequest } from "../standins";
import { preciseNow } from "../standins";
import { ACI_INPUTS, AGENT_IMAGE, startStandins, type Standins } from "../standins/taskProcess";
import { median, ratio, summarise, type Summary } from "./stats";
import { allRequests, assertSucceeded, runTimedTask, type TaskBuild, type TimedRun } from "./taskProcess";

/** Simulated platform latency: container group provisioning in ARM, then the agent's registration in DevOps. */
export interface PlatformLatency {
  provisioningMs: number;
  registrationMs: number;
}

let runKeys = 1000;

function startInputs(count: number): Record<string, string> {
  return { ...ACI_INPUTS, image: AGENT_IMAGE, count: String(count), runKey: String(runKeys++) };
}

export async function withStandins<T>(
  latency: PlatformLatency,
  body: (standins: Standins) => Promise<T>,
): Promise<T> {
  const standins = await startStandins({
    arm: { provisioningDelayMs: latency.provisioningMs },
    simulateAgents: { delayMs: latency.registrationMs },
  });
  try {
    return await body(standins);
  } finally {
    await standins.close();
  }
}

/** When each agent first went online, by name. */
function watchOnline(standins: Standins): Map<string, number> {
  const onlineAt = new Map<string, number>();
  standins.devops.events.on("agentStatusChanged", (agent: Agent) => {
    if (agent.status === "online" && !onlineAt.has(agent.name)) onlineAt.set(agent.name, preciseNow());
  });
  return onlineAt;
}

function isContainerGroupPut(request: RecordedRequest): boolean {
  return request.method === "PUT" && /\/containerGroups\/[^/]+$/i.test(request.path);
}

function throttled(standins: Standins): number {
  return [...standins.arm.requests, ...standins.devops.requests].filter((request) => request.status === 429)
    .length;
}

// 1. Cold start --------------------------------------------------------------------------------------------

export interface ColdStart {
  bundle: Summary;
  sources: Summary;
  /** Median of sources over median of bundle. */
  ratio: number;
  warmupRunsDiscarded: number;
}

/**
 * Process start to the first HTTP request any stand-in receives, for one run, and the CPU time the task had used
 * by then (when /proc tells it); the task is killed right then.
 */
export async function coldStart(
  standins: Standins,
  build: TaskBuild,
  distDir?: string,
  until: "any" | "azure" = "any",
): Promise<{ ms: number; cpuMs?: number }> {
  const timed = await runTimedTask(standins, {
    task: "StartEphemeralAgentV1",
    build,
    distDir,
    inputs: startInputs(1),
    killAtFirstRequest: until,
  });
  const counted =
    until === "azure" ? [...standins.entra.requests, ...standins.arm.requests] : allRequests(standins);
  const first = counted
    .filter((request) => request.receivedAt >= timed.spawnedAt)
    .sort((a, b) => a.receivedAt - b.receivedAt)[0];
  if (!first) throw new Error(`cold start (${build}): the task made no request\n${timed.run.stderr}`);
  return { ms: first.receivedAt - timed.spawnedAt, cpuMs: timed.cpuAtFirstRequestMs };
}

export const COLD_START_LATENCY: PlatformLatency = { provisioningMs: 200, registrationMs: 50 };

/** Cold start of the bundle and of the sources, alternately; the first round is a warm-up. */
export async function measureColdStart(runs: number): Promise<ColdStart> {
  const samples: Record<TaskBuild, number[]> = { bundle: [], sources: [] };
  await withStandins(COLD_START_LATENCY, async (standins) => {
    for (let round = 0; round <= runs; round++) {
      for (const build of ["bundle", "sources"] as const) {
        const sample = await coldStart(standins, build);
        // Round 0 fills the file system cache and tsx's compile cache; it is not counted.
        if (round > 0) samples[build].push(sample.ms);
      }
    }
  });
  const bundle = summarise(samples.bundle);
  const sources = summarise(samples.sources);
  return { bundle, sources, ratio: ratio(sources.medianMs, bundle.medianMs), warmupRunsDiscarded: 1 };
}

// 2. Detection lag -----------------------------------------------------------------------------------------

export interface DetectionLag {
  /** undefined: the task's default (DEFAULT_POLL_INTERVAL_MS.start). */
  pollIntervalMs?: number;
  lag: Summary;
  /** Start task's total time minus the simulated platform latency, per run (default interval included). */
  overhead: Summary;
}

/**
 * From the moment the stand-in marks the agent online to the start task's exit. The registration delay is
 * drawn at random over one poll interval so that the runs sample every phase of the task's polling.
 */
export async function measureDetectionLag(runs: number, pollIntervalMs?: number): Promise<DetectionLag> {
  const lags: number[] = [];
  const overheads: number[] = [];
  const interval = pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS.start;
  for (let run = 0; run < runs; run++) {
    const latency = { provisioningMs: 200, registrationMs: Math.round(500 + Math.random() * interval) };
    await withStandins(latency, async (standins) => {
      const onlineAt = watchOnline(standins);
      const timed = await runTimedTask(standins, {
        task: "StartEphemeralAgentV1",
        inputs: startInputs(1),
        pollIntervalMs,
      });
      assertSucceeded(timed, "detection lag");
      const online = Math.max(...onlineAt.values());
      lags.push(timed.exitedAt - online);
      overheads.push(totalMs(timed) - latency.provisioningMs - latency.registrationMs);
    });
  }
  return { pollIntervalMs, lag: summarise(lags), overhead: summarise(overheads) };
}

function totalMs(timed: TimedRun): number {
  return timed.exitedAt - timed.spawnedAt;
}

// 3 + 4. Request cost while waiting, and parallel scale ----------------------------------------------------

export interface ScaleRun {
  totalMs: number;
  /** Spawn to the first container group creation request the ARM stand-in received. */
  firstCreationMs: number;
  lastCreationMs: number;
  /** Spawn to the last agent online. */
  allOnlineMs: number;
  waitWindowMs: number;
  /** Whole polling rounds in the window the rates are counted over. */
  pollingRounds: number;
  armRequestsPerMinute: number;
  devopsRequestsPerMinute: number;
  entraRequests: number;
  armRequests: number;
  devopsRequests: number;
  throttled: number;
}

export interface ScalePoint {
  count: number;
  runs: ScaleRun[];
  total: Summary;
  firstCreation: Summary;
  lastCreation: Summary;
  allOnline: Summary;
  /** Median total over the median total for one agent. */
  ratioToOne: number;
  armRequestsPerMinute: number;
  devopsRequestsPerMinute: number;
  throttled: number;
}

function isAgentList(request: RecordedRequest): boolean {
  return request.method === "GET" && /\/pools\/\d+\/agents$/i.test(request.path);
}

/**
 * Starts `count` agents with the default poll interval. Request rates are counted over whole polling rounds
 * while every container runs and no agent is online yet: from the first agent list after the last container
 * finished provisioning to the last agent list before the first agent went online.
 */
async function scaleRun(count: number, latency: PlatformLatency): Promise<ScaleRun> {
  return withStandins(latency, async (standins) => {
    const onlineAt = watchOnline(standins);
    const timed = await runTimedTask(standins, { task: "StartEphemeralAgentV1", inputs: startInputs(count) });
    assertSucceeded(timed, `scale (${count} agents)`);
    if (onlineAt.size !== count) throw new Error(`scale: ${onlineAt.size} of ${count} agents went online`);
    const creations = standins.arm.requests.filter(isContainerGroupPut).map((request) => request.receivedAt);
    const allRunning = Math.max(...creations) + latency.provisioningMs;
    const firstOnline = Math.min(...onlineAt.values());
    const rounds = standins.devops.requests
      .filter((request) => isAgentList(request))
      .map((request) => request.receivedAt)
      .filter((at) => at > allRunning && at < firstOnline);
    if (rounds.length < 2) {
      throw new Error(`scale (${count} agents): too few polling rounds before the first agent went online`);
    }
    const [windowStart, windowEnd] = [rounds[0], rounds[rounds.length - 1]];
    const within = (requests: RecordedRequest[]) =>
      requests.filter((request) => request.receivedAt >= windowStart && request.receivedAt < windowEnd)
        .length;
    const minutes = (windowEnd - windowStart) / 60_000;
    return {
      totalMs: totalMs(timed),
      firstCreationMs: Math.min(...creations) - timed.spawnedAt,
      lastCreationMs: Math.max(...creations) - timed.spawnedAt,
      allOnlineMs: Math.max(...onlineAt.values()) - timed.spawnedAt,
      waitWindowMs: Math.round(windowEnd - windowStart),
      pollingRounds: rounds.length - 1,
      armRequestsPerMinute: within(standins.arm.requests) / minutes,
      devopsRequestsPerMinute: within(standins.devops.requests) / minutes,
      entraRequests: standins.entra.requests.length,
      armRequests: standins.arm.requests.length,
      devopsRequests: standins.devops.requests.length,
      throttled: throttled(standins),
    };
  });
}

export async function measureScale(
  counts: readonly number[],
  runs: number,
  latency: PlatformLatency,
): Promise<ScalePoint[]> {
  const byCount = new Map<number, ScaleRun[]>(counts.map((count) => [count, []]));
  // Interleaved, so that a slow phase of the machine does not land on one count only.
  for (let run = 0; run < runs; run++) {
    for (const count of counts) byCount.get(count)!.push(await scaleRun(count, latency));
  }
  const oneMedian = median(byCount.get(counts[0])!.map((run) => run.totalMs));
  return counts.map((count) => {
    const points = byCount.get(count)!;
    const total = summarise(points.map((run) => run.totalMs));
    return {
      count,
      runs: points,
      total,
      firstCreation: summarise(points.map((run) => run.firstCreationMs)),
      lastCreation: summarise(points.map((run) => run.lastCreationMs)),
      allOnline: summarise(points.map((run) => run.allOnlineMs)),
      ratioToOne: ratio(total.medianMs, oneMedian),
      armRequestsPerMinute: Math.round(median(points.map((run) => run.armRequestsPerMinute))),
      devopsRequestsPerMinute: Math.round(median(points.map((run) => run.devopsRequestsPerMinute))),
      throttled: points.reduce((sum, run) => sum + run.throttled, 0),
    };
  });
}

// 5. Overhead ----------------------------------------------------------------------------------------------

export interface Overhead {
  latency: PlatformLatency;
  pollIntervalMs: number;
  start: {
    overhead: Summary;
    /** Spawn to the first request. */
    startup: Summary;
    /** First request to the container group's creation request (pool, permission and resource checks). */
    checks: Summary;
    /** Agent online to exit (detection at the short interval, outputs, summary, exit). */
    finish: Summary;
  };
  teardown: {
    /** Simulated deletion time in ARM. */
    deletionDelayMs: number;
    total: Summary;
    overhead: Summary;
    startup: Summary;
  };
}

/**
 * N = 1. The start task polls every `pollIntervalMs` so that detection lag (figure 2) stays out; the
 * teardown that follows, with gracePeriodSeconds 0 on an idle agent, keeps its default timing.
 */
export async function measureOverhead(runs: number, pollIntervalMs: number): Promise<Overhead> {
  const latency = { provisioningMs: 1000, registrationMs: 1000 };
  const deletionDelayMs = 0;
  const start = {
    overhead: [] as number[],
    startup: [] as number[],
    checks: [] as number[],
    finish: [] as number[],
  };
  const teardown = { total: [] as number[], overhead: [] as number[], startup: [] as number[] };
  for (let run = 0; run < runs; run++) {
    await withStandins(latency, async (standins) => {
      const onlineAt = watchOnline(standins);
      const inputs = startInputs(1);
      const started = await runTimedTask(standins, { task: "StartEphemeralAgentV1", inputs, pollIntervalMs });
      assertSucceeded(started, "overhead (start)");
      const requests = allRequests(standins);
      const put = standins.arm.requests.find(isContainerGroupPut)!;
      start.overhead.push(totalMs(started) - latency.provisioningMs - latency.registrationMs);
      start.startup.push(requests[0].receivedAt - started.spawnedAt);
      start.checks.push(put.receivedAt - requests[0].receivedAt);
      start.finish.push(started.exitedAt - Math.max(...onlineAt.values()));

      const before = requests.length;
      const removed = await runTimedTask(standins, {
        task: "TeardownEphemeralAgentV1",
        inputs: { ...ACI_INPUTS, runKey: inputs.runKey, gracePeriodSeconds: "0" },
      });
      assertSucceeded(removed, "overhead (teardown)");
      if (standins.arm.containerGroups().length || standins.devops.agents(ACI_INPUTS.agentPool).length)
        throw new Error("overhead (teardown): something was left behind");
      teardown.total.push(totalMs(removed));
      teardown.overhead.push(totalMs(removed) - deletionDelayMs);
      teardown.startup.push(allRequests(standins)[before].receivedAt - removed.spawnedAt);
    });
  }
  return {
    latency,
    pollIntervalMs,
    start: {
      overhead: summarise(start.overhead),
      startup: summarise(start.startup),
      checks: summarise(start.checks),
      finish: summarise(start.finish),
    },
    teardown: {
      deletionDelayMs,
      total: summarise(teardown.total),
      overhead: summarise(teardown.overhead),
      startup: summarise(teardown.startup),
    },
  };
}
