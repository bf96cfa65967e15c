// The agent image's warm mode against the real Docker engine and the Azure DevOps stand-in: the container makes
// its own key and prints only the public half; the test registers the agent with that key, as the start task does,
// and writes the settings where a config map puts them; the agent then signs in with the key that never left the
// container, takes one job and exits. Also: the wait's bound, a stop while waiting, and bad settings.
import assert from "node:assert/strict";
import { ENV } from "../../tasks/common/core/contract";
import { PUBLIC_KEY_MARKER, publicKeyInLog, warmAgentSettings } from "../../tasks/common/core/warmStart";
import { AzureDevOpsPools } from "../../tasks/common/clients/azureDevOps";
import { registerAgent } from "../../tasks/common/start/registrations";
import { DEFAULT_RETRY_POLICY } from "../../tasks/common/core/retry";
import { startDevOps, type DevOpsStandin } from "../../standins/devops";
import { agentImage, buildAgentImage, packFakeAgent } from "../../standins/images";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ContainerTracker, tarOf, type ContainerRun } from "./containers";
import { requireDockerEngine } from "./engine";

const token = "warm-image-test-token-0123456789";
const poolName = "Ephemeral";
/** Upper bound that only guards against a hang. */
const hangGuardMs = 60_000;
const settingsDirectory = "/mnt/configmap/agent";

describe("agent image warm mode (real Docker engine)", function () {
  this.timeout(5 * 60_000);
  const containers = new ContainerTracker();
  let packageDirectory = "";
  let devOps: DevOpsStandin;

  before(async function () {
    await requireDockerEngine(this);
    await buildAgentImage();
    packageDirectory = await mkdtemp(path.join(os.tmpdir(), "fake-agent-package-"));
    const agentPackagePath = await packFakeAgent(path.join(packageDirectory, "vsts-agent.tar.gz"));
    devOps = await startDevOps({
      pools: [{ name: poolName }],
      tokens: [{ token, defaultPoolRight: "manage" }],
      agentPackagePath,
      longPollMs: 500,
    });
  });

  after(async () => {
    await devOps?.close();
    await rm(packageDirectory, { recursive: true, force: true });
  });

  afterEach(() => containers.removeAll());

  function startWarm(more: Record<string, string> = {}): Promise<ContainerRun> {
    return containers.start(agentImage, { EPHEMERAL_AGENT_WARM_START: "true", ...more });
  }

  async function publicKeyOf(run: ContainerRun) {
    const started = Date.now();
    for (;;) {
      const key = publicKeyInLog(await run.output());
      if (key) return key;
      if (Date.now() - started > hangGuardMs)
        throw new Error(`no public key printed:\n${await run.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it("prints only its public key, waits for its settings, then runs the agent with the key it made", async () => {
    const agentName = "warm-image-one-job";
    const run = await startWarm();
    const publicKey = await publicKeyOf(run);
    assert.equal(devOps.agents(poolName).length, 0, "nothing registered before the task registers the agent");

    const pools = await AzureDevOpsPools.connect(
      devOps.url,
      token,
      DEFAULT_RETRY_POLICY,
      new AbortController().signal,
      { warn: () => undefined },
    );
    const pool = await pools.findPool(poolName);
    const registered = await registerAgent(
      agentName,
      publicKey,
      pool,
      { runKey: agentName, collectionUrl: devOps.url, workFolder: "_work" },
      pools,
    );
    const agentPackage = await pools.agentPackage("linux-x64");
    assert.ok(agentPackage);
    const settings = warmAgentSettings(registered.settings, registered.authorization, {
      [ENV.agentPackageUrl]: agentPackage.downloadUrl,
      [ENV.agentPackageSha256]: agentPackage.sha256 ?? "",
      [ENV.url]: devOps.url,
      [ENV.pool]: poolName,
      [ENV.agentName]: agentName,
      [ENV.runKey]: agentName,
      [ENV.lifetimeMinutes]: "30",
      FAKE_AGENT_JOB_SECONDS: "1",
    });
    await run.container.putArchive(
      tarOf(
        Object.fromEntries(
          Object.entries(settings).map(([file, content]) => [`${settingsDirectory}/${file}`, content]),
        ),
      ),
      { path: "/" },
    );

    const online = Date.now();
    while (devOps.agent(poolName, agentName)?.status !== "online") {
      if (Date.now() - online > hangGuardMs) throw new Error(`not online:\n${await run.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const issued = devOps.agentOAuth.issuedTokens.filter(
      (issuedToken) => issuedToken.agent.name === agentName,
    );
    assert.equal(
      issued.length,
      1,
      "the agent signed in with an assertion the registered public key verifies",
    );
    const agent = devOps.agent(poolName, agentName);
    assert.equal(agent?.systemCapabilities[ENV.runKey], agentName);
    assert.ok(
      !("EPHEMERAL_AGENT_WARM_START" in (agent?.systemCapabilities ?? {})),
      "warm mode is no capability",
    );

    const job = devOps.queueJob({ poolName, demands: { [ENV.runKey]: agentName }, jobName: "Deploy" });
    const { exitCode, output } = await run.exit(hangGuardMs);
    assert.equal(exitCode, 0, output);
    assert.match(output, /Job Deploy completed with result: Succeeded/);
    assert.equal(devOps.state.findJob(job.requestId)?.result, "succeeded");
    const printed = output.split("\n").filter((line) => line.includes(PUBLIC_KEY_MARKER));
    assert.equal(printed.length, 1, "one key line");
    assert.doesNotMatch(
      output,
      /"d"\s*:|PRIVATE KEY|privateExponent/,
      "nothing of the private key is printed",
    );
    assert.doesNotMatch(output, new RegExp(token));
  });

  it("exits with code 3 when no settings arrive within its bound, so that the pool replaces it", async () => {
    const run = await startWarm({ EPHEMERAL_AGENT_WARM_WAIT_MINUTES: "0.02" });
    const { exitCode, output } = await run.exit(hangGuardMs);
    assert.equal(exitCode, 3, output);
    assert.match(output, /no agent settings arrived in \/mnt\/configmap\/agent within 0\.02 minutes/);
  });

  it("stops at once on SIGTERM while it waits for its settings", async () => {
    const run = await startWarm();
    await publicKeyOf(run);
    await run.container.kill({ signal: "SIGTERM" });
    const { exitCode } = await run.exit(hangGuardMs);
    assert.equal(exitCode, 143);
  });

  it("refuses an environment setting whose name is no variable name", async () => {
    const run = await startWarm();
    await publicKeyOf(run);
    await run.container.putArchive(
      tarOf({
        [`${settingsDirectory}/agent`]: "{}",
        [`${settingsDirectory}/credentials`]: "{}",
        [`${settingsDirectory}/environment`]: JSON.stringify({ "BAD NAME": "x" }),
      }),
      { path: "/" },
    );
    const { exitCode, output } = await run.exit(hangGuardMs);
    assert.equal(exitCode, 2, output);
    assert.match(output, /names a variable 'BAD NAME', which is no variable name/);
  });
});
