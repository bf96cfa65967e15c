// The real bundled entry point against the stand-ins (the agents it removes come from starts in this process): a
// full teardown after a job, and what only the clients over HTTP show (tags read back in another case, 404 on
// deletion, the services' 403 messages). The orchestration's scenarios (run-key discovery, await timeout, grace
// period, sweep, issues) run in-process in test/orchestration; bad inputs in test/hardening/bad-input.test.ts.
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
import { runStartInProcess } from "./inProcessRun";
import { offsetMs, timelineRows } from "../summaryTimeline";

const { poolName, resourceGroup, readerToken } = STANDIN_DEFAULTS;
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

  /** Agents for a teardown to remove, from a start in this process (the teardown is what these tests run). */
  async function startInProcess(inputs: Record<string, string> = {}): Promise<Record<string, string>> {
    const started = await runStartInProcess(standins, { inputs: { ...START_INPUTS, ...inputs } });
    assert.equal(started.outcome.status, "Succeeded", started.log);
    return started.outcome.outputs ?? {};
  }

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

  function deleteRequests(): { arm: string[]; devops: string[] } {
    const deletes = (requests: { method: string; path: string }[]) =>
      requests.filter((request) => request.method === "DELETE").map((request) => request.path);
    return { arm: deletes(standins.arm.requests), devops: deletes(standins.devops.requests) };
  }

  it("awaits the job, shows the logs and removes both agents; a second run finds nothing", async () => {
    const started = await startInProcess({ count: "2" });
    const names = started.agentNames.split(",");
    const job = standins.devops.queueJob({
      poolName,
      jobName: "Deploy",
      demands: { EPHEMERAL_AGENT_RUN: started.runKey },
    });
    await until(() => job.receiveTime !== undefined, "the job is received");
    const busy = job.reservedAgent!.name;
    const idle = names.find((name) => name !== busy)!;

    const awaiting = printedLine(/is running 'Deploy': waiting for it to finish/);
    const running = teardown(
      { inputs: { agentNames: started.agentNames, runKey: started.runKey } },
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
        // With its own credential (the default registration) the agent cannot remove itself: the teardown does.
        `Agent ${busy}: lived [^;]+, job 'Deploy' succeeded; container removed \\(exited, exit code 0, Completed\\); registration removed\\.`,
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
    const timeline = timelineRows(summary);
    // The busy agent went through every milestone, in order; the idle one took no job.
    const worker = timeline.get(busy)!;
    assert.match(worker.requested, /^\d\d:\d\d:\d\d$/);
    const order = ["running", "online", "job started", "job ended", "removed"];
    const offsets = order.map((milestone) => offsetMs(worker[milestone]));
    assert.deepEqual(
      [...offsets].sort((a, b) => a - b),
      offsets,
      JSON.stringify(worker),
    );
    assert.ok(offsetMs(worker["job queued"]) <= offsetMs(worker["job started"]), JSON.stringify(worker));
    const idleRow = timeline.get(idle)!;
    for (const milestone of ["running", "online", "removed"]) assert.ok(offsetMs(idleRow[milestone]) >= 0);
    for (const milestone of ["job queued", "job started", "job ended"]) assert.equal(idleRow[milestone], "–");
    assertLeft();
    const registrationDeletes = standins.devops.requests.filter((request) => request.method === "DELETE");
    assert.equal(registrationDeletes.length, 2, "the teardown removes both registrations");
    for (const deletion of registrationDeletes) {
      const caller = deletion.caller as { identity: { displayName: string } };
      assert.equal(
        caller.identity.displayName,
        "Project Collection Build Service (myorg)",
        "the job's token",
      );
    }

    const again = await teardown({ inputs: { runKey: started.runKey } });
    assert.equal(again.result?.status, "Succeeded", again.stdout);
    assert.match(again.stdout, /No ephemeral agents of run '4711' were found in pool 'Default'/);
    assert.match(again.result?.message ?? "", /nothing/i);
    assertLeft();
  });

  it("finds a run's containers when the pool name is spelled in another case", async () => {
    // Without a registration, the container is found through its tags alone.
    standins.arm.behaviours.push({ match: () => true, agent: false });
    const killed = await start(
      { inputs: { agentPool: "default" } },
      { interrupt: { when: "Created 1 container(s)", signal: "SIGKILL" } },
    );
    assert.equal(killed.result, undefined);
    const [name] = standins.arm.containerGroups().map((group) => group.name);
    if (standins.devops.agent(poolName, name)) standins.devops.simulateAgent.unregister(poolName, name);

    const result = await teardown({ inputs: { agentPool: "default" } });
    assert.equal(result.result?.status, "Succeeded", result.stdout);
    assert.match(
      result.stdout,
      new RegExp(`Agent ${name}: .*container removed \\(running\\); registration already gone\\.`),
    );
    assertLeft();
  });

  it("treats things that vanished between listing and deletion as removed", async () => {
    const started = await startInProcess({ count: "2" });
    const [first, second] = started.agentNames.split(",");
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

    const result = await teardown({ inputs: { agentNames: started.agentNames } });
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
        .map((request) => request.status)
        .sort(),
      [204, 404],
      "the second registration was gone when the task deleted it (the two deletions run in parallel)",
    );
    assert.deepEqual(
      standins.arm.requests
        .filter((request) => request.method === "DELETE" && request.path.endsWith(`/${first}`))
        .map((request) =>
          request.status === 404 ? "not found" : `${request.status}`.replace(/^2\d\d$/, "deleted"),
        ),
      ["not found", "deleted"],
      "the first container was deleted elsewhere",
    );
    assert.deepEqual(result.warnings, []);
    assertLeft();
  });

  it("reports a token that may not remove registrations, naming the Administrator role", async () => {
    const started = await startInProcess();
    const name = started.agentName;

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
    const started = await startInProcess();
    const name = started.agentName;
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
        `container of ${name} could not be removed: .*HTTP 403.*Contributor.* on resource group 'rg-agents'`,
      ),
    );
    assert.match(result.stdout, new RegExp(`Agent ${name}: .*container failed; registration removed\\.`));
    assertLeft({ containers: [name] });

    removeFault();
    const retry = await teardown();
    assert.equal(retry.result?.status, "Succeeded", retry.stdout);
    assertLeft();
  });
});
