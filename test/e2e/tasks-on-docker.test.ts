// The bundled start and teardown tasks with the real agent image on a real Docker engine: agents register
// themselves through the image's start script (stand-in agent package) in the Azure DevOps stand-in, take
// a job, exit and are torn down. Provider docker runs them on the engine directly; provider aci goes through
// the ARM stand-in, which runs each container group it receives on the same engine (aciOnDocker.ts).
import assert from "node:assert/strict";
import { offsetMs, timelineRows } from "../summaryTimeline";
import { ENV, TAG } from "../../tasks/common/core/contract";
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
import { EngineRun } from "./engineRun";

const LIFETIME_MINUTES = "30";

describe("start and teardown tasks with the agent image (real Docker engine)", function () {
  this.timeout(5 * 60_000);
  const e2e = new EngineRun();

  async function assertNothingLeft(): Promise<void> {
    assert.deepEqual(
      (await containersOfRun(e2e.runKey)).map((container) => container.Names.join(",")),
      [],
      "containers left on the engine",
    );
    assert.deepEqual(
      e2e
        .standins()
        .devops.agents(POOL)
        .map((agent) => agent.name),
      [],
      "agents left in the pool",
    );
  }

  function assertIdentity(tags: Record<string, string> | undefined, name: string): void {
    assert.equal(tags?.[TAG.runKey], e2e.runKey);
    assert.equal(tags?.[TAG.pool], POOL);
    assert.equal(tags?.[TAG.agentName], name);
    assert.equal(tags?.[TAG.lifetimeMinutes], LIFETIME_MINUTES);
    assert.ok(!Number.isNaN(Date.parse(tags?.[TAG.created] ?? "")), "created is a date");
  }

  function assertAgentEnvironment(environment: Record<string, string>, name: string): void {
    assert.equal(environment[ENV.url]?.replace(/\/$/, ""), e2e.standins().devops.url.replace(/\/$/, ""));
    assert.equal(environment[ENV.pool], POOL);
    assert.equal(environment[ENV.agentName], name);
    assert.equal(environment[ENV.runKey], e2e.runKey);
    assert.equal(environment[ENV.lifetimeMinutes], LIFETIME_MINUTES);
    assert.equal(environment.FAKE_AGENT_JOB_SECONDS, "1");
  }

  async function logOf(container: string): Promise<string> {
    return demultiplexLogs(await docker.getContainer(container).logs({ stdout: true, stderr: true }));
  }

  async function checkLaunchedContainers(provider: Provider, names: string[]): Promise<void> {
    for (const name of names) {
      const inspected = await docker.getContainer(e2e.containerOf(provider, name)).inspect();
      assert.equal(inspected.HostConfig.NetworkMode, "host");
      const environment = Object.fromEntries(
        (inspected.Config.Env ?? []).map((entry) => [
          entry.slice(0, entry.indexOf("=")),
          entry.slice(entry.indexOf("=") + 1),
        ]),
      );
      assertAgentEnvironment(environment, name);
      if (provider === "docker") {
        assertIdentity(inspected.Config.Labels, name);
        assert.equal(environment[ENV.tokenFile], "/azp/.token");
        assert.ok(!JSON.stringify(inspected).includes(JOB_TOKEN), `docker inspect ${name} shows the token`);
      } else {
        const group = e2e.standins().arm.containerGroup(name);
        assertIdentity(group?.tags, name);
        const variables = group?.request.properties?.containers?.[0]?.properties?.environmentVariables ?? [];
        assert.deepEqual(
          variables.filter((variable) => variable.name === ENV.token),
          [{ name: ENV.token, secureValue: JOB_TOKEN }],
          "the token goes to ACI only as a secure value",
        );
      }
    }
  }

  async function runOneJob(provider: Provider): Promise<void> {
    const { devops } = e2e.standins();
    const start = await runBundledTask(
      e2e.organization(),
      "StartEphemeralAgentV1",
      startInputs(provider, e2e.image, e2e.runKey, {
        count: "2",
        // The container registers itself with the token; agent-credential-on-docker.test.ts runs the default.
        registration: "token",
        maxLifetimeMinutes: LIFETIME_MINUTES,
        environment: "FAKE_AGENT_JOB_SECONDS=1",
      }),
    );
    assert.equal(start.result?.status, "Succeeded", `${start.stdout}\n${start.stderr}`);
    const names = start.outputs.agentNames.split(",");
    assert.equal(names.length, 2);
    for (const name of names) {
      const agent = devops.agent(POOL, name);
      assert.equal(agent?.status, "online", `agent ${name}`);
      assert.equal(agent?.systemCapabilities[ENV.runKey], e2e.runKey);
    }
    await checkLaunchedContainers(provider, names);

    const job = devops.queueJob({ poolName: POOL, demands: { [ENV.runKey]: e2e.runKey }, jobName: "Build" });
    await waitFor(() => job.result, 60_000, "the job to finish");
    assert.equal(job.result, "succeeded");
    const worker = job.reservedAgent?.name ?? "";
    const idle = names.find((name) => name !== worker) ?? "";
    assert.ok(names.includes(worker), `the job ran on ${worker}, not on an agent of this run`);
    assert.equal(await exitCodeOf(e2e.containerOf(provider, worker), 60_000), 0);
    const log = await logOf(e2e.containerOf(provider, worker));
    assert.match(log, /^run\.sh arguments: --once$/m);
    assert.match(log, /^Running job: Build$/m);
    assert.match(log, new RegExp(`^agent ${worker} unregistered$`, "m"));
    assert.equal(devops.agent(POOL, worker), undefined, "the agent that ran the job unregistered");
    assert.equal(devops.agent(POOL, idle)?.status, "online", "the other agent waits");

    const teardown = await runBundledTask(
      e2e.organization(),
      "TeardownEphemeralAgentV1",
      teardownInputs(provider, e2e.runKey, { agentNames: names.join(","), gracePeriodSeconds: "30" }),
    );
    assert.equal(teardown.result?.status, "Succeeded", `${teardown.stdout}\n${teardown.stderr}`);
    for (const name of names)
      assert.ok(teardown.stdout.includes(`##[group]Log of ${name}`), `log of ${name}`);
    assert.match(teardown.stdout, /^Running job: Build$/m);
    // The summary's timeline: both containers ran and came online (the worker's time from its log, since it
    // unregistered itself), in that order, before they were removed.
    const timeline = timelineRows(teardown.summaries.join("\n"));
    for (const name of names) {
      const row = timeline.get(name);
      assert.ok(row, `timeline row of ${name}`);
      assert.match(row.requested, /^\d\d:\d\d:\d\d$/);
      const [running, online, removed] = [row.running, row.online, row.removed].map(offsetMs);
      // The log gives whole seconds: the online time may read up to 1 s early.
      assert.ok(running <= online + 1000 && online <= removed, JSON.stringify(row));
    }
    assertNoSecrets(start.stdout);
    assertNoSecrets(teardown.stdout);
    await assertNothingLeft();
  }

  it("provider docker: two agents come online, one takes the job and exits, teardown removes both", async () => {
    await runOneJob("docker");
  });

  it("provider aci: the container groups run the agents for real, one takes the job, teardown removes both", async () => {
    e2e.bridge = runContainerGroupsOnDocker(e2e.standins().arm);
    await runOneJob("aci");
  });

  it("provider docker: an agent that updates itself during --once is seen online, takes the job and is removed", async () => {
    const { devops } = e2e.standins();
    const start = await runBundledTask(
      e2e.organization(),
      "StartEphemeralAgentV1",
      startInputs("docker", e2e.image, e2e.runKey, {
        maxLifetimeMinutes: LIFETIME_MINUTES,
        environment: "FAKE_AGENT_SELF_UPDATE=1\nFAKE_AGENT_JOB_SECONDS=1",
      }),
    );
    assert.equal(start.result?.status, "Succeeded", `${start.stdout}\n${start.stderr}`);
    const [name] = start.outputs.agentNames.split(",");
    const job = devops.queueJob({ poolName: POOL, demands: { [ENV.runKey]: e2e.runKey }, jobName: "Build" });
    await waitFor(() => job.result, 90_000, "the job to finish");
    assert.equal(job.result, "succeeded");
    assert.equal(job.reservedAgent?.name, name);
    const log = await logOf(name);
    assert.match(log, /^Agent update requested; restarting after the update$/m);
    assert.match(log, /^Running job: Build$/m);

    const teardown = await runBundledTask(
      e2e.organization(),
      "TeardownEphemeralAgentV1",
      teardownInputs("docker", e2e.runKey, { agentNames: name, gracePeriodSeconds: "30" }),
    );
    assert.equal(teardown.result?.status, "Succeeded", `${teardown.stdout}\n${teardown.stderr}`);
    await assertNothingLeft();
  });

  it("fails fast naming the image and pullPolicy when the image is missing, and leaves nothing", async () => {
    const missing = "ephemeral-agents-test-missing:1";
    const started = Date.now();
    const start = await runBundledTask(
      e2e.organization(),
      "StartEphemeralAgentV1",
      startInputs("docker", missing, e2e.runKey, { count: "2" }),
    );
    const seconds = (Date.now() - started) / 1000;
    assert.equal(start.result?.status, "Failed", start.stdout);
    assert.match(start.result?.message ?? "", new RegExp(`image '${missing}' is not on the Docker host`));
    assert.match(start.result?.message ?? "", /pullPolicy is never/);
    assert.ok(seconds < 120, `took ${seconds} s, the online timeout is 10 minutes`);
    await assertNothingLeft();
  });

  it("fails fast with the container's log when its agent cannot start, and leaves nothing", async () => {
    // The organization refuses every request from the containers, as an organization whose conditional
    // access admits only the build machine's address would; the tasks themselves get through.
    e2e
      .standins()
      .devops.intercept((request) =>
        request.headers["user-agent"]?.startsWith("curl/") ? { status: 401 } : undefined,
      );
    const started = Date.now();
    const start = await runBundledTask(
      e2e.organization(),
      "StartEphemeralAgentV1",
      startInputs("docker", e2e.image, e2e.runKey, {
        count: "2",
        onlineTimeoutMinutes: "5",
        registration: "token",
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    assert.equal(start.result?.status, "Failed", start.stdout);
    assert.match(start.stdout, /stopped before the agent came online \(exited, exit code 1\b/);
    assert.match(start.stdout, /Last lines of its log:/);
    assert.match(start.stdout, /AZP_TOKEN was rejected by http:\/\/127\.0\.0\.1:\d+\/myorg \(HTTP 401\)/);
    assertNoSecrets(start.stdout);
    assert.ok(seconds < 60, `took ${seconds} s, the online timeout is 5 minutes`);
    await assertNothingLeft();
  });
});
