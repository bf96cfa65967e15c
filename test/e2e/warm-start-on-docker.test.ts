// A warm start end to end: the ARM stand-in's standby pool runs the real agent image (stand-in agent package) in
// warm mode as a container on the local engine before any claim; the bundled start task claims it, reads the public
// key it printed, registers the agent and hands it its settings as a config map; the agent signs in with the key
// that never left the container, takes the job and exits; the bundled teardown removes the claimed group. Nothing
// secret is in the claim, the config map, the container or the outputs.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { ENV } from "../../tasks/common/core/contract";
import { PUBLIC_KEY_MARKER } from "../../tasks/common/core/warmStart";
import { demultiplexLogs } from "../../tasks/common/providers/docker/dockerWire";
import { runContainerGroupsOnDocker } from "../../standins/aciOnDocker";
import { docker } from "../../standins/images";
import {
  JOB_TOKEN,
  POOL,
  exitCodeOf,
  runBundledTask,
  startInputs,
  teardownInputs,
  waitFor,
} from "../../standins/organization";
import { createStandbyPool, poolReady } from "../../standins/standbyPoolSetup";
import { assertNoSecrets } from "../../standins/taskProcess";
import { execAsAgentUser, processEnvironments } from "./containers";
import { EngineRun } from "./engineRun";

const EVENT_GUARD_MS = 90_000;

describe("warm start from a standby pool (real Docker engine)", function () {
  this.timeout(6 * 60_000);
  const e2e = new EngineRun();

  async function logOf(container: string): Promise<string> {
    return demultiplexLogs(await docker.getContainer(container).logs({ stdout: true, stderr: true }));
  }

  it("claims a container that runs already, registers its agent with the key it made, runs the job and removes it", async () => {
    const { arm, devops } = e2e.standins();
    const bridge = runContainerGroupsOnDocker(arm);
    e2e.bridge = bridge;
    const ids = await createStandbyPool(e2e.standins(), { image: e2e.image, readyCapacity: 1 });
    await poolReady(e2e.standins(), ids.poolId, 1);
    const pooled = arm.standbyPools.pool(ids.poolId)!.members[0];
    const pooledContainer = bridge.containerName(pooled.name);
    await waitFor(
      async () => ((await logOf(pooledContainer)).includes(PUBLIC_KEY_MARKER) ? true : undefined),
      EVENT_GUARD_MS,
      "the pooled container to print its public key",
    );
    const bootedAt = (await docker.getContainer(pooledContainer).inspect()).State.StartedAt;

    const start = await runBundledTask(
      e2e.organization(),
      "StartEphemeralAgentV1",
      startInputs("aci", e2e.image, e2e.runKey, {
        standbyPool: ids.poolId,
        maxLifetimeMinutes: "30",
        environment: "FAKE_AGENT_JOB_SECONDS=1",
      }),
    );
    assert.equal(start.result?.status, "Succeeded", `${start.stdout}\n${start.stderr}`);
    const name = start.outputs.agentNames;
    assert.equal(devops.agent(POOL, name)?.status, "online");
    assert.equal(
      bridge.containerName(name),
      pooledContainer,
      "the agent runs in the container the pool started",
    );
    const inspected = await docker.getContainer(pooledContainer).inspect();
    assert.equal(inspected.State.StartedAt, bootedAt, "not restarted by the claim");
    assert.equal(inspected.RestartCount, 0);
    assert.match(start.stdout, /Claiming 1 container\(s\) from standby pool agents/);

    const issued = devops.agentOAuth.issuedTokens.filter((token) => token.agent.name === name);
    assert.equal(
      issued.length,
      1,
      "the agent signed in with an assertion its registered public key verifies",
    );

    // Nothing secret in the claim or the config map, on the container, in its processes or under /azp.
    const group = arm.containerGroup(name)!;
    const puts = arm.requests.filter(
      (request) => request.method === "PUT" && request.path.endsWith(`/${name}`),
    );
    assert.equal(puts.length, 2, "the claim and the config map update");
    const keyFile = await execAsAgentUser(
      pooledContainer,
      "stat -c '%a %U' /azp/agent/.credentials_rsaparams && cat /azp/agent/.credentials_rsaparams",
    );
    const [mode, keyJson] = [
      keyFile.slice(0, keyFile.indexOf("\n")),
      keyFile.slice(keyFile.indexOf("\n") + 1),
    ];
    assert.equal(mode, "600 agent");
    const privateExponent = (JSON.parse(keyJson) as { d: string }).d;
    for (const text of [
      JSON.stringify(puts.map((put) => put.body)),
      JSON.stringify(group.containers[0].configMap),
      JSON.stringify(inspected),
    ]) {
      assert.ok(!text.includes(JOB_TOKEN), "the job's token is in a claim, the config map or docker inspect");
      assert.ok(!text.includes(privateExponent), "the private key left the container");
    }
    // The task's own output registers the token as a secret (##vso[task.setsecret]), which the agent masks.
    for (const output of [
      start.stdout,
      start.stderr,
      JSON.stringify(start.outputs),
      start.summaries.join("\n"),
    ]) {
      assert.ok(!output.includes(privateExponent), "the private key shows in an output");
      assertNoSecrets(output);
    }
    const environments = await processEnvironments(pooledContainer);
    assert.match(
      environments,
      new RegExp(`${ENV.runKey}=${e2e.runKey}`),
      "the settings' environment reached the agent",
    );
    assert.ok(!environments.includes(JOB_TOKEN));
    const grepToken = await execAsAgentUser(
      pooledContainer,
      `grep -r -c -F '${JOB_TOKEN}' /azp | grep -v ':0$'; echo scanned`,
    );
    assert.equal(grepToken.trim(), "scanned");

    const job = devops.queueJob({ poolName: POOL, demands: { [ENV.runKey]: e2e.runKey }, jobName: "Deploy" });
    await waitFor(() => job.result, EVENT_GUARD_MS, "the job to finish");
    assert.equal(job.result, "succeeded");
    assert.equal(job.reservedAgent?.name, name);
    assert.equal(await exitCodeOf(pooledContainer, EVENT_GUARD_MS), 0);
    const log = await logOf(pooledContainer);
    assert.equal(log.split("\n").filter((line) => line.startsWith(PUBLIC_KEY_MARKER)).length, 1);
    assert.match(log, /the agent's settings arrived/);
    assert.ok(!log.includes(privateExponent));

    const teardown = await runBundledTask(
      e2e.organization(),
      "TeardownEphemeralAgentV1",
      teardownInputs("aci", e2e.runKey, { agentNames: name, gracePeriodSeconds: "5" }),
    );
    assert.equal(teardown.result?.status, "Succeeded", `${teardown.stdout}\n${teardown.stderr}`);
    assertNoSecrets(teardown.stdout);
    assert.equal(arm.containerGroup(name), undefined, "the claimed group is gone");
    assert.equal(devops.agent(POOL, name), undefined, "the registration is gone");
    await assert.rejects(docker.getContainer(pooledContainer).inspect(), /no such container/i);
    const mounts = inspected.Mounts.filter((mount) => mount.Destination === "/mnt/configmap/agent");
    assert.equal(mounts.length, 1);
    assert.equal(existsSync(mounts[0].Source), false, "the config map's folder is gone");
  });

  it("a pooled container that gets no settings within its wait limit exits, and the pool replaces it", async () => {
    const { arm } = e2e.standins();
    const bridge = runContainerGroupsOnDocker(arm);
    e2e.bridge = bridge;
    const ids = await createStandbyPool(e2e.standins(), {
      image: e2e.image,
      readyCapacity: 1,
      environment: [
        { name: "EPHEMERAL_AGENT_WARM_START", value: "true" },
        { name: "EPHEMERAL_AGENT_WARM_WAIT_MINUTES", value: "0.02" },
      ],
    });
    await poolReady(e2e.standins(), ids.poolId, 1);
    const first = arm.standbyPools.pool(ids.poolId)!.members[0];
    const firstContainer = bridge.containerName(first.name);
    const replacement = await waitFor(
      () => arm.standbyPools.pool(ids.poolId)!.members.find((member) => member !== first),
      EVENT_GUARD_MS,
      "a replacement in the pool",
    );
    assert.ok(!arm.standbyPools.pool(ids.poolId)!.members.includes(first), "the exited group left the pool");
    // Its log, kept from boot, says why it ended (the image's warm mode exits 3 at its wait limit).
    assert.match(
      first.containers[0].logs,
      /no agent settings arrived in \/mnt\/configmap\/agent within 0\.02 minutes/,
    );
    await waitFor(
      async () =>
        await docker
          .getContainer(firstContainer)
          .inspect()
          .then(
            () => undefined,
            () => true,
          ),
      EVENT_GUARD_MS,
      "the exited container to be removed",
    );
    assert.notEqual(bridge.containerName(replacement.name), firstContainer);
  });
});
