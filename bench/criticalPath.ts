// The agent's cost on a deploy pipeline's critical path, on the local Docker engine with the agent image and the
// stand-in agent package: from the build's end to the deploy job running on the agent (the job request's
// receiveTime), with the agent started after the build (sequential) and while the build runs (started early,
// templates/ephemeral-agent-jobs.yml), side by side in one run. In the started-early shape the deploy job is queued
// when the build ends, so the figure is the job's queued -> started. Each run's milestones come from its teardown
// task's timeline. Usage: node --import tsx bench/criticalPath.ts [--runs 2] [--build-seconds 10]
import { parseArgs } from "node:util";
import { MILESTONES, type Milestone } from "../tasks/common/core/timeline";
import { buildAgentImage } from "../standins/images";
import { newRunKey, removeContainersOfRun, startOrganization } from "../standins/organization";
import {
  agentWaitMs,
  queuedToRunningMs,
  runDeployPipeline,
  type PipelineRun,
  type PipelineShape,
} from "../standins/pipelineRun";
import { ensureBundles } from "../standins/taskProcess";
import { summarise, seconds, type Summary } from "./stats";

const SHAPES: readonly PipelineShape[] = ["sequential", "started early"];
/** Runs per shape and the simulated build's length, for `npm run bench` and `npm run bench -- --quick`. */
export const CRITICAL_PATH_PLAN = {
  full: { runs: 3, buildMs: 10_000 },
  quick: { runs: 1, buildMs: 6000 },
} as const;
/** The started-early shape must add less than this to the critical path when the build outlasts the start. */
export const STARTED_EARLY_TARGET_MS = 1000;

export interface CriticalPathShape {
  shape: PipelineShape;
  /** Build ended -> deploy job running on the agent: the agent's cost on the critical path. */
  agentWait: Summary;
  /** Deploy job queued -> deploy job running on the agent. */
  queuedToRunning: Summary;
  /** The start task, spawn to exit. */
  start: Summary;
  /** Each milestone's median time since the agent was requested, from the teardown summaries' timelines. */
  milestonesMs: Partial<Record<Milestone, number>>;
}

export interface CriticalPathResult {
  buildMs: number;
  shapes: CriticalPathShape[];
  /** Every started-early run's build outlasted its start, so the target applies. */
  buildOutlastedStart: boolean;
}

async function oneRun(image: string, shape: PipelineShape, buildMs: number): Promise<PipelineRun> {
  const organization = await startOrganization();
  const runKey = newRunKey();
  try {
    return await runDeployPipeline(organization, image, runKey, shape, buildMs);
  } finally {
    await removeContainersOfRun(runKey);
    await organization.close();
  }
}

/** The agent's milestones, from the timeline table of the teardown summary (as a user reads it back). */
function milestonesOf(run: PipelineRun): Map<Milestone, number> {
  const summary = run.teardown.summaries.join("\n");
  const rows = summary
    .slice(Math.max(0, summary.indexOf("**Timeline**")))
    .split("\n")
    .filter((line) => line.startsWith(`| ${run.agentName} |`));
  const cells = rows[0]?.split("|").slice(2, -1) ?? [];
  const offsets = new Map<Milestone, number>();
  MILESTONES.forEach((milestone, i) => {
    const match = /^\s*\+(?:(\d+)m(\d\d)s|(\d+\.\d)s)\s*$/.exec(cells[i] ?? "");
    if (match)
      offsets.set(
        milestone,
        match[3] !== undefined ? Number(match[3]) * 1000 : (Number(match[1]) * 60 + Number(match[2])) * 1000,
      );
  });
  if (cells.length) offsets.set("requested", 0);
  return offsets;
}

export async function measureCriticalPath(runs: number, buildMs: number): Promise<CriticalPathResult> {
  const image = await buildAgentImage();
  await ensureBundles();
  const samples = new Map<PipelineShape, PipelineRun[]>(SHAPES.map((shape) => [shape, []]));
  // Run 0 warms the engine and the file system cache; it is not counted. The shapes alternate within each run.
  for (let run = 0; run <= runs; run++) {
    for (const shape of SHAPES) {
      const result = await oneRun(image, shape, buildMs);
      if (run > 0) samples.get(shape)!.push(result);
    }
  }
  const shapes = SHAPES.map((shape): CriticalPathShape => {
    const shapeRuns = samples.get(shape)!;
    const timelines = shapeRuns.map(milestonesOf);
    const milestonesMs: Partial<Record<Milestone, number>> = {};
    for (const milestone of MILESTONES) {
      const values = timelines.flatMap((timeline) => timeline.get(milestone) ?? []);
      if (values.length) milestonesMs[milestone] = summarise(values).medianMs;
    }
    return {
      shape,
      agentWait: summarise(shapeRuns.map(agentWaitMs)),
      queuedToRunning: summarise(shapeRuns.map(queuedToRunningMs)),
      start: summarise(shapeRuns.map((run) => run.startEnded.getTime() - run.startBegan.getTime())),
      milestonesMs,
    };
  });
  const buildOutlastedStart = samples
    .get("started early")!
    .every((run) => run.buildEnded.getTime() > run.startEnded.getTime());
  return { buildMs, shapes, buildOutlastedStart };
}

export function criticalPathLines(result: CriticalPathResult): string {
  const early = result.shapes.find((shape) => shape.shape === "started early");
  const met = early !== undefined && early.agentWait.maxMs < STARTED_EARLY_TARGET_MS;
  const lines = result.shapes.map((shape) => {
    const timeline = Object.entries(shape.milestonesMs)
      .map(([milestone, ms]) => `${milestone} ${milestone === "requested" ? "0" : seconds(ms)}`)
      .join(" · ");
    return `agent on the critical path, ${shape.shape} (build ${seconds(result.buildMs)}): build ended -> deploy job running on the agent median ${seconds(shape.agentWait.medianMs)} (min ${seconds(shape.agentWait.minMs)}, max ${seconds(shape.agentWait.maxMs)}, ${shape.agentWait.runs} runs); deploy job queued -> running median ${seconds(shape.queuedToRunning.medianMs)}; start task median ${seconds(shape.start.medianMs)}; timeline (medians since requested): ${timeline}`;
  });
  lines.push(
    result.buildOutlastedStart
      ? `started early adds < ${seconds(STARTED_EARLY_TARGET_MS)} when the build outlasts the start (every run): ${met ? "met" : "MISSED"}`
      : "started early: in some run the start outlasted the build, so the < 1 s target does not apply",
  );
  return lines.join("\n");
}

if (require.main === module) {
  const { values } = parseArgs({
    options: { runs: { type: "string", default: "2" }, "build-seconds": { type: "string", default: "10" } },
  });
  measureCriticalPath(Number(values.runs), Number(values["build-seconds"]) * 1000)
    .then((result) => console.log(criticalPathLines(result)))
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
}
