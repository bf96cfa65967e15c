// The ARM stand-in's standby pools over real HTTP: profiles and their revisions, the pool and its runtime view, and
// the claim as the recording and the spec examples show it (reference/aci/standby/).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { STANDIN_DEFAULTS, startAll, type Standins } from "./index";
import { AzureDevOpsPools } from "../tasks/common/clients/azureDevOps";
import { generateAgentKey, type AgentPublicKey } from "../tasks/common/core/agentCredential";
import { DEFAULT_RETRY_POLICY } from "../tasks/common/core/retry";
import { publicKeyInLog, warmAgentSettings } from "../tasks/common/core/warmStart";
import { registerAgent } from "../tasks/common/start/registrations";
import { STANDBY_API, armRequest, armToken, createStandbyPool, poolReady } from "./standbyPoolSetup";

const { resourceGroup, location } = STANDIN_DEFAULTS;
const IMAGE = "myregistry.azurecr.io/ephemeral-agent:1";
const CLAIM_API = "2025-09-01";

function reference(file: string): {
  interactions: { request: { body: Record<string, unknown> }; response: { status: number; body: unknown } }[];
} {
  return JSON.parse(readFileSync(path.join(__dirname, "reference", "aci", "standby", file), "utf8")) as never;
}

/** Keys of an object and of its nested objects, as dotted paths; arrays by their first element. */
function shape(value: unknown, prefix = ""): string[] {
  if (Array.isArray(value)) return value.length ? shape(value[0], `${prefix.replace(/\.$/, "")}[].`) : [];
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([key, inner]) => [
    `${prefix}${key}`,
    ...shape(inner, `${prefix}${key}.`),
  ]);
}

/** The shape to compare with an example: systemData is the service's, and the test pool has no subnet. */
function comparableShape(body: unknown): string[] {
  return shape(body)
    .filter((key) => !key.startsWith("systemData") && !key.includes("subnetIds[]"))
    .sort();
}

describe("ARM stand-in: standby pools", () => {
  let standins: Standins;
  let token: string;
  let ids: { profileId: string; poolId: string };

  beforeEach(async () => {
    standins = await startAll({
      arm: { provisioningDelayMs: 30, standbyPools: { refillDelayMs: 10 } },
      simulateAgents: { delayMs: 10 },
    });
    token = await armToken(standins);
    ids = await createStandbyPool(standins, { image: IMAGE, readyCapacity: 2 });
    await poolReady(standins, ids.poolId, 2);
  });

  afterEach(() => standins.close());

  const groupPath = (name: string) =>
    `/subscriptions/${standins.arm.subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.ContainerInstance/containerGroups/${name}`;

  /** A claim or a config map update of the group, as the task sends them. */
  const putGroup = (name: string, body: object) =>
    armRequest(standins, token, "PUT", groupPath(name), CLAIM_API, body);

  function claimBody(configMap: Record<string, string> = {}, container = "agent", fail = false) {
    return {
      location,
      tags: { "ephemeral-agent-run-key": "42" },
      properties: {
        containerGroupProfile: { id: ids.profileId, revision: 1 },
        standbyPoolProfile: { id: ids.poolId, failContainerGroupCreateOnReuseFailure: fail },
        containers: [{ name: container, properties: { configMap: { keyValuePairs: configMap } } }],
      },
    };
  }

  it("raises a profile's revision with each PUT and answers the example's shape", async () => {
    const again = await armRequest(standins, token, "PUT", ids.profileId, STANDBY_API.profile, {
      location,
      properties: { osType: "Linux", containers: [{ name: "agent", properties: { image: IMAGE } }] },
    });
    assert.equal(again.status, 200);
    assert.equal((again.body.properties as { revision: number }).revision, 2);
    const read = await armRequest(standins, token, "GET", ids.profileId, STANDBY_API.profile);
    const example = JSON.parse(
      readFileSync(
        path.join(__dirname, "reference", "aci", "standby", "ContainerGroupProfilesGet.json"),
        "utf8",
      ),
    ) as { responses: { 200: { body: unknown } } };
    for (const key of [
      "id",
      "name",
      "type",
      "location",
      "properties",
      "properties.revision",
      "properties.containers",
    ]) {
      assert.ok(shape(example.responses[200].body).includes(key));
      assert.ok(shape(read.body).includes(key), key);
    }
  });

  it("reports the pool and its runtime view as the examples do: counts per state and health", async () => {
    const pool = await armRequest(standins, token, "GET", ids.poolId, STANDBY_API.pool);
    const poolExample = reference2("StandbyContainerGroupPools_Get.json");
    assert.deepEqual(comparableShape(pool.body), comparableShape(poolExample));
    const view = await armRequest(
      standins,
      token,
      "GET",
      `${ids.poolId}/runtimeViews/latest`,
      STANDBY_API.pool,
    );
    const viewExample = reference2("StandbyContainerGroupPoolRuntimeViews_Get.json");
    assert.deepEqual(comparableShape(view.body), comparableShape(viewExample));
    const counts = (
      view.body.properties as {
        instanceCountSummary: { instanceCountsByState: { state: string; count: number }[] }[];
      }
    ).instanceCountSummary[0].instanceCountsByState;
    assert.deepEqual(counts, [
      { state: "creating", count: 0 },
      { state: "running", count: 2 },
      { state: "deleting", count: 0 },
    ]);

    standins.arm.standbyPools.setHealth(ids.poolId, {
      code: "HealthState/degraded",
      message: "The pool identity lacks AcrPull.",
    });
    const degraded = await armRequest(
      standins,
      token,
      "GET",
      `${ids.poolId}/runtimeViews/latest`,
      STANDBY_API.pool,
    );
    assert.deepEqual((degraded.body.properties as { status: unknown }).status, {
      code: "HealthState/degraded",
      message: "The pool identity lacks AcrPull.",
    });
  });

  function reference2(file: string): unknown {
    const example = JSON.parse(
      readFileSync(path.join(__dirname, "reference", "aci", "standby", file), "utf8"),
    ) as {
      responses: { 200: { body: unknown } };
    };
    return example.responses[200].body;
  }

  it("hands out a running pooled group under the caller's name, unchanged and not restarted, as recorded", async () => {
    const pooled = standins.arm.standbyPools.pool(ids.poolId)!.members[0];
    const startedAt = pooled.containers[0].currentState?.startTime;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const claim = await putGroup("claimed-1", claimBody({ KEY: "VALUE" }));
    assert.equal(claim.status, 201);
    const recorded = reference("recording_container_reuse_from_standbypool.json").interactions[0].response;
    assert.equal(claim.status, recorded.status);
    const properties = claim.body.properties as Record<string, unknown>;
    assert.equal(properties.isCreatedFromStandbyPool, true);
    assert.equal(properties.provisioningState, "Succeeded");
    assert.deepEqual(properties.containerGroupProfile, { id: ids.profileId, revision: 1 });
    const container = (properties.containers as { name: string; properties: Record<string, unknown> }[])[0];
    const instanceView = container.properties.instanceView as {
      restartCount: number;
      currentState: { state: string; startTime: string };
    };
    assert.equal(instanceView.restartCount, 0);
    assert.equal(instanceView.currentState.state, "Running");
    assert.equal(
      instanceView.currentState.startTime,
      startedAt,
      "the container ran before the claim and kept running",
    );
    assert.deepEqual(container.properties.configMap, { keyValuePairs: { KEY: "VALUE" } });
    for (const key of [
      "properties.isCreatedFromStandbyPool",
      "properties.containerGroupProfile",
      "properties.containers[].properties.configMap",
      "properties.containers[].properties.instanceView.restartCount",
    ]) {
      assert.ok(shape(recorded.body).includes(key), `the recording has ${key}`);
      assert.ok(shape(claim.body).includes(key), `the stand-in answers ${key}`);
    }
    assert.equal(claim.body.name, "claimed-1");
    assert.deepEqual(claim.body.tags, { "ephemeral-agent-run-key": "42" });
    assert.equal(standins.arm.containerGroup("claimed-1"), pooled, "the very group the pool held");
    const listed = await armRequest(standins, token, "GET", groupPath("").replace(/\/$/, ""), "2023-05-01");
    assert.deepEqual(
      (listed.body.value as { name: string }[]).map((group) => group.name),
      ["claimed-1"],
      "pooled groups are never listed",
    );
  });

  it("refills the pool after a claim", async () => {
    await putGroup("claimed-1", claimBody());
    const claimed = standins.arm.containerGroup("claimed-1")!;
    assert.ok(
      !standins.arm.standbyPools.pool(ids.poolId)!.members.includes(claimed),
      "the claimed group left the pool",
    );
    await poolReady(standins, ids.poolId, 2);
  });

  it("accepts only config maps at a claim", async () => {
    const body = claimBody();
    const withImage = {
      ...body,
      properties: {
        ...body.properties,
        containers: [{ name: "agent", properties: { image: "other:1", configMap: { keyValuePairs: {} } } }],
      },
    };
    const refused = await putGroup("claimed-1", withImage);
    assert.equal(refused.status, 400);
    assert.match(
      JSON.stringify(refused.body),
      /ContainerGroup properties other than config map are not allowed/,
    );
    const withSubnet = { ...body, properties: { ...body.properties, subnetIds: [{ id: "/x" }] } };
    assert.equal((await putGroup("claimed-1", withSubnet)).status, 400);
    assert.equal(standins.arm.standbyPools.pool(ids.poolId)!.members.length, 2, "nothing was claimed");
  });

  it("refuses the claim with 403 LinkedAuthorizationFailed when the caller may not read the profile", async () => {
    standins.arm.permissions.splice(0, standins.arm.permissions.length, {
      actions: ["*"],
      notActions: ["Microsoft.ContainerInstance/containerGroupProfiles/read"],
    });
    const refused = await putGroup("claimed-1", claimBody());
    assert.equal(refused.status, 403);
    const error = refused.body.error as { code: string; message: string };
    const recorded = reference("recording_container_reuse_from_standbypool_denied.json").interactions[0]
      .response;
    assert.equal(refused.status, recorded.status);
    assert.equal(error.code, (recorded.body as { error: { code: string } }).error.code);
    assert.match(error.message, /containerGroupProfiles\/read' on the linked scope\(s\)/);
    assert.equal((await armRequest(standins, token, "GET", ids.profileId, STANDBY_API.profile)).status, 403);
  });

  it("drops the config map silently when the claim names another container than the profile's, as recorded", async () => {
    const claim = await putGroup("claimed-1", claimBody({ KEY: "VALUE" }, "other"));
    assert.equal(claim.status, 201);
    const container = (
      claim.body.properties as { containers: { name: string; properties: { configMap: unknown } }[] }
    ).containers[0];
    assert.equal(container.name, "agent");
    assert.deepEqual(container.properties.configMap, { keyValuePairs: {} });
  });

  it("updates a claimed group's config map without restarting it", async () => {
    const changes: string[] = [];
    standins.arm.onConfigMap((group, container) => changes.push(`${group.name}/${container}`));
    await putGroup("claimed-1", claimBody());
    const before = standins.arm.containerGroup("claimed-1")!.containers[0].currentState;
    const update = await putGroup("claimed-1", claimBody({ agent: "{}" }));
    assert.equal(update.status, 200);
    const group = standins.arm.containerGroup("claimed-1")!;
    assert.deepEqual(group.containers[0].configMap, { agent: "{}" });
    assert.equal(group.containers[0].currentState, before, "same state: no restart");
    assert.equal(group.containers[0].restartCount, 0);
    assert.deepEqual(changes, ["claimed-1/agent", "claimed-1/agent"]);
    const read = await armRequest(standins, token, "GET", groupPath("claimed-1"), CLAIM_API);
    assert.match(
      JSON.stringify(read.body),
      /"configMap":\{"keyValuePairs":\{"agent":"\{\}"\}\}/,
      "config maps come back in plain text",
    );
  });

  it("creates the group cold from the profile when the pool has none ready, or fails when asked to", async () => {
    // Degraded first: the pool then refills nothing, however slowly the claims below arrive.
    standins.arm.standbyPools.setHealth(ids.poolId, { code: "HealthState/degraded", message: "paused" });
    await putGroup("claimed-1", claimBody());
    await putGroup("claimed-2", claimBody());
    const failed = await putGroup("claimed-3", claimBody({}, "agent", true));
    assert.equal(failed.status, 409);
    assert.equal(standins.arm.containerGroup("claimed-3"), undefined);
    const cold = await putGroup("claimed-3", claimBody());
    assert.equal(cold.status, 201);
    const properties = cold.body.properties as {
      isCreatedFromStandbyPool: boolean;
      provisioningState: string;
    };
    assert.equal(properties.isCreatedFromStandbyPool, false);
    assert.equal(properties.provisioningState, "Pending", "an ordinary creation's provisioning");
    const group = standins.arm.containerGroup("claimed-3")!;
    assert.equal(
      group.request.properties?.containers?.[0]?.properties?.image,
      IMAGE,
      "made from the profile",
    );
  });

  it("deletes a claimed group like any other", async () => {
    await putGroup("claimed-1", claimBody());
    const deleted = await armRequest(standins, token, "DELETE", groupPath("claimed-1"), "2023-05-01");
    assert.equal(deleted.status, 200);
    assert.equal(standins.arm.containerGroup("claimed-1"), undefined);
  });

  /** Registers an agent with the key given, as the start task does, and hands the claimed group its settings. */
  async function handOver(groupName: string, agentName: string, publicKey: AgentPublicKey) {
    const { devops } = standins;
    const pools = await AzureDevOpsPools.connect(
      devops.url,
      STANDIN_DEFAULTS.jobToken,
      DEFAULT_RETRY_POLICY,
      new AbortController().signal,
      { warn: () => undefined },
    );
    const pool = await pools.findPool(STANDIN_DEFAULTS.poolName);
    const registered = await registerAgent(
      agentName,
      publicKey,
      pool,
      { runKey: "42", collectionUrl: devops.url, workFolder: "_work" },
      pools,
    );
    const settings = warmAgentSettings(registered.settings, registered.authorization, {
      EPHEMERAL_AGENT_RUN: "42",
    });
    await putGroup(groupName, claimBody({ ...settings }));
  }

  async function printedKey(groupName: string): Promise<AgentPublicKey> {
    const started = Date.now();
    for (;;) {
      const key = publicKeyInLog(standins.arm.containerGroup(groupName)!.containers[0].logs);
      if (key) return key;
      if (Date.now() - started > 30_000) throw new Error("no key printed");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it("brings the simulated agent online only when its registration holds the key its container printed", async () => {
    await putGroup("claimed-1", claimBody());
    await putGroup("claimed-2", claimBody());
    await handOver("claimed-1", "warm-1", await printedKey("claimed-1"));
    await printedKey("claimed-2");
    await handOver("claimed-2", "warm-2", (await generateAgentKey()).publicKey);
    const { devops, arm } = standins;
    const started = Date.now();
    while (
      devops.agent(STANDIN_DEFAULTS.poolName, "warm-1")?.status !== "online" ||
      arm.containerGroup("claimed-2")!.containers[0].currentState?.state !== "Terminated"
    ) {
      if (Date.now() - started > 30_000) throw new Error("the simulated agents did not settle");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(devops.agent(STANDIN_DEFAULTS.poolName, "warm-2")?.status, "offline");
    const refused = arm.containerGroup("claimed-2")!.containers[0];
    assert.equal(refused.currentState?.exitCode, 1);
    assert.match(
      refused.logs,
      /HTTP 401: the registration holds another public key than the one this container made/,
    );
  });

  it("prints a public key in a pooled group's log when agents are simulated, as the image's warm mode does", async () => {
    await putGroup("claimed-1", claimBody());
    const started = Date.now();
    while (
      !standins.arm.containerGroup("claimed-1")!.containers[0].logs.includes("EPHEMERAL_AGENT_PUBLIC_KEY ")
    ) {
      if (Date.now() - started > 30_000) throw new Error("no key printed");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const logs = await armRequest(
      standins,
      token,
      "GET",
      `${groupPath("claimed-1")}/containers/agent/logs`,
      "2023-05-01",
    );
    assert.match(
      String(logs.body.content),
      /^EPHEMERAL_AGENT_PUBLIC_KEY \{"exponent":"AQAB","modulus":"[A-Za-z0-9+/]+=*"\}$/m,
    );
  });
});
