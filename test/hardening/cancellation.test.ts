import assert from "node:assert/strict";
import { mulberry32 } from "../../standins";
import {
  ACI_INPUTS,
  AGENT_IMAGE,
  assertNoSecrets,
  leftovers,
  mapConcurrently,
  runTask,
  startStandins,
  taskEnvironment,
  type Standins,
  type TaskRun,
  ensureBundles,
} from "../../standins/taskProcess";
import { runTeardownInProcess, type InProcessRun } from "../tasks/inProcessRun";

const START_INPUTS = { ...ACI_INPUTS, image: AGENT_IMAGE, count: "2" };
const TEARDOWN_INPUTS = { ...ACI_INPUTS, awaitTimeoutMinutes: "1", gracePeriodSeconds: "2" };
/** Signals per milestone; each run's delay after its milestone is drawn from its seed. */
const RUNS_PER_MILESTONE = 2;
const CONCURRENT_RUNS = 4;
/**
 * Where a signal lands: some runs early after spawn (before the task's handlers exist), the others shortly
 * after a line the task prints on its way, so that a loaded machine does not shift the points.
 */
const MILESTONES: readonly (RegExp | undefined)[] = [
  undefined,
  /##vso\[task\.setsecret\]/,
  /Launching \d+ agent\(s\)/,
  /Created \d+ container\(s\)/,
  /registered in pool/,
  /is online after/,
];
const EARLY_SIGNAL_MS = 800;
const AFTER_MILESTONE_MS = 250;

type Signal = "SIGTERM" | "SIGKILL";

interface RunReport {
  /** How far the start got before the signal, judged by what it printed. */
  stage: "before any output" | "before creating" | "while creating" | "while waiting" | "finished";
}

function stageOf(run: TaskRun): RunReport["stage"] {
  if (run.result?.status === "Succeeded") return "finished";
  if (/Created \d+ container\(s\)/.test(run.stdout)) return "while waiting";
  if (/Launching \d+ agent\(s\)/.test(run.stdout)) return "while creating";
  return run.stdout.trim() ? "before creating" : "before any output";
}

function assertNothingLeft(standins: Standins, context: string): void {
  assert.deepEqual(leftovers(standins), { containers: [], agents: [] }, `nothing left ${context}`);
}

/** The teardown that follows a start: in this process, since the start's process is what these runs test. */
function teardownByRunKey(standins: Standins, runKey: string): Promise<InProcessRun> {
  return runTeardownInProcess(standins, { inputs: { ...TEARDOWN_INPUTS, runKey } });
}

/** Starts 2 agents and sends `signal` a seeded delay after the milestone; checks what is left as the signal demands. */
async function interruptedStart(
  signal: Signal,
  milestone: RegExp | undefined,
  seed: number,
): Promise<RunReport> {
  const delayMs = Math.round(mulberry32(seed)() * (milestone ? AFTER_MILESTONE_MS : EARLY_SIGNAL_MS));
  const standins = await startStandins();
  try {
    const runKey = `${signal.toLowerCase()}-${seed}`;
    const where = `(${signal} ${delayMs} ms after ${milestone ? String(milestone) : "spawn"}, seed ${seed})`;
    const run = await runTask(
      "StartEphemeralAgentV1",
      taskEnvironment(standins, { inputs: { ...START_INPUTS, runKey } }),
      { interruptAfter: { ms: delayMs, signal, from: milestone } },
    );
    assertNoSecrets(run.stdout + run.stderr);
    const stage = stageOf(run);
    if (stage === "finished") {
      // The start ended before the signal: its agents are online and the teardown's to remove.
      const result = await teardownByRunKey(standins, runKey);
      assert.equal(result.outcome.status, "Succeeded", `${where}: ${result.outcome.message}\n${result.log}`);
    } else if (signal === "SIGTERM") {
      if (run.result) {
        assert.equal(run.result.status, "Failed", `${where}\n${run.stdout}`);
        assert.match(run.result.message, /Cancelled; removed what this task created/, where);
      }
      // Right after the task exits: it removed what it created itself.
      assertNothingLeft(standins, `right after the cancelled start ${where}\n${run.stdout}`);
    } else {
      assert.equal(run.result, undefined, `a killed task reports nothing ${where}`);
      const result = await teardownByRunKey(standins, runKey);
      assert.equal(result.outcome.status, "Succeeded", `${where}: ${result.outcome.message}\n${result.log}`);
      assertNoSecrets(result.log);
    }
    assertNothingLeft(standins, `at the end ${where}`);
    return { stage };
  } finally {
    await standins.close();
  }
}

function tally(reports: readonly RunReport[]): string {
  const counts = new Map<string, number>();
  for (const report of reports) counts.set(report.stage, (counts.get(report.stage) ?? 0) + 1);
  return [...counts].map(([stage, count]) => `${count} ${stage}`).join(", ");
}

describe("Hardening: the start task killed at random points (bundled tasks)", function () {
  this.timeout(180_000);

  before(() => ensureBundles());

  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    const promise =
      signal === "SIGTERM"
        ? "the task removes what it created before it exits"
        : "a teardown by run key removes everything";
    const runs = MILESTONES.length * RUNS_PER_MILESTONE;
    it(`${signal} at ${runs} seeded points, ${RUNS_PER_MILESTONE} after each milestone: ${promise}`, async () => {
      const points = Array.from({ length: runs }, (_, index) => ({
        milestone: MILESTONES[index % MILESTONES.length],
        seed: 2000 + index,
      }));
      const began = Date.now();
      const reports = await mapConcurrently(points, CONCURRENT_RUNS, ({ milestone, seed }) =>
        interruptedStart(signal, milestone, seed),
      );
      console.log(
        `      ${signal}, ${runs} runs: ${tally(reports)}; nothing left in any; ${((Date.now() - began) / 1000).toFixed(1)} s`,
      );
      // The seeded points must reach each stage the task can be in, or the runs prove less than they claim.
      const stages = new Set(reports.map((report) => report.stage));
      for (const stage of ["while creating", "while waiting"] as const)
        assert.ok(stages.has(stage), `no ${signal} landed ${stage}: ${tally(reports)}`);
      assert.ok(
        stages.has("before creating") || stages.has("before any output"),
        `no ${signal} landed before creating: ${tally(reports)}`,
      );
    });
  }
});
