import assert from "node:assert/strict";
import {
  STANDIN_DEFAULTS,
  anotherOperationInProgress,
  authorizationFailed,
  fault,
  inaccessibleImage,
  linkedAuthorizationFailed,
  requestDisallowedByPolicy,
  serviceAssociationLinkNotReady,
  type Interceptor,
} from "../../standins";
import {
  ACI_INPUTS,
  ARM_CONNECTION,
  assertNoSecrets,
  ensureBundles,
  leftovers,
  runTask,
  startStandins,
  taskEnvironment,
  type Standins,
  type TaskRun,
} from "../../standins/taskProcess";
import { runStartInProcess, runTeardownInProcess, type InProcessRun } from "./inProcessRun";

const { subscriptionId, resourceGroup, poolName } = STANDIN_DEFAULTS;
const network = (name: string, group: string = resourceGroup, subscription: string = subscriptionId) =>
  `/subscriptions/${subscription}/resourceGroups/${group}/providers/Microsoft.Network/virtualNetworks/${name}`;
/** A delegated subnet with a NAT gateway, in the resource group's region (westeurope). */
const SUBNET = `${network("spoke")}/subnets/aci`;
const NAT_GATEWAY = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/natGateways/egress`;
/** A hub network in its own resource group, in another region than the agents' resource group. */
const HUB_SUBNET = `${network("hub", "rg-network")}/subnets/aci`;
/** A delegated subnet without NAT gateway or route table. */
const CLOSED_SUBNET = `${network("closed")}/subnets/aci`;
const IDENTITY = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/acr-pull`;
const JOB_IDENTITY = IDENTITY.replace(/acr-pull$/, "acr-push");
const IMAGE = "myregistry.azurecr.io/ephemeral-agent:1";

type Inputs = Record<string, string>;

/** The start task's inputs for these stand-ins, for run `runKey`. */
const startInputs = (runKey: string, inputs: Inputs = {}): Inputs => ({
  ...ACI_INPUTS,
  image: IMAGE,
  runKey,
  ...inputs,
});
const teardownInputs = (runKey: string): Inputs => ({
  ...ACI_INPUTS,
  runKey,
  awaitTimeoutMinutes: "1",
  gracePeriodSeconds: "1",
});

/** Fails when a secret appears in what the run logged or reported. */
function assertNothingSecret(run: InProcessRun): void {
  assertNoSecrets([run.log, run.outcome.message, run.outcome.summary?.markdown ?? ""].join("\n"));
}

// The start and the teardown run in this process (inProcessRun.ts), as their entry files run them; the last
// suites run the bundled tasks for what only the entry points and the platform layer do.
describe("ACI faults, start and teardown against the stand-ins", function () {
  this.timeout(180_000);
  let standins: Standins;
  let removals: (() => void)[] = [];
  let runKeys = 0;
  let runKey: string;

  before(async () => {
    standins = await startStandins({
      arm: {
        subnets: [
          { id: SUBNET, natGateway: NAT_GATEWAY },
          { id: HUB_SUBNET, location: "northeurope", natGateway: NAT_GATEWAY },
          { id: CLOSED_SUBNET },
        ],
      },
    });
  });
  after(() => standins.close());
  beforeEach(() => {
    runKey = `fault${++runKeys}`;
  });
  afterEach(() => {
    for (const remove of removals) remove();
    removals = [];
    standins.arm.behaviours.length = 0;
    for (const region of Object.keys(standins.arm.regionUsage)) delete standins.arm.regionUsage[region];
  });

  function intercept(interceptor: Interceptor): void {
    removals.push(standins.arm.intercept(interceptor));
  }

  async function start(inputs: Inputs = {}): Promise<InProcessRun> {
    const result = await runStartInProcess(standins, { inputs: startInputs(runKey, inputs) });
    assertNothingSecret(result);
    return result;
  }

  /** The start failed with a message matching every pattern. */
  function assertFailed(result: InProcessRun, ...patterns: RegExp[]): void {
    assert.equal(result.outcome.status, "Failed", result.log);
    for (const pattern of patterns) assert.match(result.outcome.message, pattern);
  }

  function groupPuts(): { name: string; status?: number | string }[] {
    return standins.arm.requests
      .filter((request) => request.method === "PUT" && /\/containerGroups\/[^/]+$/.test(request.path))
      .filter((request) => request.path.includes(`-${runKey}-`))
      .map((request) => ({ name: request.path.split("/").pop() as string, status: request.status }));
  }

  /**
   * From the group's PUT to its removal, by the stand-in's own arrival times: a guard against waiting out the
   * 5-minute online timeout, not a speed measurement.
   */
  function assertEndedWellBeforeTheTimeout(): void {
    const ofThisRun = standins.arm.requests.filter(
      (request) => /\/containerGroups\/[^/]+$/.test(request.path) && request.path.includes(`-${runKey}-`),
    );
    const put = ofThisRun.find((request) => request.method === "PUT");
    const removal = ofThisRun.find((request) => request.method === "DELETE");
    assert.ok(put && removal, "created, then removed");
    assert.ok(removal.receivedAt - put.receivedAt < 60_000, "failed within a minute of the creation");
  }

  function assertNothingLeft(): void {
    const left = leftovers(standins, poolName);
    assert.deepEqual(
      left.containers.filter((name) => name.includes(`-${runKey}-`)),
      [],
    );
    assert.deepEqual(
      left.agents.filter((name) => name.includes(`-${runKey}-`)),
      [],
    );
  }

  function assertNothingCreated(): void {
    assert.deepEqual(groupPuts(), [], "no container group PUT");
    assertNothingLeft();
  }

  /** Removes the agents of this run with the teardown, which must succeed. */
  async function teardown(): Promise<InProcessRun> {
    const result = await runTeardownInProcess(standins, { inputs: teardownInputs(runKey) });
    assertNothingSecret(result);
    assert.equal(result.outcome.status, "Succeeded", result.log);
    assertNothingLeft();
    return result;
  }

  describe("subnet not ready", () => {
    it("retries 409 ServiceAssociationLinkNotReady on the first PUTs, creating the other groups once the first was accepted", async () => {
      const notReady = serviceAssociationLinkNotReady({ subnetId: SUBNET, times: 2 });
      intercept(notReady);
      const result = await start({ subnetId: SUBNET, count: "3" });
      assert.equal(result.outcome.status, "Succeeded", result.log);
      assert.equal(notReady.answered, 2);
      assert.match(
        result.log,
        /409 ServiceAssociationLinkNotReady: .*trying again to create container group/,
      );
      const puts = groupPuts();
      const [first] = puts;
      assert.deepEqual(
        puts.slice(0, 3).map((put) => put.name),
        [first.name, first.name, first.name],
        "the first group's PUT is retried alone",
      );
      assert.deepEqual(
        puts.map((put) => put.status),
        [409, 409, 201, 201, 201],
      );
      await teardown();
    });

    it("retries 409 AnotherOperationInProgress on a create and on a delete", async () => {
      intercept(anotherOperationInProgress({ subnetId: SUBNET, on: "create" }));
      const started = await start({ subnetId: SUBNET });
      assert.equal(started.outcome.status, "Succeeded", started.log);
      assert.match(started.log, /409 AnotherOperationInProgress/);
      intercept(anotherOperationInProgress({ on: "delete", group: new RegExp(`-${runKey}-`) }));
      const removed = await teardown();
      assert.match(removed.log, /409 AnotherOperationInProgress: .*trying again to delete container group/);
    });
  });

  describe("region and subscription of the virtual network", () => {
    it("creates the groups in the virtual network's region when location is not given", async () => {
      const result = await start({ subnetId: HUB_SUBNET, count: "2" });
      assert.equal(result.outcome.status, "Succeeded", result.log);
      const groups = standins.arm.containerGroups().filter((group) => group.name.includes(`-${runKey}-`));
      assert.deepEqual(
        groups.map((group) => group.location),
        ["northeurope", "northeurope"],
      );
      await teardown();
    });

    it("refuses a location other than the network's region before creating anything, naming both", async () => {
      const result = await start({ subnetId: HUB_SUBNET, location: "westeurope" });
      assertFailed(result, /'westeurope'/, /'northeurope'/, /virtual network's region/);
      assertNothingCreated();
    });

    it("refuses a subnet in another subscription before creating anything, naming both", async () => {
      const other = "11111111-1111-4111-8111-111111111111";
      const result = await start({ subnetId: `${network("hub", "rg-network", other)}/subnets/aci` });
      assertFailed(result, new RegExp(other), new RegExp(subscriptionId), /same subscription|subscription/);
      assertNothingCreated();
    });

    it("lets a Windows container group join a subnet", async () => {
      const result = await start({ subnetId: SUBNET, osType: "Windows" });
      assert.equal(result.outcome.status, "Succeeded", result.log);
      const [group] = standins.arm
        .containerGroups()
        .filter((candidate) => candidate.name.includes(`-${runKey}-`));
      assert.equal((group.request.properties as { osType?: string }).osType, "Windows");
      await teardown();
    });
  });

  describe("containers that do not start", () => {
    it("fails within a minute with the pull error when the group fails to pull its image (timeout 5 minutes)", async () => {
      standins.arm.behaviours.push({
        match: new RegExp(`-${runKey}-`),
        provisioning: "imagePullFailed",
        pullError: "unauthorized: authentication required",
      });
      // The suite's timeout guards against a hang; the start must end long before the 5 minutes, on its own.
      const result = await start({ onlineTimeoutMinutes: "5" });
      assertFailed(result, /Failed to pull image/, /unauthorized: authentication required/, /AcrPull/);
      assert.doesNotMatch(result.outcome.message, /Timed out/);
      assertEndedWellBeforeTheTimeout();
      assertNothingLeft();
    });

    it("fails with the pull error when the container keeps waiting in ImagePullBackOff, before the online timeout", async () => {
      standins.arm.behaviours.push({
        match: new RegExp(`-${runKey}-`),
        provisioning: "imagePullBackOff",
        pullError: "manifest unknown",
      });
      const result = await start({ onlineTimeoutMinutes: "5" });
      assertFailed(result, /image cannot be pulled/, /ImagePullBackOff|ErrImagePull/, /manifest unknown/);
      assert.doesNotMatch(result.outcome.message, /Timed out/);
      assertEndedWellBeforeTheTimeout();
      assertNothingLeft();
    });

    it("reports a Canceled group as failed", async () => {
      standins.arm.behaviours.push({ match: new RegExp(`-${runKey}-`), provisioning: "canceled" });
      const result = await start({ onlineTimeoutMinutes: "5" });
      assertFailed(result, /provisioning state Canceled/);
      assertNothingLeft();
    });

    it("explains 400 InaccessibleImage: image and tag, registry credentials or AcrPull, trusted services", async () => {
      intercept(inaccessibleImage());
      const result = await start();
      assertFailed(result, /InaccessibleImage/, /name and tag/, /AcrPull/, /trusted Azure services/);
      assertNothingLeft();
    });

    it("warns about a subnet without NAT gateway or route table, and says so when the agents time out", async () => {
      standins.arm.behaviours.push({ match: new RegExp(`-${runKey}-`), agent: false });
      const result = await start({ subnetId: CLOSED_SUBNET, onlineTimeoutMinutes: "0.05" });
      assert.ok(
        result.warnings.some((warning) => /neither a NAT gateway nor a route table/.test(warning)),
        result.log,
      );
      assertFailed(result, /Timed out/, /neither a NAT gateway nor a route table/);
      assertNothingLeft();
    });
  });

  describe("403s", () => {
    it("names the narrowest built-in role for AuthorizationFailed", async () => {
      intercept(authorizationFailed());
      const result = await start();
      assertFailed(
        result,
        /Microsoft\.ContainerInstance\/containerGroups\/write/,
        /'Azure Container Instances Contributor Role'/,
        /Contributor includes it/,
      );
      assertNothingLeft();
    });

    it("names the subnet and its join action for LinkedAuthorizationFailed", async () => {
      intercept(linkedAuthorizationFailed({ linked: "subnetJoin" }));
      const result = await start({ subnetId: SUBNET });
      assertFailed(
        result,
        /Microsoft\.Network\/virtualNetworks\/subnets\/join\/action/,
        new RegExp(SUBNET.replace(/[/.]/g, "\\$&")),
        /'Network Contributor'/,
      );
      assertNothingLeft();
    });

    it("names the identity and its assign action for LinkedAuthorizationFailed with registryIdentity", async () => {
      intercept(linkedAuthorizationFailed({ linked: "identityAssign" }));
      const result = await start({ registryIdentity: IDENTITY });
      assertFailed(
        result,
        /Microsoft\.ManagedIdentity\/userAssignedIdentities\/assign\/action/,
        /acr-pull/,
        /'Managed Identity Operator'/,
      );
      assertNothingLeft();
    });

    it("refuses up front a connection whose permissions on the registry identity lack the assign action", async () => {
      intercept(
        fault({
          match: (request) =>
            request.path.toLowerCase() ===
            `${IDENTITY}/providers/Microsoft.Authorization/permissions`.toLowerCase(),
          times: Infinity,
          reply: {
            status: 200,
            body: { value: [{ actions: ["Microsoft.ContainerInstance/*"], notActions: [] }] },
          },
        }),
      );
      const result = await start({ registryIdentity: IDENTITY });
      assertFailed(
        result,
        /lacks Microsoft\.ManagedIdentity\/userAssignedIdentities\/assign\/action on managed identity/,
        /'Managed Identity Operator'/,
      );
      assertNothingCreated();
    });

    it("puts the job identity on the container group beside the pull identity, and nowhere else", async () => {
      const result = await start({ registryIdentity: IDENTITY, jobIdentity: JOB_IDENTITY });
      assert.equal(result.outcome.status, "Succeeded", result.log);
      assert.deepEqual(
        result.warnings.filter((warning) => /identity|Could not check/.test(warning)),
        [],
        "both identities' permissions were read, and allow the assignment",
      );
      const [name] = (result.outcome.outputs?.agentNames ?? "").split(",");
      const { identity, properties, ...rest } = standins.arm.containerGroup(name)?.request as {
        identity: unknown;
        properties: { imageRegistryCredentials: unknown };
      };
      assert.deepEqual(identity, {
        type: "UserAssigned",
        userAssignedIdentities: { [IDENTITY]: {}, [JOB_IDENTITY]: {} },
      });
      assert.deepEqual(properties.imageRegistryCredentials, [
        { server: "myregistry.azurecr.io", identity: IDENTITY },
      ]);
      assert.doesNotMatch(JSON.stringify({ properties, ...rest }), /acr-push/);
      assert.doesNotMatch(JSON.stringify(result.outcome), /acr-push/);
      await teardown();
    });

    it("carries an identity given as both registryIdentity and jobIdentity once, and warns", async () => {
      const result = await start({ registryIdentity: IDENTITY, jobIdentity: IDENTITY.toUpperCase() });
      assert.equal(result.outcome.status, "Succeeded", result.log);
      assert.ok(
        result.warnings.some((warning) =>
          /jobIdentity is the same identity as registryIdentity.*give it an identity of its own/.test(
            warning,
          ),
        ),
        result.warnings.join("\n"),
      );
      const [name] = (result.outcome.outputs?.agentNames ?? "").split(",");
      const { identity } = standins.arm.containerGroup(name)?.request as { identity: unknown };
      assert.deepEqual(identity, { type: "UserAssigned", userAssignedIdentities: { [IDENTITY]: {} } });
      await teardown();
    });

    it("refuses up front a connection that may assign the pull identity but not the job identity", async () => {
      intercept(
        fault({
          match: (request) =>
            request.path.toLowerCase() ===
            `${JOB_IDENTITY}/providers/Microsoft.Authorization/permissions`.toLowerCase(),
          times: Infinity,
          reply: {
            status: 200,
            body: { value: [{ actions: ["Microsoft.ContainerInstance/*"], notActions: [] }] },
          },
        }),
      );
      const result = await start({ registryIdentity: IDENTITY, jobIdentity: JOB_IDENTITY });
      assertFailed(
        result,
        /lacks Microsoft\.ManagedIdentity\/userAssignedIdentities\/assign\/action on managed identity .*acr-push/,
        /'Managed Identity Operator'/,
      );
      assertNothingCreated();
    });

    it("names the policy of a RequestDisallowedByPolicy and says no role fixes it", async () => {
      intercept(requestDisallowedByPolicy({ policyAssignmentName: "deny-aci-public" }));
      const result = await start();
      assertFailed(result, /'deny-aci-public'/, /No role assignment lifts a policy deny/);
      assertNothingLeft();
    });

    it("goes on, with warnings, when the resource group, the subnet or the permissions cannot be read", async () => {
      intercept(authorizationFailed({ target: "readResourceGroup" }));
      intercept(authorizationFailed({ target: "readSubnet" }));
      intercept(authorizationFailed({ target: "readPermissions" }));
      const result = await start({ subnetId: SUBNET });
      assert.equal(result.outcome.status, "Succeeded", result.log);
      const couldNot = result.warnings.filter((warning) => /Could not check/.test(warning));
      assert.ok(
        couldNot.some((warning) => /resource group/.test(warning)),
        result.warnings.join("\n"),
      );
      assert.ok(
        couldNot.some((warning) => /delegation/.test(warning)),
        result.warnings.join("\n"),
      );
      assert.ok(
        couldNot.some((warning) => /permissions/.test(warning)),
        result.warnings.join("\n"),
      );
      await teardown();
    });
  });

  describe("quotas", () => {
    it("refuses, before creating anything, agents that the region's container group quota cannot hold", async () => {
      standins.arm.regionUsage.westeurope = { containerGroups: { limit: 10, used: 9 } };
      const result = await start({ count: "2" });
      assertFailed(result, /ContainerGroups quota of region westeurope has 1 left/, /9 of 10/);
      assertNothingCreated();
    });

    it("refuses agents whose cores the region's quota cannot hold", async () => {
      standins.arm.regionUsage.westeurope = { standardCores: { limit: 10, used: 8 } };
      const result = await start({ count: "2", cpu: "1.5" });
      assertFailed(result, /need 3 cores/, /StandardCores quota/);
      assertNothingCreated();
    });
  });
});

describe("ACI's create quota, start against the stand-ins", function () {
  this.timeout(120_000);
  let standins: Standins;

  before(async () => {
    standins = await startStandins({
      arm: { subnets: [{ id: SUBNET, natGateway: NAT_GATEWAY }], aciQuotas: { createsPer5Minutes: 2 } },
    });
  });
  after(() => standins.close());

  it("spaces creations once the quota runs low, reports a quota 429 as such and removes what it made", async () => {
    const result = await runStartInProcess(standins, {
      inputs: startInputs("quota", { subnetId: SUBNET, count: "3" }),
    });
    assertNothingSecret(result);
    assert.equal(result.outcome.status, "Failed", result.log);
    assert.match(result.log, /allows 1 more container group creations.*spacing the remaining 2/);
    assert.match(result.outcome.message, /quota of container group creates and deletes/);
    assert.equal(standins.arm.quotaRefusals.creates, 1);
    assert.deepEqual(leftovers(standins), { containers: [], agents: [] });
  });
});

describe("ACI through the bundled tasks", function () {
  this.timeout(180_000);
  let standins: Standins;

  before(async () => {
    await ensureBundles();
    standins = await startStandins({ arm: { subnets: [{ id: SUBNET, natGateway: NAT_GATEWAY }] } });
  });
  after(() => standins.close());

  async function runBundled(
    task: "StartEphemeralAgentV1" | "TeardownEphemeralAgentV1",
    inputs: Inputs,
    extra: Record<string, string> = {},
  ): Promise<TaskRun> {
    const result = await runTask(task, taskEnvironment(standins, { inputs, extra }), { timeoutMs: 120_000 });
    assertNoSecrets(result.stdout + result.stderr + result.summaries.join(""));
    return result;
  }

  it("starts an agent into a subnet, hands the agent its outputs and warnings, and tears it down", async () => {
    const removeReadFaults = [
      standins.arm.intercept(authorizationFailed({ target: "readResourceGroup" })),
      standins.arm.intercept(authorizationFailed({ target: "readPermissions" })),
    ];
    const started = await runBundled("StartEphemeralAgentV1", startInputs("smoke", { subnetId: SUBNET }));
    for (const remove of removeReadFaults) remove();
    assert.equal(started.result?.status, "Succeeded", started.stdout);
    assert.equal(started.result?.message, `1 agent(s) online in pool '${poolName}'.`);
    const [group] = standins.arm.containerGroups();
    assert.equal(started.outputs.agentNames, group.name);
    assert.equal(started.outputs.runKey, "smoke");
    assert.ok(
      started.warnings.some((warning) => /Could not check .*resource group/.test(warning)),
      started.stdout,
    );
    assert.equal(started.summaries.length, 1, "the job summary is attached");
    const removed = await runBundled("TeardownEphemeralAgentV1", teardownInputs("smoke"));
    assert.equal(removed.result?.status, "Succeeded", removed.stdout);
    assert.equal(removed.result?.message, "Removed 1 agent(s); nothing is left.");
    assert.deepEqual(leftovers(standins), { containers: [], agents: [] });
  });

  // The connection's environment is read by the platform layer (platform/connections.ts), from the agent's variables.
  it("refuses an Azure Stack Hub connection and points to the docker provider", async () => {
    const result = await runBundled("StartEphemeralAgentV1", startInputs("stack"), {
      [`ENDPOINT_DATA_${ARM_CONNECTION}_ENVIRONMENT`]: "AzureStack",
    });
    assert.equal(result.result?.status, "Failed", result.stdout);
    assert.match(result.result?.message ?? "", /Azure Stack Hub/);
    assert.match(result.result?.message ?? "", /provider 'docker'/);
    const puts = standins.arm.requests.filter(
      (request) => request.method === "PUT" && request.path.includes("-stack-"),
    );
    assert.deepEqual(puts, [], "no container group PUT");
    assert.deepEqual(leftovers(standins), { containers: [], agents: [] });
  });
});
