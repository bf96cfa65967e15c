import { errorMessage } from "../core/errors";
import { debugStack, type TaskOutcome } from "../core/outcome";
import type { StartCost } from "./cost";
import { StartFailure, isCancellation, type StartResult } from "./startAgents";
import { startSummary } from "./summary";

const SUMMARY_NAME = "ephemeral-agents-start";

/** The outputs that tell the next jobs how to target this run's agents. */
export function startOutputs(result: StartResult): Record<string, string> {
  const names = result.agents.map((agent) => agent.name);
  return {
    agentName: names[0] ?? "",
    agentNames: names.join(","),
    agentPool: result.pool,
    runKey: result.runKey,
    demand: result.demand,
  };
}

export function startSucceeded(result: StartResult, cost?: StartCost): TaskOutcome {
  return {
    status: "Succeeded",
    message: `${result.agents.length} agent(s) online in pool '${result.pool}'.`,
    outputs: startOutputs(result),
    summary: { name: SUMMARY_NAME, markdown: startSummary(result, "online", cost) },
  };
}

export function startFailed(error: unknown): TaskOutcome {
  const cause = error instanceof StartFailure ? error.cause : error;
  return {
    status: "Failed",
    message: isCancellation(error) ? "Cancelled; removed what this task created." : errorMessage(cause),
    summary:
      error instanceof StartFailure
        ? { name: SUMMARY_NAME, markdown: startSummary(error.result, "failed") }
        : undefined,
    debug: debugStack(cause),
  };
}
