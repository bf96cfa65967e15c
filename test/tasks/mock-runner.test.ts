/**
 * Both tasks under azure-pipelines-task-lib's MockTestRunner: mock/*.js set the inputs with TaskMockRunner and
 * run the task sources; endpoints and system variables come through the environment, as the agent passes them.
 * MockTestRunner blocks this process while the task runs (spawnSync), so the stand-ins run in their own
 * process (standins/serve.ts) and are inspected through its control endpoint.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { MockTestRunner } from "azure-pipelines-task-lib/mock-test";
import { STANDIN_DEFAULTS, type StartAllOptions } from "../../standins";
import type { SerializedBehaviour, ServedStandins, StandinState } from "../../standins/serve";
import {
  REPO,
  assertNoSecrets,
  parseRun,
  taskEnvironment,
  type StandinAddresses,
  type TaskEnvironment,
  type TaskName,
} from "../../standins/taskProcess";
import { INPUTS_VARIABLE, TIMEOUT_VARIABLE } from "./mock/variables";

const { poolName, resourceGroup, subscriptionId } = STANDIN_DEFAULTS;
const SUBNET = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/virtualNetworks/hub/subnets/aci`;
const CONNECTION_INPUTS = {
  provider: "aci",
  connectedServiceNameARM: STANDIN_DEFAULTS.serviceConnectionId,
  resourceGroup,
  agentPool: poolName,
  runKey: "4711",
};
const START_INPUTS = { ...CONNECTION_INPUTS, image: "myregistry.azurecr.io/ephemeral-agent:1" };
/** Below the test timeout: MockTestRunner blocks mocha, so only the mock-run script can stop a stuck task. */
const TASK_TIMEOUT_MS = 60_000;
const MOCK_RUNS: Record<TaskName, string> = {
  StartEphemeralAgentV1: path.join(__dirname, "mock", "start.js"),
  TeardownEphemeralAgentV1: path.join(__dirname, "mock", "teardown.js"),
};

/** The stand-ins in a separate process (see standins/serve.ts). */
class StandinProcess {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    public addresses: ServedStandins,
  ) {}

  static async start(options: StartAllOptions): Promise<StandinProcess> {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", path.join(REPO, "standins/serve.ts"), JSON.stringify(options)],
      { cwd: REPO },
    );
    child.stderr.pipe(process.stderr);
    const firstLine = await new Promise<string>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`the stand-in process exited with ${code}`)));
      createInterface({ input: child.stdout }).once("line", resolve);
    });
    return new StandinProcess(child, JSON.parse(firstLine) as ServedStandins);
  }

  private async control(method: string, route: string, body?: unknown): Promise<unknown> {
    const response = await fetch(`${this.addresses.control}${route}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
    }).catch((error: unknown) => {
      const exit = this.child.exitCode ?? this.child.signalCode;
      throw new Error(
        `${method} ${route} reached no stand-in process (${exit === null ? "still running" : `it ended with ${exit}`}): ${String((error as { cause?: unknown }).cause ?? error)}`,
      );
    });
    if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
    return response.status === 204 ? undefined : response.json();
  }

  /** Fresh stand-ins (new ports) with the options the process started with. */
  async reset(): Promise<void> {
    this.addresses = (await this.control("POST", "/reset")) as ServedStandins;
  }

  state(): Promise<StandinState> {
    return this.control("GET", "/state") as Promise<StandinState>;
  }

  addBehaviours(behaviours: SerializedBehaviour[]): Promise<unknown> {
    return this.control("POST", "/behaviours", behaviours);
  }

  async close(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    await this.control("POST", "/close");
    await exited;
  }

  /** The addresses in the shape taskEnvironment takes. */
  taskAddresses(): StandinAddresses {
    const { arm, entra, devops, retailPrices } = this.addresses;
    return {
      arm,
      entra,
      devops: { url: devops.url, oidcRequestUri: () => devops.oidcRequestUri },
      retailPrices,
    };
  }
}

/**
 * Runs a task under MockTestRunner. The runner starts the mock-run script with this process's environment,
 * so the task's environment replaces it for the run and is put back afterwards.
 */
async function runUnderMockTestRunner(
  standins: StandinProcess,
  task: TaskName,
  environment: TaskEnvironment,
): Promise<MockTestRunner> {
  const env = taskEnvironment(standins.taskAddresses(), { ...environment, inputs: {} });
  env[INPUTS_VARIABLE] = JSON.stringify(environment.inputs);
  env[TIMEOUT_VARIABLE] = String(TASK_TIMEOUT_MS);
  // tsx for the ESM loader as well: the task loads its provider with import().
  env.NODE_OPTIONS = "--import tsx";
  const saved = { ...process.env };
  replaceEnvironment(env);
  fs.mkdirSync(env.AGENT_TEMPDIRECTORY!, { recursive: true });
  const runner = new MockTestRunner(MOCK_RUNS[task], path.join(REPO, "tasks", task, "task.json"));
  runner.nodePath = process.execPath;
  try {
    await runner.runAsync();
  } finally {
    replaceEnvironment(saved);
    fs.rmSync(env.AGENT_TEMPDIRECTORY!, { recursive: true, force: true });
  }
  return runner;
}

function replaceEnvironment(env: NodeJS.ProcessEnv): void {
  for (const name of Object.keys(process.env)) delete process.env[name];
  Object.assign(process.env, env);
}

function assertNoVisibleSecrets(runner: MockTestRunner): void {
  assertNoSecrets(runner.stdout + runner.stderr);
}

async function assertNothingLeft(standins: StandinProcess): Promise<StandinState> {
  const state = await standins.state();
  assert.deepEqual(
    state.containerGroups.map((group) => group.name),
    [],
  );
  assert.deepEqual(state.agents[poolName], []);
  return state;
}

describe("the tasks under MockTestRunner", function () {
  this.timeout(120_000);
  let standins: StandinProcess;

  before(async () => {
    standins = await StandinProcess.start({ arm: { subnets: [{ id: SUBNET }] } });
  });
  beforeEach(() => standins.reset());
  after(() => standins.close());

  const start = (inputs: Record<string, string> = {}) =>
    runUnderMockTestRunner(standins, "StartEphemeralAgentV1", { inputs: { ...START_INPUTS, ...inputs } });
  const teardown = (inputs: Record<string, string> = {}) =>
    runUnderMockTestRunner(standins, "TeardownEphemeralAgentV1", {
      inputs: { ...CONNECTION_INPUTS, ...inputs },
    });

  describe("StartEphemeralAgent", () => {
    it("starts two agents in a subnet, waits until they are online and sets the outputs", async () => {
      const runner = await start({ count: "2", subnetId: SUBNET });
      assert.ok(runner.succeeded, runner.stdout);
      assert.deepEqual(runner.errorIssues, []);
      assert.ok(
        runner.stdOutContained("##vso[task.complete result=Succeeded;]2 agent(s) online in pool 'Default'."),
      );

      const { outputs } = parseRun(null, runner.stdout, runner.stderr);
      const names = outputs.agentNames.split(",");
      assert.equal(names.length, 2);
      assert.equal(outputs.agentName, names[0]);
      assert.equal(outputs.agentPool, poolName);
      assert.equal(outputs.runKey, "4711");
      assert.equal(outputs.demand, "EPHEMERAL_AGENT_RUN -equals 4711");

      const state = await standins.state();
      assert.deepEqual(
        state.agents[poolName]
          .map(({ name, status }) => ({ name, status }))
          .sort((a, b) => a.name.localeCompare(b.name)),
        names.map((name) => ({ name, status: "online" })),
      );
      for (const name of names) {
        const group = state.containerGroups.find((candidate) => candidate.name === name);
        assert.ok(group, `container group ${name}`);
        assert.equal(group.tags["ephemeral-agent-run-key"], "4711");
        assert.equal(group.environment.AZP_AGENT_NAME, name);
        assert.equal(group.environment.AZP_TOKEN, undefined, "the token only as a secure value");
      }
      assertNoVisibleSecrets(runner);
    });
  });

  describe("TeardownEphemeralAgent", () => {
    it("removes the agents a start created", async () => {
      const started = await start({ count: "2" });
      assert.ok(started.succeeded, started.stdout);
      assert.equal((await standins.state()).containerGroups.length, 2);

      const runner = await teardown();
      assert.ok(runner.succeeded, runner.stdout);
      assert.ok(runner.stdOutContained("Removed 2 agent(s); nothing is left."), runner.stdout);
      await assertNothingLeft(standins);
      assertNoVisibleSecrets(runner);
    });
  });
});
