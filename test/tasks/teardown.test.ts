import assert from "node:assert/strict";
import { ClientSecretCredential } from "@azure/identity";
import { ContainerInstanceManagementClient } from "@azure/arm-containerinstance";
import { STANDIN_DEFAULTS, fault } from "../../standins";
import {
  assertNoSecrets,
  runTask,
  startStandins,
  taskEnvironment,
  type RunOptions,
  type Standins,
  type TaskEnvironment,
  type TaskRun,
  ensureBundles,
} from "../../standins/taskProcess";

const { poolName, resourceGroup, location, jobToken, readerToken } = STANDIN_DEFAULTS;
const CONNECTION = {
  provider: "aci",
  connectedServiceNameARM: STANDIN_DEFAULTS.serviceConnectionId,
  resourceGroup,
  agentPool: poolName,
};
const START_INPUTS = { ...CONNECTION, image: "myregistry.azurecr.io/ephemeral-agent:1", runKey: "4711" };
const TEARDOWN_INPUTS = { ...CONNECTION, runKey: "4711", awaitTimeoutMinutes: "1", gracePeriodSeconds: "2" };

type Environment = Partial<TaskEnvironment> & { inputs?: Record<string, string> };

describe("TeardownEphemeralAgent (bundled) against the stand-ins", function () {
  this.timeout(120_000);
  let standins: Standins;
  /** Everything the tasks of the current test printed; checked for secrets after each test. */
  let printed: string[];

  before(() => ensureBundles());
  beforeEach(async () => {
    standins = await startStandins();
    printed = [];
  });
  afterEach(async () => {
    await standins.close();
    for (const text of printed) assertNoSecrets(text);
  });

  async function run(
    task: "StartEphemeralAgentV1" | "TeardownEphemeralAgentV1",
    defaults: Record<string, string>,
    environment: Environment,
    options: RunOptions,
  ): Promise<TaskRun> {
    const result = await runTask(
      task,
      taskEnvironment(standins, { ...environment, inputs: { ...defaults, ...environment.inputs } }),
      options,
    );
    printed.push(result.stdout, result.stderr, JSON.stringify(result.outputs), ...result.summaries);
    return result;
  }

  const start = (environment: Environment = {}, options: RunOptions = {}) =>
    run("StartEphemeralAgentV1", START_INPUTS, environment, options);
  const teardown = (environment: Environment = {}, options: RunOptions = {}) =>
    run("TeardownEphemeralAgentV1", TEARDOWN_INPUTS, environment, options);

  /** Resolves once the running task has printed text matching the pattern. */
  function printedLine(pattern: RegExp): { options: RunOptions; seen: Promise<void> } {
    let resolve!: () => void;
    const seen = new Promise<void>((done) => (resolve = done));
    return { options: { onStdout: (stdout) => pattern.test(stdout) && resolve() }, seen };
  }

  async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  const onlineAgents = () =>
    standins.devops
      .agents(poolName)
      .filter((agent) => agent.status === "online")
      .map((agent) => agent.name);

  /** The stand-ins hold exactly these container groups and agent registrations. */
  function assertLeft(expected: { containers?: string[]; agents?: string[] } = {}): void {
    assert.deepEqual(
      standins.arm
        .containerGroups()
        .map((group) => group.name)
        .sort(),
      [...(expected.containers ?? [])].sort(),
      "container groups left",
    );
    assert.deepEqual(
      standins.devops
        .agents(poolName)
        .map((agent) => agent.name)
        .sort(),
      [...(expected.agents ?? [])].sort(),
      "agent registrations left",
    );
  }

  function aciClient(): ContainerInstanceManagementClient {
    const { tenantId, clientId, clientSecret, subscriptionId } = STANDIN_DEFAULTS;
    const credential = new ClientSecretCredential(tenantId, clientId, clientSecret, {
      authorityHost: standins.entra.url,
      disableInstanceDiscovery: true,
    });
    return new ContainerInstanceManagementClient(credential, subscriptionId, { endpoint: standins.arm.url });
  }

  /** A container group as the start task makes it, created `minutesAgo` minutes ago according to its tags. */
  async function putAgentGroup(
    name: string,
    {
      runKey,
      minutesAgo,
      lifetimeMinutes = 120,
    }: { runKey: string; minutesAgo: number; lifetimeMinutes?: number },
  ): Promise<void> {
    await aciClient().containerGroups.beginCreateOrUpdateAndWait(resourceGroup, name, {
      location,
      osType: "Linux",
      restartPolicy: "Never",
      tags: {
        "ephemeral-agent-run-key": runKey,
        "ephemeral-agent-pool": poolName,
        "ephemeral-agent-name": name,
        "ephemeral-agent-created": new Date(Date.now() - minutesAgo * 60_000).toISOString(),
        "ephemeral-agent-lifetime-minutes": String(lifetimeMinutes),
      },
      containers: [
        {
          name: "agent",
          image: "myregistry.azurecr.io/ephemeral-agent:1",
          resources: { requests: { cpu: 1, memoryInGB: 2 } },
          environmentVariables: [
            { name: "AZP_URL", value: standins.devops.url },
            { name: "AZP_POOL", value: poolName },
            { name: "AZP_AGENT_NAME", value: name },
            { name: "AZP_TOKEN", secureValue: jobToken },
            { name: "EPHEMERAL_AGENT_RUN", value: runKey },
            { name: "EPHEMERAL_AGENT_MAX_LIFETIME_MINUTES", value: String(lifetimeMinutes) },
          ],
        },
      ],
    });
  }

  /** An offline registration left behind, registered `minutesAgo` minutes ago. */
  function leftoverRegistration(name: string, minutesAgo: number, capabilities: Record<string, string> = {}) {
    const agent = standins.devops.simulateAgent.register({
      poolName,
      name,
      systemCapabilities: capabilities,
    });
    agent.createdOn = new Date(Date.now() - minutesAgo * 60_000);
    return agent;
  }

  function deleteRequests(): { arm: string[]; devops: string[] } {
    const deletes = (requests: { method: string; path: string }[]) =>
      requests.filter((request) => request.method === "DELETE").map((request) => request.path);
    return { arm: deletes(standins.arm.requests), devops: deletes(standins.devops.requests) };
  }

  it("awaits the job, shows the logs and removes both agents; a second run finds nothing", async () => {
    const started = await start({ inputs: { count: "2" } });
    assert.equal(started.result?.status, "Succeeded", started.stdout);
    const names = started.outputs.agentNames.split(",");
    const job = standins.devops.queueJob({
      poolName,
      jobName: "Deploy",
      demands: { EPHEMERAL_AGENT_RUN: started.outputs.runKey },
    });
    await until(() => job.receiveTime !== undefined, "the job is received");
    const busy = job.reservedAgent!.name;
    const idle = names.find((name) => name !== busy)!;

    const awaiting = printedLine(/is running 'Deploy': waiting for it to finish/);
    const running = teardown(
      { inputs: { agentNames: started.outputs.agentNames, runKey: started.outputs.runKey } },
      awaiting.options,
    );
    await awaiting.seen;
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(deleteRequests(), { arm: [], devops: [] }, "nothing removed while the job runs");
    standins.devops.finishJob(job.requestId);
    const result = await running;

    assert.equal(result.result?.status, "Succeeded", result.stdout);
    assert.match(result.stdout, new RegExp(`Agent ${busy} is running 'Deploy': waiting for it to finish`));
    assert.match(result.stdout, /Jobs finished after/);
    assert.match(result.stdout, new RegExp(`##\\[group\\]Log of ${busy} \\(exited, exit code 0`));
    assert.match(result.stdout, /Job Deploy completed with result: Succeeded/);
    assert.match(result.stdout, new RegExp(`##\\[group\\]Log of ${idle} \\(running\\)`));
    assert.match(
      result.stdout,
      new RegExp(
        `Agent ${busy}: lived [^;]+, job 'Deploy' ended[^;]*; container removed \\(exited, exit code 0, Completed\\); registration already gone\\.`,
      ),
    );
    assert.match(
      result.stdout,
      new RegExp(
        `Agent ${idle}: lived [^;]+, job none taken; container removed \\(running\\); registration removed\\.`,
      ),
    );
    const summary = result.summaries.join("\n");
    assert.match(summary, /Ephemeral agents torn down: all removed/);
    assert.match(summary, new RegExp(`\\| ${busy} \\|`));
    assert.match(summary, new RegExp(`\\| ${idle} \\|`));
    assertLeft();
    const registrationDeletes = standins.devops.requests.filter((request) => request.method === "DELETE");
    assert.equal(registrationDeletes.length, 1, "only the idle agent's registration was left to remove");
    const caller = registrationDeletes[0].caller as { identity: { displayName: string } };
    assert.equal(caller.identity.displayName, "Project Collection Build Service (myorg)", "the job's token");

    const again = await teardown({ inputs: { runKey: started.outputs.runKey } });
    assert.equal(again.result?.status, "Succeeded", again.stdout);
    assert.match(again.stdout, /No ephemeral agents of run '4711' were found in pool 'Default'/);
    assert.match(again.result?.message ?? "", /nothing/i);
    assertLeft();
  });

  it("removes the containers and registrations of a start that was killed before it set its outputs", async () => {
    const killed = await start(
      { inputs: { count: "2" } },
      { interrupt: { when: "Created 2 container(s)", signal: "SIGKILL" } },
    );
    assert.equal(killed.result, undefined, "the start task never finished");
    assert.deepEqual(killed.outputs, {});
    await until(() => onlineAgents().length === 2, "both agents are online");
    const names = standins.arm
      .containerGroups()
      .map((group) => group.name)
      .sort();

    const result = await teardown();
    assert.equal(result.result?.status, "Succeeded", result.stdout);
    assert.match(result.stdout, new RegExp(`Tearing down 2 agent\\(s\\) of run '4711': ${names.join(", ")}`));
    for (const name of names) {
      assert.match(
        result.stdout,
        new RegExp(
          `Agent ${name}: .*job none taken; container removed \\(running\\); registration removed\\.`,
        ),
      );
    }
    assertLeft();
  });

  it("finds a run's agents by run key and leaves other runs alone", async () => {
    const other = await start({ inputs: { runKey: "other-run" } });
    assert.equal(other.result?.status, "Succeeded", other.stdout);
    const mine = await start();
    assert.equal(mine.result?.status, "Succeeded", mine.stdout);

    const result = await teardown();
    assert.equal(result.result?.status, "Succeeded", result.stdout);
    assert.match(
      result.stdout,
      new RegExp(`Tearing down 1 agent\\(s\\) of run '4711': ${mine.outputs.agentName}\\n`),
    );
    assertLeft({ containers: [other.outputs.agentName], agents: [other.outputs.agentName] });

    const cleanup = await teardown({ inputs: { runKey: "other-run" } });
    assert.equal(cleanup.result?.status, "Succeeded", cleanup.stdout);
    assertLeft();
  });

  it("finds a run's containers when the pool name is spelled in another case", async () => {
    // Containers whose agents never registered are found through their tags alone.
    standins.arm.behaviours.push({ match: () => true, agent: false });
    const killed = await start(
      { inputs: { agentPool: "default" } },
      { interrupt: { when: "Created 1 container(s)", signal: "SIGKILL" } },
    );
    assert.equal(killed.result, undefined);
    const [name] = standins.arm.containerGroups().map((group) => group.name);

    const result = await teardown({ inputs: { agentPool: "default" } });
    assert.equal(result.result?.status, "Succeeded", result.stdout);
    assert.match(
      result.stdout,
      new RegExp(`Agent ${name}: .*container removed \\(running\\); registration already gone\\.`),
    );
    assertLeft();
  });

  it("removes the registration an agent left behind when it exited after its job", async () => {
    await standins.close();
    standins = await startStandins({ simulateAgents: { afterJob: "exit" } });
    const started = await start();
    assert.equal(started.result?.status, "Succeeded", started.stdout);
    const name = started.outputs.agentName;
    const job = standins.devops.queueJob({
      poolName,
      jobName: "Build",
      demands: { EPHEMERAL_AGENT_RUN: "4711" },
    });
    await until(() => job.receiveTime !== undefined, "the job is received");
    standins.devops.finishJob(job.requestId, "failed");
    // The container exited; its agent kept its registration, as an agent whose unregistering failed does.
    assertLeft({ containers: [name], agents: [name] });

    const result = await teardown({ inputs: { agentNames: name } });
    assert.equal(result.result?.status, "Succeeded", result.stdout);
    assert.match(
      result.stdout,
      new RegExp(
        `Agent ${name}: .*job 'Build' failed; container removed \\(exited, exit code 0, Completed\\); registration removed\\.`,
      ),
    );
    assertLeft();
  });

  it("waits the grace period for a container that does not exit after its job", async () => {
    await standins.close();
    standins = await startStandins({ simulateAgents: { afterJob: "stay" } });
    const started = await start();
    const name = started.outputs.agentName;
    const job = standins.devops.queueJob({
      poolName,
      jobName: "Build",
      demands: { EPHEMERAL_AGENT_RUN: "4711" },
    });
    await until(() => job.receiveTime !== undefined, "the job is received");
    standins.devops.finishJob(job.requestId);

    const began = Date.now();
    const result = await teardown({ inputs: { agentNames: name, gracePeriodSeconds: "1" } });
    assert.equal(result.result?.status, "Succeeded", result.stdout);
    assert.match(result.stdout, new RegExp(`Giving ${name} up to 1\\.0 s to exit\\.`));
    assert.ok(Date.now() - began >= 1000, "waited the grace period");
    assert.match(
      result.stdout,
      new RegExp(
        `Agent ${name}: .*job 'Build' succeeded; container removed \\(running\\); registration removed\\.`,
      ),
    );
    assertLeft();
  });

  it("removes a busy agent anyway after the await timeout and says so", async () => {
    const started = await start();
    const name = started.outputs.agentName;
    const job = standins.devops.queueJob({
      poolName,
      jobName: "Endless",
      demands: { EPHEMERAL_AGENT_RUN: "4711" },
    });
    await until(() => job.receiveTime !== undefined, "the job is received");

    const result = await teardown({ inputs: { awaitTimeoutMinutes: "0.02" } });
    assert.equal(result.result?.status, "SucceededWithIssues", result.stdout);
    assert.match(
      result.result?.message ?? "",
      new RegExp(`${name} still ran a job after 1\\.2 s.*raise awaitTimeoutMinutes`),
    );
    assert.match(
      result.stdout,
      new RegExp(
        `Agent ${name}: .*job 'Endless' still running; container removed \\(running\\); registration removed\\.`,
      ),
    );
    assert.match(result.summaries.join(""), /with issues[\s\S]*\*\*Issues\*\*/);
    assertLeft();
  });

  it("sweeps old leftovers of any run, keeping live, busy and young agents", async () => {
    // Leftovers: a container past its lifetime whose agent went offline, and a registration without container.
    await putAgentGroup("ephemeral-old1-abcde-1", { runKey: "old1", minutesAgo: 180 });
    await until(() => onlineAgents().includes("ephemeral-old1-abcde-1"), "the old agent is online");
    standins.arm.setContainerState("ephemeral-old1-abcde-1", { state: "Terminated", exitCode: 124 });
    standins.devops.agent(poolName, "ephemeral-old1-abcde-1")!.createdOn = new Date(
      Date.now() - 180 * 60_000,
    );
    leftoverRegistration("ephemeral-old2-fghij-1", 120, { EPHEMERAL_AGENT_RUN: "old2" });
    // Kept: a busy agent in an old container, a container within its lifetime, a fresh run, other agents.
    await putAgentGroup("ephemeral-busy-klmno-1", { runKey: "busy", minutesAgo: 180 });
    await until(() => onlineAgents().includes("ephemeral-busy-klmno-1"), "the busy agent is online");
    const job = standins.devops.queueJob({
      poolName,
      jobName: "Long",
      demands: { EPHEMERAL_AGENT_RUN: "busy" },
    });
    standins.devops.agent(poolName, "ephemeral-busy-klmno-1")!.createdOn = new Date(
      Date.now() - 180 * 60_000,
    );
    await until(() => job.receiveTime !== undefined, "the busy agent's job is received");
    standins.arm.behaviours.push({ match: "ephemeral-young-pqrst-1", agent: false });
    await putAgentGroup("ephemeral-young-pqrst-1", { runKey: "young", minutesAgo: 90, lifetimeMinutes: 120 });
    const fresh = await start({ inputs: { runKey: "fresh" } });
    assert.equal(fresh.result?.status, "Succeeded", fresh.stdout);
    leftoverRegistration("build-host-1", 600);
    leftoverRegistration("ephemeral-old3-uvwxy-1", 10, { EPHEMERAL_AGENT_RUN: "old3" });

    const result = await teardown({ inputs: { runKey: "current", sweepOlderThanMinutes: "60" } });
    assert.equal(result.result?.status, "Succeeded", result.stdout);
    assert.match(result.stdout, /No ephemeral agents of run 'current' were found/);
    assert.match(
      result.stdout,
      /Sweep: removing 2 leftover\(s\) older than 60 minutes: ephemeral-old1-abcde-1, ephemeral-old2-fghij-1/,
    );
    assert.match(
      result.stdout,
      /Swept ephemeral-old1-abcde-1: lived 180 min \d+ s, job none taken; container removed \(exited, exit code 124, Error\); registration removed\./,
    );
    assert.match(
      result.stdout,
      /Swept ephemeral-old2-fghij-1: lived 120 min \d+ s, job none taken; container already gone; registration removed\./,
    );
    assert.match(result.summaries.join(""), /ephemeral-old1-abcde-1 \(sweep\)/);
    const kept = ["ephemeral-busy-klmno-1", "ephemeral-young-pqrst-1", fresh.outputs.agentName];
    assertLeft({
      containers: kept,
      agents: ["ephemeral-busy-klmno-1", fresh.outputs.agentName, "build-host-1", "ephemeral-old3-uvwxy-1"],
    });
    assert.equal(
      standins.devops.agent(poolName, "ephemeral-busy-klmno-1")?.assignedRequest,
      job,
      "job untouched",
    );

    standins.devops.finishJob(job.requestId);
    for (const runKey of ["busy", "young", "fresh", "old3"]) {
      const cleanup = await teardown({ inputs: { runKey } });
      assert.equal(cleanup.result?.status, "Succeeded", cleanup.stdout);
    }
    assertLeft({ agents: ["build-host-1"] });
  });

  it("treats things that vanished between listing and deletion as removed", async () => {
    const started = await start({ inputs: { count: "2" } });
    const [first, second] = started.outputs.agentNames.split(",");
    const client = aciClient();
    let deletedElsewhere: Promise<void> | undefined;
    // ARM: someone else deletes the first container group just as the task does; the task is told 404.
    standins.arm.intercept((request) => {
      if (request.method === "DELETE" && request.path.endsWith(`/${first}`) && !deletedElsewhere)
        deletedElsewhere = client.containerGroups
          .beginDeleteAndWait(resourceGroup, first)
          .then(() => undefined);
      return undefined;
    });
    standins.arm.intercept(
      fault({
        match: (request) => request.method === "DELETE" && request.path.endsWith(`/${first}`),
        reply: {
          status: 404,
          body: { error: { code: "ResourceNotFound", message: `The Resource '${first}' was not found.` } },
        },
      }),
    );
    // DevOps: the second agent unregisters itself between the task's listing and its deletion.
    standins.devops.intercept((request) => {
      if (request.method === "DELETE" && standins.devops.agent(poolName, second))
        standins.devops.simulateAgent.unregister(poolName, second);
      return undefined;
    });

    const result = await teardown({ inputs: { agentNames: started.outputs.agentNames } });
    await deletedElsewhere;
    assert.equal(result.result?.status, "Succeeded", result.stdout);
    assert.match(result.stdout, new RegExp(`Agent ${first}: .*; container already gone; registration`));
    assert.match(
      result.stdout,
      new RegExp(`Agent ${second}: .*; container removed \\(running\\); registration already gone\\.`),
    );
    assert.deepEqual(
      standins.devops.requests
        .filter((request) => request.method === "DELETE")
        .map((request) => request.status),
      [204, 404],
      "the second registration was gone when the task deleted it",
    );
    assert.deepEqual(
      standins.arm.requests
        .filter((request) => request.method === "DELETE" && request.path.endsWith(`/${first}`))
        .map((request) => request.status),
      [404, 202],
      "the first container was deleted elsewhere",
    );
    assert.deepEqual(result.warnings, []);
    assertLeft();
  });

  it("reports a token that may not remove registrations, naming the Administrator role", async () => {
    const started = await start();
    const name = started.outputs.agentName;

    const result = await teardown({ jobToken: readerToken });
    assert.equal(result.result?.status, "SucceededWithIssues", result.stdout);
    assert.match(
      result.result?.message ?? "",
      new RegExp(
        `registration of ${name} could not be removed from pool 'Default': .*Pool Reader.*may not manage agent pool 'Default'.*Administrator role`,
      ),
    );
    assert.match(
      result.stdout,
      new RegExp(`Agent ${name}: .*container removed \\(running\\); registration failed\\.`),
    );
    assert.match(result.summaries.join(""), /Administrator role/);
    assertLeft({ agents: [name] });

    const retry = await teardown();
    assert.equal(retry.result?.status, "Succeeded", retry.stdout);
    assertLeft();
  });

  it("reports a service connection that may not delete containers, naming the role", async () => {
    const started = await start();
    const name = started.outputs.agentName;
    const removeFault = standins.arm.intercept(
      fault({
        match: (request) => request.method === "DELETE",
        times: 100,
        reply: {
          status: 403,
          body: {
            error: {
              code: "AuthorizationFailed",
              message:
                "The client does not have authorization to perform action 'Microsoft.ContainerInstance/containerGroups/delete'.",
            },
          },
        },
      }),
    );

    const result = await teardown();
    assert.equal(result.result?.status, "SucceededWithIssues", result.stdout);
    assert.match(
      result.result?.message ?? "",
      new RegExp(
        `container of ${name} could not be removed: .*HTTP 403.*Contributor on resource group 'rg-agents'`,
      ),
    );
    assert.match(result.stdout, new RegExp(`Agent ${name}: .*container failed; registration removed\\.`));
    assertLeft({ containers: [name] });

    removeFault();
    const retry = await teardown();
    assert.equal(retry.result?.status, "Succeeded", retry.stdout);
    assertLeft();
  });

  const failures: { title: string; inputs?: Record<string, string>; jobToken?: string; message: RegExp }[] = [
    { title: "a missing agentPool", inputs: { agentPool: "" }, message: /Input 'agentPool'.*is required/ },
    {
      title: "a bad runKey",
      inputs: { runKey: "no spaces" },
      message: /Input 'runKey'.*'no spaces' cannot be used/,
    },
    {
      title: "an unknown pool",
      inputs: { agentPool: "Nope" },
      message: /Input 'agentPool'.*'Nope' was not found/,
    },
    {
      title: "an agent name the start task cannot have made",
      inputs: { agentNames: "Build_Host" },
      message: /Input 'agentNames'.*'Build_Host'/,
    },
    {
      title: "a bad awaitTimeoutMinutes",
      inputs: { awaitTimeoutMinutes: "soon" },
      message: /Input 'awaitTimeoutMinutes'/,
    },
    {
      title: "a token Azure DevOps rejects",
      jobToken: "expired-token",
      message: /rejected the token.*HTTP 401/,
    },
  ];
  for (const failure of failures) {
    it(`fails with a clear message and removes nothing for ${failure.title}`, async () => {
      const started = await start();
      const result = await teardown({ inputs: failure.inputs, jobToken: failure.jobToken });
      assert.equal(result.result?.status, "Failed", result.stdout);
      assert.match(result.result?.message ?? "", failure.message);
      assert.doesNotMatch(result.stdout + result.stderr, /\n\s+at /, "no stack trace");
      assert.deepEqual(deleteRequests(), { arm: [], devops: [] });
      assertLeft({ containers: [started.outputs.agentName], agents: [started.outputs.agentName] });
    });
  }
});
