import { DEFAULT_POLL_INTERVAL_MS } from "../tasks/common/core/timing";
// The benchmark (npm run bench): runs the bundled tasks against the local stand-ins, prints a table and
// writes bench/results.json. `--quick` makes fewer, shorter runs. Not part of npm test.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import {
  measureColdStart,
  measureDetectionLag,
  measureOverhead,
  measureScale,
  type PlatformLatency,
} from "./measurements";
import { conditions, table, type BenchResults } from "./report";
import { agentOnlineLines, measureAgentOnline } from "./agentOnline";
import { CRITICAL_PATH_PLAN, criticalPathLines, measureCriticalPath } from "./criticalPath";
import { WARM_START_PLAN, measureWarmStart, warmStartLines } from "./warmStart";
import { dockerAvailable } from "../standins/images";
import { packageExtension } from "./vsix";

interface Plan {
  coldStartRuns: number;
  detectionRuns: number;
  /** Poll intervals shown besides the default, for comparison. */
  otherPollIntervalsMs: number[];
  scaleCounts: number[];
  scaleRuns: number;
  scaleLatency: PlatformLatency;
  overheadRuns: number;
}

const PLANS: Record<BenchResults["mode"], Plan> = {
  full: {
    coldStartRuns: 8,
    detectionRuns: 12,
    otherPollIntervalsMs: [3000],
    scaleCounts: [1, 10, 50],
    scaleRuns: 3,
    scaleLatency: { provisioningMs: 5000, registrationMs: 20_000 },
    overheadRuns: 6,
  },
  quick: {
    coldStartRuns: 3,
    detectionRuns: 4,
    otherPollIntervalsMs: [],
    scaleCounts: [1, 10, 50],
    scaleRuns: 1,
    scaleLatency: { provisioningMs: 2000, registrationMs: 15_000 },
    overheadRuns: 2,
  },
};
/** The start task's poll interval while the start overhead is measured: short, so detection lag stays out. */
const OVERHEAD_POLL_INTERVAL_MS = 100;

function step(text: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${text}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: "boolean", default: false } } });
  const mode = values.quick ? "quick" : "full";
  const plan = PLANS[mode];
  const began = Date.now();

  step("building and packaging (scripts/package.mjs)");
  const vsix = packageExtension();
  step(`cold start: ${plan.coldStartRuns} runs each of the bundle and the sources`);
  const coldStart = await measureColdStart(plan.coldStartRuns);
  step(`detection lag: ${plan.detectionRuns} runs at the default poll interval`);
  const detectionLag = [await measureDetectionLag(plan.detectionRuns)];
  for (const interval of plan.otherPollIntervalsMs) {
    const runs = Math.ceil(plan.detectionRuns / 2);
    step(`detection lag: ${runs} runs at a ${interval} ms poll interval`);
    detectionLag.push(await measureDetectionLag(runs, interval));
  }
  step(`overhead: ${plan.overheadRuns} start + teardown runs`);
  const overhead = await measureOverhead(plan.overheadRuns, OVERHEAD_POLL_INTERVAL_MS);
  step(`scale and request cost: N = ${plan.scaleCounts.join(", ")}, ${plan.scaleRuns} run(s) each`);
  const points = await measureScale(plan.scaleCounts, plan.scaleRuns, plan.scaleLatency);
  const agentOnlineRuns = Math.max(1, Math.ceil(plan.overheadRuns / 2));
  let agentOnline;
  if (await dockerAvailable()) {
    step(`container start to agent online: ${agentOnlineRuns} run(s) per registration, on the Docker engine`);
    agentOnline = await measureAgentOnline(agentOnlineRuns);
  } else {
    step("container start to agent online: skipped, no Docker engine");
  }
  let criticalPath;
  if (await dockerAvailable()) {
    const { runs, buildMs } = CRITICAL_PATH_PLAN[mode];
    step(
      `agent on the critical path: ${runs} run(s) each, sequential and started early, ${buildMs / 1000} s builds`,
    );
    criticalPath = await measureCriticalPath(runs, buildMs);
  } else {
    step("agent on the critical path: skipped, no Docker engine");
  }
  let warmStart;
  if (await dockerAvailable()) {
    const { runs, latency } = WARM_START_PLAN[mode];
    step(
      `warm start against cold creation: ${runs} run(s) each, simulated provisioning ${latency.provisioningMs / 1000} s, claim ${latency.claimMs / 1000} s`,
    );
    warmStart = await measureWarmStart(runs, latency);
  } else {
    step("warm start against cold creation: skipped, no Docker engine");
  }

  const results: BenchResults = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    cpus: os.cpus().length,
    mode,
    coldStart,
    detectionLag,
    scale: {
      latency: plan.scaleLatency,
      pollIntervalMs: DEFAULT_POLL_INTERVAL_MS.start,
      runsPerCount: plan.scaleRuns,
      points,
    },
    overhead,
    vsix,
  };
  results.durationSeconds = Math.round((Date.now() - began) / 1000);
  const file = path.join(__dirname, "results.json");
  fs.writeFileSync(
    file,
    `${JSON.stringify({ ...results, agentOnline, criticalPath, warmStart }, null, 2)}\n`,
  );
  console.log(`\n${conditions(results)}\n\n${table(results)}\n`);
  if (agentOnline) console.log(`${agentOnlineLines(agentOnline)}\n`);
  if (criticalPath) console.log(`${criticalPathLines(criticalPath)}\n`);
  if (warmStart) console.log(`${warmStartLines(warmStart)}\n`);
  step(`wrote ${path.relative(process.cwd(), file)} after ${results.durationSeconds} s`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
