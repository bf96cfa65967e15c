import assert from "node:assert/strict";
import type { Event } from "@azure/arm-containerinstance";
import { ACI_WAITS } from "../../tasks/common/providers/aci/aciProvider";
import { DEFAULT_RETRY_POLICY } from "../../tasks/common/core/retry";
import {
  ImagePullWatch,
  imagePullFailure,
  statusOfGroup,
  type GroupView,
} from "../../tasks/common/providers/aci/groupStatus";
import {
  regionQuotaShortfall,
  sameRegion,
  subscriptionOf,
  virtualNetworkOf,
} from "../../tasks/common/providers/aci/placement";

const PULL_ERROR =
  'Failed to pull image "acr.io/agent:1": rpc error: code = Unknown desc = failed to resolve reference: unauthorized: authentication required';

function group(
  provisioningState: string,
  container: { state?: string; detailStatus?: string; exitCode?: number; events?: Event[] } = {},
  groupEvents?: Event[],
): GroupView {
  return {
    provisioningState,
    instanceView: groupEvents === undefined ? undefined : { events: groupEvents },
    containers: [
      {
        name: "agent",
        image: "acr.io/agent:1",
        resources: { requests: { cpu: 1, memoryInGB: 2 } },
        instanceView: {
          currentState: container.state
            ? { state: container.state, detailStatus: container.detailStatus, exitCode: container.exitCode }
            : undefined,
          events: container.events ?? [],
        },
      },
    ],
  };
}

describe("ACI provider: container group states", () => {
  it("takes the failure's reason from the container's events when the group's are empty", () => {
    const status = statusOfGroup(
      group(
        "Failed",
        {
          state: "Waiting",
          detailStatus: "ErrImagePull",
          events: [
            { name: "Pulling", message: 'pulling image "acr.io/agent:1"', type: "Normal" },
            { name: "Failed", message: PULL_ERROR, type: "Warning" },
          ],
        },
        [],
      ),
    );
    assert.equal(status.state, "failed");
    assert.match(status.detail ?? "", /provisioning state Failed: Failed: Failed to pull image/);
    assert.doesNotMatch(status.detail ?? "", /Pulling/, "only the warnings when there are some");
    assert.match(status.detail ?? "", /image name and tag.*AcrPull.*trusted-services/);
  });

  it("joins group-level and container events", () => {
    const status = statusOfGroup(
      group("Failed", { events: [{ name: "BackOff", message: "Back-off", type: "Warning" }] }, [
        { name: "FailedMount", message: "mount failed", type: "Warning" },
      ]),
    );
    assert.equal(status.detail, "provisioning state Failed: FailedMount: mount failed; BackOff: Back-off");
  });

  it("maps Canceled, Unhealthy and NotAccessible to failed, Deleting to missing", () => {
    for (const state of ["Canceled", "Unhealthy", "NotAccessible"]) {
      assert.deepEqual(statusOfGroup(group(state)), {
        state: "failed",
        detail: `provisioning state ${state}`,
      });
    }
    assert.equal(statusOfGroup(group("Deleting")).state, "missing");
  });

  it("maps running, exited and still-provisioning containers", () => {
    assert.deepEqual(statusOfGroup(group("Succeeded", { state: "Running" })), { state: "running" });
    assert.deepEqual(
      statusOfGroup(group("Succeeded", { state: "Terminated", exitCode: 1, detailStatus: "Error" })),
      {
        state: "exited",
        exitCode: 1,
        detail: "Error",
      },
    );
    assert.deepEqual(statusOfGroup(group("Pending")), { state: "provisioning", detail: "Pending" });
  });

  it("reads when the agent container started and exited, once it runs or ran", () => {
    const startTime = new Date("2026-12-05T08:10:03Z");
    const finishTime = new Date("2026-12-05T08:11:20Z");
    const withTimes = (state: string): GroupView => {
      const ended = state === "Terminated";
      const view = group("Succeeded", {
        state,
        ...(ended ? { exitCode: 0, detailStatus: "Completed" } : {}),
      });
      Object.assign(view.containers[0].instanceView!.currentState!, {
        startTime,
        finishTime: ended ? finishTime : undefined,
      });
      return view;
    };
    assert.deepEqual(statusOfGroup(withTimes("Running")), { state: "running", startedAt: startTime });
    assert.deepEqual(statusOfGroup(withTimes("Terminated")), {
      state: "exited",
      exitCode: 0,
      detail: "Completed",
      startedAt: startTime,
      finishedAt: finishTime,
    });
    assert.deepEqual(statusOfGroup(withTimes("Waiting")), { state: "provisioning", detail: "Waiting" });
  });

  it("recognises a container waiting on an image pull failure, with the pull error", () => {
    const waiting = group("Pending", {
      state: "Waiting",
      detailStatus: "ImagePullBackOff",
      events: [
        { name: "Failed", message: PULL_ERROR, type: "Warning" },
        { name: "BackOff", message: 'Back-off pulling image "acr.io/agent:1"', type: "Normal" },
      ],
    });
    assert.equal(imagePullFailure(waiting), `ImagePullBackOff: ${PULL_ERROR}`);
    assert.deepEqual(statusOfGroup(waiting), {
      state: "provisioning",
      detail: `ImagePullBackOff: ${PULL_ERROR}`,
    });
    assert.equal(
      imagePullFailure(group("Pending", { state: "Waiting", detailStatus: "ContainerCreating" })),
      undefined,
    );
  });

  it("gives up on a failing pull well within a minute at the default timing, however long the online timeout", () => {
    // Polling adds a few seconds per round on top of the grace.
    assert.ok(ACI_WAITS.imagePullGrace * DEFAULT_RETRY_POLICY.baseDelayMs <= 45_000);
  });

  it("turns a pull failure into a failure once it lasted the grace period, and forgets it when it clears", () => {
    let now = 0;
    const watch = new ImagePullWatch(45_000, () => now);
    const waiting = group("Pending", {
      state: "Waiting",
      detailStatus: "ErrImagePull",
      events: [{ name: "Failed", message: PULL_ERROR, type: "Warning" }],
    });
    assert.equal(watch.judge("a1", waiting, statusOfGroup(waiting)).state, "provisioning");
    now = 44_999;
    assert.equal(watch.judge("a1", waiting, statusOfGroup(waiting)).state, "provisioning");
    now = 45_000;
    const failed = watch.judge("a1", waiting, statusOfGroup(waiting));
    assert.equal(failed.state, "failed");
    assert.match(failed.detail ?? "", /image cannot be pulled \(ErrImagePull: Failed to pull image/);
    assert.match(failed.detail ?? "", /AcrPull/);
    const running = group("Succeeded", { state: "Running" });
    assert.equal(watch.judge("a1", running, statusOfGroup(running)).state, "running");
    now = 100_000;
    assert.equal(
      watch.judge("a1", waiting, statusOfGroup(waiting)).state,
      "provisioning",
      "a new grace period",
    );
  });
});

describe("ACI provider: placement", () => {
  it("compares regions by name, ignoring case and spaces", () => {
    assert.ok(sameRegion("West Europe", "westeurope"));
    assert.ok(!sameRegion("westeurope", "northeurope"));
  });

  it("reads the subscription and the virtual network of a subnet ID", () => {
    const subnet =
      "/subscriptions/s2/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/hub/subnets/aci";
    assert.equal(subscriptionOf(subnet), "s2");
    assert.equal(
      virtualNetworkOf(subnet),
      "/subscriptions/s2/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/hub",
    );
  });

  it("says which region quota the planned agents would exceed, with the numbers", () => {
    const usages = [
      { name: { value: "ContainerGroups" }, currentValue: 95, limit: 100 },
      { name: { value: "StandardCores" }, currentValue: 90, limit: 100 },
    ];
    assert.equal(regionQuotaShortfall(usages, "westeurope", 5, 2), undefined);
    assert.equal(
      regionQuotaShortfall(usages, "westeurope", 6, 1),
      "6 agent(s) need 6 container groups, but the ContainerGroups quota of region westeurope has 5 left (95 of 100 in use)",
    );
    assert.match(
      regionQuotaShortfall(usages, "westeurope", 4, 2.75) ?? "",
      /need 11 cores, but the StandardCores quota .* has 10 left/,
    );
    assert.equal(regionQuotaShortfall([], "westeurope", 50, 4), undefined, "an unlisted quota is not judged");
  });
});
