// A warm start against the stand-ins: the start task claims its agents' containers from an ACI standby pool through
// the real AciProvider (raw JSON through the SDK client's pipeline) and the real Azure DevOps client; the simulated
// pooled containers print a public key and come online once their config map holds the agent's settings. Then the
// teardown removes the claimed groups like any other. Also the checks made before anything is claimed.
import assert from "node:assert/strict";
import { STANDIN_DEFAULTS, fault } from "../../standins";
import { createStandbyPool, poolReady, type StandbyPoolIds } from "../../standins/standbyPoolSetup";
import { ACI_INPUTS, AGENT_IMAGE, leftovers, startStandins, type Standins } from "../../standins/taskProcess";
import { ENV, TAG } from "../../tasks/common/core/contract";
import { runStartInProcess, runTeardownInProcess } from "./inProcessRun";

const CLAIM_API = "2025-09-01";

describe("warm start from a standby pool, in-process against the stand-ins", function () {
  this.timeout(60_000);
  let standins: Standins;
  let ids: StandbyPoolIds;
  let runs = 0;

  beforeEach(async () => {
    standins = await startStandins({
      arm: { provisioningDelayMs: 50, standbyPools: { refillDelayMs: 10 } },
      simulateAgents: { delayMs: 10 },
    });
    ids = await createStandbyPool(standins, { image: AGENT_IMAGE, readyCapacity: 2 });
    await poolReady(standins, ids.poolId, 2);
  });
  afterEach(() => standins.close());

  const startInputs = (inputs: Record<string, string> = {}) => ({
    ...ACI_INPUTS,
    image: AGENT_IMAGE,
    count: "2",
    runKey: `warm-${++runs}`,
    standbyPool: ids.poolId,
    ...inputs,
  });

  const claims = () =>
    standins.arm.requests.filter(
      (request) => request.method === "PUT" && /\/containerGroups\/[^/]+$/.test(request.path),
    );

  it("claims ready containers, registers each agent with the key its container printed, and hands over only settings", async () => {
    const inputs = startInputs();
    const start = await runStartInProcess(standins, { inputs });
    assert.equal(start.outcome.status, "Succeeded", `${start.outcome.message}\n${start.log}`);
    assert.deepEqual(
      start.warnings.filter((warning) => !/lists no agent package/.test(warning)),
      [],
    );
    const names = start.outcome.outputs!.agentNames.split(",");
    assert.equal(names.length, 2);
    for (const name of names) {
      const group = standins.arm.containerGroup(name)!;
      assert.equal(group.standby?.fromPool, true, `${name} came from the pool`);
      assert.equal(group.tags?.[TAG.runKey], inputs.runKey, "the claim carried the run's tags");
      const settings = group.containers[0].configMap!;
      assert.deepEqual(Object.keys(settings).sort(), ["agent", "credentials", "environment"]);
      const agent = standins.devops.agent(STANDIN_DEFAULTS.poolName, name);
      assert.equal((JSON.parse(settings.agent) as { agentId: number }).agentId, agent?.id);
      assert.equal(agent?.status, "online");
      assert.equal((JSON.parse(settings.environment) as Record<string, string>)[ENV.runKey], inputs.runKey);
    }
    const puts = claims();
    assert.equal(puts.length, 4, "a claim and a config map update per agent");
    for (const put of puts) {
      assert.equal(put.query["api-version"], CLAIM_API);
      const text = JSON.stringify(put.body);
      assert.ok(!text.includes(STANDIN_DEFAULTS.jobToken), "no token in a claim or an update");
      assert.doesNotMatch(text, /credentials_rsaparams|"d":|PRIVATE KEY/, "no private key");
      assert.deepEqual(
        Object.keys((put.body as { properties: object }).properties).sort(),
        ["containerGroupProfile", "containers", "standbyPoolProfile"],
        "only config maps besides the profile and the pool",
      );
    }
    assert.match(start.outcome.summary!.markdown, /claimed warm from the standby pool/);

    const teardown = await runTeardownInProcess(standins, {
      inputs: { ...ACI_INPUTS, runKey: inputs.runKey, awaitTimeoutMinutes: "0.05", gracePeriodSeconds: "0" },
    });
    assert.equal(teardown.outcome.status, "Succeeded", `${teardown.outcome.message}\n${teardown.log}`);
    assert.deepEqual(leftovers(standins), { containers: [], agents: [] });
    await poolReady(standins, ids.poolId, 2);
  });

  it("sweeps a claimed group an earlier run left behind, recognised by the tags of its claim", async () => {
    const left = await runStartInProcess(standins, {
      inputs: startInputs({ count: "1", maxLifetimeMinutes: "30" }),
    });
    assert.equal(left.outcome.status, "Succeeded", left.outcome.message);
    const name = left.outcome.outputs!.agentNames;
    const group = standins.arm.containerGroup(name)!;
    // Claimed long ago: past the sweep's age and its own lifetime. Its agent went offline with its run.
    group.tags![TAG.created] = new Date(Date.now() - 3 * 60 * 60_000).toISOString();
    standins.devops.simulateAgent.offline(STANDIN_DEFAULTS.poolName, name);
    const teardown = await runTeardownInProcess(standins, {
      inputs: {
        ...ACI_INPUTS,
        runKey: "a-later-run",
        sweepOlderThanMinutes: "60",
        awaitTimeoutMinutes: "0.05",
        gracePeriodSeconds: "0",
      },
    });
    assert.equal(teardown.outcome.status, "Succeeded", `${teardown.outcome.message}\n${teardown.log}`);
    assert.equal(standins.arm.containerGroup(name), undefined, "the claimed group was swept");
  });

  it("removes what it claimed and registered when a later claim fails, naming the fallback", async () => {
    // The second agent's claim fails, as when the pool ran dry between the check and the claim.
    const claimed = new Set<string>();
    standins.arm.intercept((request) => {
      const name = /\/containerGroups\/([^/]+)$/.exec(request.path)?.[1];
      if (request.method !== "PUT" || !name || claimed.has(name)) return undefined;
      claimed.add(name);
      if (claimed.size !== 2) return undefined;
      return fault({
        reply: {
          status: 409,
          body: {
            error: {
              code: "ContainerGroupReuseFromStandbyPoolFailed",
              message: "No container group could be obtained.",
            },
          },
        },
      })(request);
    });
    const start = await runStartInProcess(standins, { inputs: startInputs({ standbyPoolFallback: "fail" }) });
    assert.equal(start.outcome.status, "Failed");
    assert.match(
      start.outcome.message,
      /claim container group .*standbyPoolFallback is fail.*set standbyPoolFallback to cold/,
    );
    assert.deepEqual(leftovers(standins), { containers: [], agents: [] });
  });

  it("goes on cold, with a warning, when the pool has fewer containers ready than agents", async () => {
    // Degraded: the pool refills nothing while the start claims.
    standins.arm.standbyPools.setHealth(ids.poolId, { code: "HealthState/degraded", message: "paused" });
    const start = await runStartInProcess(standins, { inputs: startInputs({ count: "3" }) });
    assert.equal(start.outcome.status, "Succeeded", `${start.outcome.message}\n${start.log}`);
    assert.match(start.warnings.join("\n"), /has 2 container\(s\) ready for 3 agent\(s\).*start cold/);
    assert.match(start.warnings.join("\n"), /had no container ready for agent .*created one cold/);
    const names = start.outcome.outputs!.agentNames.split(",");
    const origins = names.map((name) => standins.arm.containerGroup(name)!.standby?.fromPool).sort();
    assert.deepEqual(origins, [false, true, true]);
  });

  it("fails before claiming anything when the pool is short and standbyPoolFallback is fail", async () => {
    const start = await runStartInProcess(standins, {
      inputs: startInputs({ count: "3", standbyPoolFallback: "fail" }),
    });
    assert.equal(start.outcome.status, "Failed");
    assert.match(
      start.outcome.message,
      /has 2 container\(s\) ready for 3 agent\(s\).*set standbyPoolFallback to cold/,
    );
    assert.deepEqual(claims(), []);
  });

  it("names the pool's health status when it is degraded", async () => {
    standins.arm.standbyPools.setHealth(ids.poolId, {
      code: "HealthState/degraded",
      message: "The standby pool's identity lacks AcrPull on the registry.",
    });
    const failed = await runStartInProcess(standins, {
      inputs: startInputs({ standbyPoolFallback: "fail" }),
    });
    assert.equal(failed.outcome.status, "Failed");
    assert.match(
      failed.outcome.message,
      /is degraded \(The standby pool's identity lacks AcrPull on the registry\.\)/,
    );
    assert.deepEqual(claims(), []);
    const warned = await runStartInProcess(standins, { inputs: startInputs({ count: "1" }) });
    assert.equal(warned.outcome.status, "Succeeded", warned.outcome.message);
    assert.match(warned.warnings.join("\n"), /is degraded \(The standby pool's identity lacks AcrPull/);
  });

  it("fails before claiming anything, naming Reader, when the connection may not read the profile", async () => {
    standins.arm.permissions.splice(0, standins.arm.permissions.length, {
      actions: ["*"],
      notActions: ["Microsoft.ContainerInstance/containerGroupProfiles/read"],
    });
    const start = await runStartInProcess(standins, { inputs: startInputs() });
    assert.equal(start.outcome.status, "Failed");
    assert.match(
      start.outcome.message,
      /lacks Microsoft\.ContainerInstance\/containerGroupProfiles\/read on container group profile .*grant it 'Reader'/,
    );
    assert.deepEqual(claims(), []);
  });

  it("refuses a profile whose container does not fit, before claiming anything", async () => {
    const cases: [Parameters<typeof createStandbyPool>[1], RegExp][] = [
      [
        { image: AGENT_IMAGE, name: "named", containerName: "worker" },
        /names its container 'worker'.*rename the profile's container to 'agent'/,
      ],
      [
        { image: "myregistry.azurecr.io/other:2", name: "other" },
        /Input 'image'.*runs 'myregistry\.azurecr\.io\/other:2'/,
      ],
      [
        { image: AGENT_IMAGE, name: "cold", environment: [] },
        /does not start the agent image in warm mode.*EPHEMERAL_AGENT_WARM_START=true/,
      ],
    ];
    for (const [setup, message] of cases) {
      const pool = await createStandbyPool(standins, { ...setup, readyCapacity: 1 });
      const start = await runStartInProcess(standins, { inputs: startInputs({ standbyPool: pool.poolId }) });
      assert.equal(start.outcome.status, "Failed", setup.name);
      assert.match(start.outcome.message, message);
    }
    const revision = await runStartInProcess(standins, {
      inputs: startInputs({ containerGroupProfileRevision: "7" }),
    });
    assert.match(
      revision.outcome.message,
      /Input 'containerGroupProfileRevision'.*holds containers of revision 1, not 7/,
    );
    const missing = await runStartInProcess(standins, {
      inputs: startInputs({ standbyPool: ids.poolId.replace(/agents$/, "nothing") }),
    });
    assert.match(missing.outcome.message, /Input 'standbyPool'.*does not exist/);
    assert.deepEqual(claims(), []);
  });
});
