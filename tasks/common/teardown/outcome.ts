import { errorMessage } from "../core/errors";
import { debugStack, type TaskOutcome } from "../core/outcome";
import { CancelledError } from "../core/timing";
import type { TeardownCost } from "./cost";
import { teardownSummary } from "./summary";
import type { TeardownResult } from "./teardownAgents";

export function teardownSucceeded(result: TeardownResult, runKey: string, cost?: TeardownCost): TaskOutcome {
  const summary = { name: "ephemeral-agents-teardown", markdown: teardownSummary(result, runKey, cost) };
  if (result.agents.length === 0) {
    return {
      status: "Succeeded",
      message: `Found no agents of run '${runKey}': nothing to remove.`,
      summary,
    };
  }
  if (result.outcome === "Succeeded") {
    return {
      status: "Succeeded",
      message: `Removed ${result.agents.length} agent(s); nothing is left.`,
      summary,
    };
  }
  return { status: "SucceededWithIssues", message: result.issues.join(" "), summary };
}

export function teardownFailed(error: unknown): TaskOutcome {
  return {
    status: "Failed",
    message:
      error instanceof CancelledError
        ? "Cancelled before everything was removed: run the teardown again."
        : errorMessage(error),
    debug: debugStack(error),
  };
}
