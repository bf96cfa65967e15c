import type { AgentIdentity } from "../core/contract";
import { isFinished, type ContainerStatus, type PoolAgent } from "../core/ports";

/** Wait for an agent while it runs a job, unless its container is gone (the job cannot finish then). */
export function shouldAwait(agent: PoolAgent | undefined, container: ContainerStatus | undefined): boolean {
  if (!agent?.currentJob) return false;
  return container === undefined || !isFinished(container);
}

/** Give a container time to exit by itself only when its agent did its job (with --once it then exits). */
export function shouldGrantGrace(
  agent: PoolAgent | undefined,
  container: ContainerStatus | undefined,
): boolean {
  if (!container || isFinished(container)) return false;
  return agent?.lastJob !== undefined && agent.currentJob === undefined;
}

export interface SweepPolicy {
  olderThanMinutes: number;
  now: Date;
}

function ageMinutes(since: Date, now: Date): number {
  return (now.getTime() - since.getTime()) / 60_000;
}

/** A sweep removes a container only past both the sweep age and its own recorded lifetime, and never a live agent's. */
export function maySweepContainer(
  identity: AgentIdentity,
  agent: PoolAgent | undefined,
  policy: SweepPolicy,
): boolean {
  if (agent?.online || agent?.currentJob) return false;
  const age = ageMinutes(identity.created, policy.now);
  return age >= policy.olderThanMinutes && age >= identity.lifetimeMinutes;
}

/** A sweep removes an agent registration only when it is offline, idle and old, and its container is not kept. */
export function maySweepRegistration(agent: PoolAgent, containerKept: boolean, policy: SweepPolicy): boolean {
  if (agent.online || agent.currentJob || containerKept) return false;
  if (!agent.createdOn) return false;
  return ageMinutes(agent.createdOn, policy.now) >= policy.olderThanMinutes;
}

/** Agent names the start task makes: prefix, run key segment, launch id, number. */
export function isEphemeralAgentName(name: string, prefix: string): boolean {
  return name.startsWith(`${prefix}-`) && /-[a-z0-9]{5}-\d+$/.test(name);
}

export type TeardownOutcome = "Succeeded" | "SucceededWithIssues";

export function teardownOutcome(issues: readonly string[]): TeardownOutcome {
  return issues.length ? "SucceededWithIssues" : "Succeeded";
}
