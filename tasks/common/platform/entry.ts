import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tl from "azure-pipelines-task-lib/task";
import type { Log } from "../core/log";
import type { TaskOutcome } from "../core/outcome";
import { pipelineLog } from "./log";
import { cancellationSignal } from "./signals";

export interface TaskRun {
  log: Log;
  /** Fires when the agent cancels the task. */
  signal: AbortSignal;
}

/**
 * Runs a task's body and hands its outcome to the agent: outputs, job summary, result. A failure of the body
 * becomes the outcome `failed` makes of it. `taskDirectory` holds task.json (the entry file's __dirname).
 */
export function runTask(
  taskDirectory: string,
  body: (run: TaskRun) => Promise<TaskOutcome>,
  failed: (error: unknown) => TaskOutcome,
): void {
  tl.setResourcePath(path.join(taskDirectory, "task.json"));
  const log = pipelineLog;
  const signal = cancellationSignal(log);
  body({ log, signal })
    .catch(failed)
    .then((outcome) => {
      report(outcome);
      // A failed or cancelled task has nothing left to do; the cancellation listeners would keep it alive.
      if (outcome.status === "Failed") process.exit(1);
    })
    .catch((error: unknown) => {
      tl.setResult(tl.TaskResult.Failed, `Could not report the task's result: ${String(error)}`);
      process.exit(1);
    });
}

function report(outcome: TaskOutcome): void {
  for (const [name, value] of Object.entries(outcome.outputs ?? {})) tl.setVariable(name, value, false, true);
  if (outcome.summary) uploadSummary(outcome.summary.name, outcome.summary.markdown);
  if (outcome.debug) tl.debug(outcome.debug);
  tl.setResult(tl.TaskResult[outcome.status], outcome.message);
}

/** Attaches a markdown job summary to the run. */
function uploadSummary(name: string, markdown: string): void {
  const directory = tl.getVariable("Agent.TempDirectory") ?? os.tmpdir();
  const file = path.join(directory, `${name}-${process.pid}.md`);
  fs.writeFileSync(file, markdown);
  tl.uploadSummary(file);
}
