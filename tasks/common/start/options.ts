import type { StartInputs } from "../inputs/start";
import type { StartOptions } from "./startAgents";

/** The start's options: its parsed inputs, the organization the agents register in and the poll interval. */
export function startOptions(
  inputs: StartInputs,
  organization: { collectionUrl: string; token: string },
  pollIntervalMs: number,
): StartOptions {
  return {
    pool: inputs.agentPool,
    runKey: inputs.runKey,
    namePrefix: inputs.agentNamePrefix,
    count: inputs.count,
    image: inputs.image.reference,
    collectionUrl: organization.collectionUrl,
    token: organization.token,
    registration: inputs.registration,
    environment: inputs.environment,
    onlineTimeoutMs: inputs.onlineTimeoutMinutes * 60_000,
    maxLifetimeMinutes: inputs.maxLifetimeMinutes,
    keepOnFailure: inputs.keepOnFailure,
    pollIntervalMs,
  };
}
