/**
 * The mock-run side of the MockTestRunner tests: sets the task's inputs with TaskMockRunner and runs the task's
 * TypeScript entry with the mock task library, as azure-pipelines-task-lib's testing guide does. Endpoints and
 * system variables arrive in the environment, as the agent passes them.
 */
import * as path from "node:path";
import { TaskMockRunner } from "azure-pipelines-task-lib/mock-run";
import type { TaskName } from "../../../standins/taskProcess";
import { INPUTS_VARIABLE, TIMEOUT_VARIABLE } from "./variables";

export function runUnderTaskMockRunner(task: TaskName): void {
  const inputs = JSON.parse(process.env[INPUTS_VARIABLE] ?? "{}") as Record<string, string>;
  const timeoutMs = Number(process.env[TIMEOUT_VARIABLE] ?? 60_000);
  delete process.env[INPUTS_VARIABLE];
  delete process.env[TIMEOUT_VARIABLE];
  setTimeout(() => {
    console.log(`##vso[task.complete result=Failed;]The mock run did not end within ${timeoutMs} ms.`);
    process.exit(2);
  }, timeoutMs).unref();

  const runner = new TaskMockRunner(path.resolve(__dirname, "../../../tasks", task, "index.ts"));
  for (const [name, value] of Object.entries(inputs)) runner.setInput(name, value);
  runner.run();
}
