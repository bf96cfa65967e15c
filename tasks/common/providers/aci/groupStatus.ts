import type { ContainerGroup, Event } from "@azure/arm-containerinstance";
import type { ContainerStatus } from "../../core/ports";

export type GroupView = Pick<ContainerGroup, "provisioningState" | "containers" | "instanceView">;

/** Provisioning states in which the group is still being made. */
const PROVISIONING = ["Pending", "Creating", "Accepted", "Repairing", "Updating", "PreProvisioned"];
/**
 * Provisioning states from which a group does not come back by itself. The 2023-05-01 spec gives the state as a
 * plain string; the names are the ContainerGroupProvisioningState values of later api-versions.
 */
const ENDED_BADLY = ["Failed", "Unhealthy", "Canceled", "NotAccessible"];
/** Kubernetes' names for a container that waits because its image cannot be pulled (not verified for ACI). */
const PULL_FAILURES = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "RegistryUnavailable"];

/** What to check when the image cannot be pulled; said after the registry's own answer. */
export const PULL_ADVICE =
  "check the image name and tag, the registry credentials (registryConnection) or that registryIdentity has AcrPull on the registry, and a network-restricted registry's trusted-services setting";

/** Group-level events and every container's, in that order: ACI puts a pull failure on the container only. */
function allEvents(group: GroupView): Event[] {
  return [
    ...(group.instanceView?.events ?? []),
    ...group.containers.flatMap((container) => container.instanceView?.events ?? []),
  ];
}

/** What the events say went wrong: the warnings when there are any, else every event; each message once. */
export function describeEvents(events: readonly Event[]): string {
  const warnings = events.filter((event) => event.type === "Warning");
  const chosen = warnings.length ? warnings : events;
  const lines = chosen.map((event) => `${event.name ?? ""}: ${event.message ?? ""}`.trim());
  return [...new Set(lines)].join("; ");
}

/** The pull error when the first container waits because its image cannot be pulled. */
export function imagePullFailure(group: GroupView): string | undefined {
  const current = group.containers[0]?.instanceView?.currentState;
  if (current?.state !== "Waiting" || !PULL_FAILURES.includes(current.detailStatus ?? "")) return undefined;
  const events = allEvents(group).filter((event) => /pull/i.test(event.message ?? ""));
  const pullError = [...events].reverse().find((event) => event.type === "Warning") ?? events.at(-1);
  return `${current.detailStatus}${pullError?.message ? `: ${pullError.message}` : ""}`;
}

/** Maps an ACI container group onto our container states, with the agent container's start and finish times. */
export function statusOfGroup(group: GroupView): ContainerStatus {
  return { ...stateOfGroup(group), ...timesOfGroup(group) };
}

/**
 * startTime and finishTime of the first container's currentState (ContainerState in the 2023-05-01 spec), once it
 * is Running or Terminated: a Waiting state's startTime is when it began waiting.
 */
function timesOfGroup(group: GroupView): Pick<ContainerStatus, "startedAt" | "finishedAt"> {
  const current = group.containers[0]?.instanceView?.currentState;
  const times: Pick<ContainerStatus, "startedAt" | "finishedAt"> = {};
  if (current?.state !== "Running" && current?.state !== "Terminated") return times;
  if (current.startTime) times.startedAt = new Date(current.startTime);
  if (current.finishTime) times.finishedAt = new Date(current.finishTime);
  return times;
}

function stateOfGroup(group: GroupView): ContainerStatus {
  const provisioning = group.provisioningState ?? "Pending";
  if (ENDED_BADLY.includes(provisioning)) {
    const detail = describeEvents(allEvents(group));
    const advice = /failed to pull image/i.test(detail) ? `; ${PULL_ADVICE}` : "";
    return {
      state: "failed",
      detail: detail
        ? `provisioning state ${provisioning}: ${detail}${advice}`
        : `provisioning state ${provisioning}`,
    };
  }
  if (provisioning === "Deleting") return { state: "missing", detail: "being deleted" };
  const pullFailure = imagePullFailure(group);
  if (pullFailure) return { state: "provisioning", detail: pullFailure };
  if (PROVISIONING.includes(provisioning)) return { state: "provisioning", detail: provisioning };
  const current = group.containers[0]?.instanceView?.currentState;
  if (current?.state === "Terminated") {
    return { state: "exited", exitCode: current.exitCode, detail: current.detailStatus || undefined };
  }
  if (current?.state === "Waiting")
    return { state: "provisioning", detail: current.detailStatus || "Waiting" };
  return { state: "running" };
}

/**
 * Turns a container that keeps failing to pull its image into a failure once it has done so for `graceMs`: the
 * agent cannot come online, and waiting out the online timeout only hides the reason.
 */
export class ImagePullWatch {
  private readonly failingSince = new Map<string, number>();

  constructor(
    private readonly graceMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  judge(name: string, group: GroupView, status: ContainerStatus): ContainerStatus {
    const pullFailure = status.state === "provisioning" ? imagePullFailure(group) : undefined;
    if (!pullFailure) {
      this.failingSince.delete(name);
      return status;
    }
    const since = this.failingSince.get(name) ?? this.now();
    this.failingSince.set(name, since);
    if (this.now() - since < this.graceMs) return status;
    return { state: "failed", detail: `the image cannot be pulled (${pullFailure}); ${PULL_ADVICE}` };
  }
}
