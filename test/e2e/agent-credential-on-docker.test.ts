// Registration "agentCredential" end to end: the bundled start task registers each agent with its own key, the
// real agent image (stand-in agent package) signs in with that credential alone, takes the job and exits; the
// teardown removes the registration. While the agent listens, everything in and on its container is scanned for
// the job's token: docker inspect, the container group body (ACI, secure values included), the environment of
// every process in the container, and every file under /azp. Registration "token" runs the same way for contrast.
import assert from "node:assert/strict";
import { ENV } from "../../tasks/common/core/contract";
import { demultiplexLogs } from "../../tasks/common/providers/docker/dockerWire";
import { assertNoSecrets } from "../../standins/taskProcess";
import { runContainerGroupsOnDocker } from "../../standins/aciOnDocker";
import { docker } from "../../standins/images";
import {
  JOB_TOKEN,
  POOL,
  containersOfRun,
  exitCodeOf,
  runBundledTask,
  startInputs,
  teardownInputs,
  waitFor,
  type Provider,
} from "../../standins/organization";
import { execAsAgentUser, processEnvironments } from "./containers";
import { EngineRun } from "./engineRun";

const LIFETIME_MINUTES = "30";
const EVENT_GUARD_MS = 90_000;

describe("registration agentCredential: no token in or on the container (real Docker engine)", function () {
  this.timeout(6 * 60_000);
  const e2e = new EngineRun();

  async function logOf(container: string): Promise<string> {
    return demultiplexLogs(await docker.getContainer(container).logs({ stdout: true, stderr: true }));
  }

  async function startOneAgent(provider: Provider, registration: "agentCredential" | "token") {
    const start = await runBundledTask(
      e2e.organization(),
      "StartEphemeralAgentV1",
      startInputs(provider, e2e.image, e2e.runKey, {
        count: "1",
        registration,
        maxLifetimeMinutes: LIFETIME_MINUTES,
        environment: "FAKE_AGENT_JOB_SECONDS=1",
      }),
    );
    assert.equal(start.result?.status, "Succeeded", `${start.stdout}\n${start.stderr}`);
    const name = start.outputs.agentNames;
    assert.equal(e2e.standins().devops.agent(POOL, name)?.status, "online", `agent ${name}`);
    return { start, name };
  }

  async function runJobAndTearDown(provider: Provider, name: string): Promise<string> {
    const { devops } = e2e.standins();
    const job = devops.queueJob({ poolName: POOL, demands: { [ENV.runKey]: e2e.runKey }, jobName: "Build" });
    await waitFor(() => job.result, EVENT_GUARD_MS, "the job to finish");
    assert.equal(job.result, "succeeded");
    assert.equal(job.reservedAgent?.name, name);
    assert.equal(await exitCodeOf(e2e.containerOf(provider, name), EVENT_GUARD_MS), 0);
    const log = await logOf(e2e.containerOf(provider, name));

    const teardown = await runBundledTask(
      e2e.organization(),
      "TeardownEphemeralAgentV1",
      teardownInputs(provider, e2e.runKey, { agentNames: name, gracePeriodSeconds: "5" }),
    );
    assert.equal(teardown.result?.status, "Succeeded", `${teardown.stdout}\n${teardown.stderr}`);
    assertNoSecrets(teardown.stdout);
    assert.deepEqual(await containersOfRun(e2e.runKey), [], "containers left on the engine");
    assert.deepEqual(
      devops.agents(POOL).map((agent) => agent.name),
      [],
      "agents left in the pool",
    );
    return log;
  }

  for (const provider of ["docker", "aci"] as const) {
    it(`provider ${provider}: the agent signs in with its own key; the token is nowhere in or on its container`, async () => {
      if (provider === "aci") e2e.bridge = runContainerGroupsOnDocker(e2e.standins().arm);
      const { start, name } = await startOneAgent(provider, "agentCredential");
      const { devops } = e2e.standins();
      const container = e2e.containerOf(provider, name);

      const issued = devops.agentOAuth.issuedTokens.filter((token) => token.agent.name === name);
      assert.equal(issued.length, 1, "the agent exchanged its own assertion for a token");
      const session = devops.requests.find(
        (request) =>
          request.method === "POST" && request.path.endsWith("/sessions") && request.status === 200,
      );
      assert.equal(
        (session?.caller as { identity: { displayName: string } }).identity.displayName,
        `Agent ${name}`,
      );

      const inspected = JSON.stringify(await docker.getContainer(container).inspect());
      assert.ok(!inspected.includes(JOB_TOKEN), "docker inspect shows the token");
      if (provider === "aci") {
        const body = JSON.stringify(e2e.standins().arm.containerGroup(name)?.request);
        assert.ok(!body.includes(JOB_TOKEN), "the container group (secure values included) holds the token");
        assert.ok(!body.includes(`"${ENV.token}"`), "no AZP_TOKEN variable at all");
      } else {
        assert.ok(!inspected.includes(ENV.tokenFile), "no token file is announced");
      }
      const environments = await processEnvironments(container);
      assert.match(
        environments,
        new RegExp(`${ENV.runKey}=${e2e.runKey}`),
        "the scan read the processes' environments",
      );
      assert.ok(
        !environments.includes(JOB_TOKEN),
        "a process in the container has the token in its environment",
      );
      assert.ok(
        !environments.includes(`${ENV.agentCredential}=`),
        "the credential stays out of the processes' environment",
      );
      const grepToken = await execAsAgentUser(
        container,
        `grep -r -c -F '${JOB_TOKEN}' /azp | grep -v ':0$'; echo scanned`,
      );
      assert.equal(grepToken.trim(), "scanned", `files under /azp hold the token: ${grepToken}`);
      const key = await execAsAgentUser(
        container,
        "stat -c '%a %U' /azp/agent/.credentials_rsaparams && cat /azp/agent/.credentials_rsaparams",
      );
      const [modeLine, keyJson] = [key.slice(0, key.indexOf("\n")), key.slice(key.indexOf("\n") + 1)];
      assert.equal(modeLine, "600 agent");
      const privateExponent = (JSON.parse(keyJson) as { d: string }).d;
      assert.equal(Buffer.from(privateExponent, "base64").length, 256);

      const log = await runJobAndTearDown(provider, name);
      assert.match(log, /running agent .* with its own credential/);
      assert.match(log, /signed in with the agent's own credential/);
      assert.doesNotMatch(log, /configuring agent/, "config.sh does not run");
      for (const output of [
        start.stdout,
        start.stderr,
        JSON.stringify(start.outputs),
        start.summaries.join("\n"),
        log,
      ]) {
        assert.ok(!output.includes(privateExponent), "the private key shows in an output");
        assertNoSecrets(output);
      }
    });
  }

  it("provider docker, registration token: the container registers itself with the token, as before", async () => {
    const { name } = await startOneAgent("docker", "token");
    // The task registered nothing: config.sh in the container registered the agent with a key of its own, and
    // its listener signed in with that key, as the real agent does after configuration.
    const issued = e2e.standins().devops.agentOAuth.issuedTokens;
    assert.deepEqual(
      issued.map((token) => token.agent.name),
      [name],
    );
    const inspected = await docker.getContainer(name).inspect();
    assert.ok((inspected.Config.Env ?? []).includes(`${ENV.tokenFile}=/azp/.token`));
    // The same file scan as above finds the token here: a job on this agent could read it.
    const holders = await execAsAgentUser(name, `grep -r -l -F '${JOB_TOKEN}' /azp`);
    assert.match(holders, /\/azp\/\.agent-token/);
    const log = await runJobAndTearDown("docker", name);
    assert.match(log, /configuring agent/);
    assert.match(log, new RegExp(`^agent ${name} unregistered$`, "m"));
  });
});
