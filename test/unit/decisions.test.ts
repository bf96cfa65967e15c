import assert from "node:assert/strict";
import {
  demandFor,
  identityFromTags,
  tagsFor,
  agentEnvironment,
  type AgentIdentity,
} from "../../tasks/common/core/contract";
import type { PoolAgent } from "../../tasks/common/core/ports";
import { missingArmActions } from "../../tasks/common/providers/aci/armPermissions";
import { statusOfGroup } from "../../tasks/common/providers/aci/aciProvider";
import {
  isEphemeralAgentName,
  maySweepContainer,
  maySweepRegistration,
  shouldAwait,
  shouldGrantGrace,
  teardownOutcome,
} from "../../tasks/common/teardown/decisions";
import { Deadline } from "../../tasks/common/core/timing";

const NOW = new Date("2026-11-22T12:00:00Z");
const minutesAgo = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000);
const identity = (createdMinutesAgo: number, lifetimeMinutes = 120): AgentIdentity => ({
  name: "ephemeral-7-abcde-1",
  pool: "Private",
  runKey: "7",
  created: minutesAgo(createdMinutesAgo),
  lifetimeMinutes,
});
const agent = (overrides: Partial<PoolAgent> = {}): PoolAgent => ({
  id: 1,
  name: "ephemeral-7-abcde-1",
  online: false,
  ...overrides,
});

describe("contract between start, image and teardown", () => {
  it("round-trips an agent's identity through tags", () => {
    const original = identity(5);
    assert.deepEqual(identityFromTags(tagsFor(original)), original);
  });

  it("ignores containers whose tags are not ours or incomplete", () => {
    assert.equal(identityFromTags({ owner: "someone" }), undefined);
    const tags = tagsFor(identity(5));
    delete tags["ephemeral-agent-created"];
    assert.equal(identityFromTags(tags), undefined);
  });

  it("puts the run key where the demand finds it and keeps the token out of the visible environment", () => {
    const environment = agentEnvironment(identity(0), "https://dev.azure.com/org/", { EXTRA: "1" });
    assert.equal(environment.EPHEMERAL_AGENT_RUN, "7");
    assert.equal(environment.AZP_URL, "https://dev.azure.com/org/");
    assert.equal(environment.EPHEMERAL_AGENT_MAX_LIFETIME_MINUTES, "120");
    assert.equal(environment.EXTRA, "1");
    assert.ok(!("AZP_TOKEN" in environment));
    assert.equal(demandFor("7"), "EPHEMERAL_AGENT_RUN -equals 7");
  });
});

describe("teardown decisions", () => {
  it("waits only for agents running a job whose container still runs", () => {
    const busy = agent({ online: true, currentJob: { name: "Deploy" } });
    assert.equal(shouldAwait(busy, { state: "running" }), true);
    assert.equal(shouldAwait(busy, undefined), true);
    assert.equal(shouldAwait(busy, { state: "exited", exitCode: 137 }), false);
    assert.equal(shouldAwait(agent({ online: true }), { state: "running" }), false);
    assert.equal(shouldAwait(undefined, { state: "running" }), false);
  });

  it("grants the grace period only to running containers whose agent finished a job", () => {
    const done = agent({ lastJob: { name: "Deploy", result: "succeeded" } });
    assert.equal(shouldGrantGrace(done, { state: "running" }), true);
    assert.equal(shouldGrantGrace(done, { state: "exited", exitCode: 0 }), false);
    assert.equal(shouldGrantGrace(agent({ online: true }), { state: "running" }), false);
  });

  it("sweeps a container only past both the sweep age and its lifetime, never a live agent's", () => {
    const policy = { olderThanMinutes: 60, now: NOW };
    assert.equal(maySweepContainer(identity(180, 120), undefined, policy), true);
    assert.equal(maySweepContainer(identity(90, 120), undefined, policy), false, "within its lifetime");
    assert.equal(maySweepContainer(identity(30, 10), undefined, policy), false, "younger than the sweep age");
    assert.equal(maySweepContainer(identity(180, 120), agent({ online: true }), policy), false, "online");
    assert.equal(
      maySweepContainer(identity(180, 120), agent({ currentJob: { name: "x" } }), policy),
      false,
      "busy",
    );
  });

  it("sweeps a registration only when offline, idle, old and without a kept container", () => {
    const policy = { olderThanMinutes: 60, now: NOW };
    assert.equal(maySweepRegistration(agent({ createdOn: minutesAgo(90) }), false, policy), true);
    assert.equal(maySweepRegistration(agent({ createdOn: minutesAgo(30) }), false, policy), false);
    assert.equal(
      maySweepRegistration(agent({ createdOn: minutesAgo(90), online: true }), false, policy),
      false,
    );
    assert.equal(maySweepRegistration(agent({ createdOn: minutesAgo(90) }), true, policy), false);
    assert.equal(maySweepRegistration(agent({}), false, policy), false, "no creation date");
  });

  it("recognises names the start task makes", () => {
    assert.equal(isEphemeralAgentName("ephemeral-42-k3x9q-1", "ephemeral"), true);
    assert.equal(isEphemeralAgentName("ephemeral-build-host", "ephemeral"), false);
    assert.equal(isEphemeralAgentName("other-42-k3x9q-1", "ephemeral"), false);
  });

  it("maps issues onto the task result", () => {
    assert.equal(teardownOutcome([]), "Succeeded");
    assert.equal(teardownOutcome(["could not remove"]), "SucceededWithIssues");
  });
});

describe("ARM permissions", () => {
  it("grants actions by wildcard and honours notActions", () => {
    const contributor = [{ actions: ["*"], notActions: ["Microsoft.Authorization/*/Write"] }];
    assert.deepEqual(
      missingArmActions(contributor, ["Microsoft.ContainerInstance/containerGroups/write"]),
      [],
    );
    const reader = [{ actions: ["*/read"], notActions: [] }];
    assert.deepEqual(
      missingArmActions(reader, [
        "Microsoft.ContainerInstance/containerGroups/read",
        "Microsoft.ContainerInstance/containerGroups/write",
      ]),
      ["Microsoft.ContainerInstance/containerGroups/write"],
    );
    const excluded = [
      {
        actions: ["Microsoft.ContainerInstance/*"],
        notActions: ["Microsoft.ContainerInstance/containerGroups/delete"],
      },
    ];
    assert.deepEqual(missingArmActions(excluded, ["Microsoft.ContainerInstance/containerGroups/delete"]), [
      "Microsoft.ContainerInstance/containerGroups/delete",
    ]);
  });
});

describe("ACI container group states", () => {
  const container = (currentState?: object) => ({
    name: "agent",
    image: "a",
    resources: { requests: { cpu: 1, memoryInGB: 1 } },
    instanceView: currentState ? { currentState } : undefined,
  });

  it("maps provisioning, running, terminated and failed groups", () => {
    assert.equal(
      statusOfGroup({ provisioningState: "Creating", containers: [container()] }).state,
      "provisioning",
    );
    assert.equal(
      statusOfGroup({ provisioningState: "Succeeded", containers: [container({ state: "Running" })] }).state,
      "running",
    );
    assert.deepEqual(
      statusOfGroup({
        provisioningState: "Succeeded",
        containers: [container({ state: "Terminated", exitCode: 2, detailStatus: "Error" })],
      }),
      {
        state: "exited",
        exitCode: 2,
        detail: "Error",
      },
    );
    const failed = statusOfGroup({
      provisioningState: "Failed",
      containers: [container()],
      instanceView: { events: [{ name: "Failed", message: "image pull failed" }] },
    });
    assert.equal(failed.state, "failed");
    assert.match(failed.detail ?? "", /image pull failed/);
  });
});

describe("deadlines", () => {
  it("cuts the last wait short at the deadline", () => {
    let now = 0;
    const deadline = new Deadline(() => now, 10_000);
    assert.equal(deadline.nextWaitMs(3000), 3000);
    now = 8_500;
    assert.equal(deadline.nextWaitMs(3000), 1500);
    assert.equal(deadline.passed, false);
    now = 10_000;
    assert.equal(deadline.passed, true);
    assert.equal(deadline.nextWaitMs(3000), 0);
  });
});
