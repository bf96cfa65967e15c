import type { TeardownInputs } from "../inputs/teardown";
import type { TeardownOptions } from "./teardownAgents";

/** The teardown's options: its parsed inputs and the poll interval. */
export function teardownOptions(inputs: TeardownInputs, pollIntervalMs: number): TeardownOptions {
  return {
    pool: inputs.agentPool,
    runKey: inputs.runKey,
    agentNames: inputs.agentNames,
    agentNamePrefix: inputs.agentNamePrefix,
    awaitTimeoutMs: inputs.awaitTimeoutMinutes * 60_000,
    gracePeriodMs: inputs.gracePeriodSeconds * 1000,
    showLogs: inputs.showLogs,
    sweepOlderThanMinutes: inputs.sweepOlderThanMinutes,
    pollIntervalMs,
  };
}
