// startAgents with registration "agentCredential", in-process against the fake provider and pool, in virtual time.
// The agents' keys are made in real time before each test (test/agentKeys.ts) and handed out after KEY_MS of
// virtual time each, so the start itself only waits on fake timers.
import assert from "node:assert/strict";
import type sinon from "sinon";
import { privateKeyFromRsaParametersFile } from "../../tasks/common/core/agentCredential";
import { ENV } from "../../tasks/common/core/contract";
import type { AgentKey } from "../../tasks/common/core/agentCredential";
import type { AgentContainerSpec, PoolAccess } from "../../tasks/common/core/ports";
import { StartFailure, isCancellation, type StartResult } from "../../tasks/common/start/startAgents";
import { reusedAgentKey } from "../agentKeys";
import {
  FakeWorld,
  RecordingLog,
  TOKEN,
  installVirtualClock,
  nameOf,
  startInWorld,
  startOptionsWith,
  type Settled,
} from "./fakes";

/** Virtual time one key takes to make; the start makes two at a time. */
const KEY_MS = 300;

describe("startAgents with the agent's own credential (in-process)", () => {
  let clock: sinon.SinonFakeTimers;
  let world: FakeWorld;
  let log: RecordingLog;
  let abort: AbortController;
  let specs: AgentContainerSpec[];
  /** When each key was asked for and when it was made, in virtual time. */
  let keys: { askedAt: number; madeAt?: number }[];

  before(() => reusedAgentKey());
  beforeEach(() => {
    clock = installVirtualClock();
    world = new FakeWorld(clock);
    // The task registered the agent; its container only opens the session.
    world.defaultScript = { onlineAfterMs: 3000 };
    log = new RecordingLog();
    abort = new AbortController();
    specs = [];
    keys = [];
  });
  afterEach(() => clock.restore());

  async function newAgentKey(): Promise<AgentKey> {
    const made: { askedAt: number; madeAt?: number } = { askedAt: clock.now };
    keys.push(made);
    const key = await reusedAgentKey();
    await new Promise((resolve) => setTimeout(resolve, KEY_MS));
    made.madeAt = clock.now;
    return key;
  }

  function start(pools: PoolAccess = world.pools, count = 2): Promise<Settled<StartResult>> {
    const provider = {
      ...world.provider,
      create: (spec: AgentContainerSpec) => {
        specs.push(spec);
        return world.provider.create(spec);
      },
    };
    const options = startOptionsWith({ count, registration: "agentCredential" });
    return startInWorld(world, clock, options, { provider, pools, newAgentKey, log, signal: abort.signal });
  }

  function failure(settled: Settled<StartResult>): StartFailure {
    assert.ok(!settled.ok, "the start failed");
    assert.ok(settled.error instanceof StartFailure, String(settled.error));
    return settled.error;
  }

  it("registers each agent before it creates its container, and hands each only its own credential files", async () => {
    const settled = await start();
    assert.ok(settled.ok, String(!settled.ok && settled.error));
    const methods = world.calls.map((call) => call.method);
    assert.deepEqual(methods.slice(0, 4), ["findPool", "checkCanManage", "prepare", "agentPackage"]);
    for (const name of [nameOf(1), nameOf(2)]) {
      const index = (method: string) =>
        world.calls.findIndex((call) => call.method === method && call.name === name);
      assert.ok(
        index("registerAgent") < index("create"),
        `${name} is registered first: ${methods.join(", ")}`,
      );
    }
    assert.deepEqual(
      settled.value.steps.map((step) => step.name),
      ["Check pool and provider", "Register agents and create containers", "Wait for agents online"],
    );

    assert.equal(specs.length, 2);
    for (const spec of specs) {
      const name = spec.identity.name;
      assert.equal(spec.token, undefined, "no token goes to the container");
      assert.ok(!JSON.stringify(spec).includes(TOKEN), "the token appears nowhere in the container spec");
      const files = spec.agentCredential;
      assert.ok(files, "the agent's credential files");
      const settings = JSON.parse(files[".agent"]) as Record<string, unknown>;
      assert.deepEqual(settings, {
        agentId: world.agents.get(name)?.id,
        agentName: name,
        poolId: world.pool.id,
        poolName: world.pool.name,
        serverUrl: "https://dev.azure.com/myorg",
        workFolder: "_work",
      });
      assert.equal((JSON.parse(files[".credentials"]) as { scheme: string }).scheme, "OAuth");
      assert.doesNotThrow(() => privateKeyFromRsaParametersFile(files[".credentials_rsaparams"]));
      assert.equal(spec.environment[ENV.runKey], "4711", "the run key stays in the container's environment");
      assert.match(spec.environment[ENV.agentPackageUrl], /vsts-agent-linux-x64-4\.260\.0\.tar\.gz$/);
      assert.equal(spec.environment[ENV.agentPackageSha256], "0".repeat(64));
    }
    assert.notEqual(
      specs[0].agentCredential?.[".credentials_rsaparams"],
      specs[1].agentCredential?.[".credentials_rsaparams"],
    );
    assert.ok(
      !log.text.includes(specs[0].agentCredential?.[".credentials_rsaparams"] ?? "-"),
      "no key in the log",
    );
  });

  it("requests the first container once its own key and registration exist, while later keys are being made", async () => {
    const settled = await start(world.pools, 6);
    assert.ok(settled.ok, String(!settled.ok && settled.error));
    assert.deepEqual(
      keys.map((key) => [key.askedAt, key.madeAt]),
      [
        [0, 300],
        [0, 300],
        [300, 600],
        [300, 600],
        [600, 900],
        [600, 900],
      ],
      "two keys at a time, in agent order",
    );
    const creations = world.callsOf("create");
    assert.deepEqual(
      creations.map((call) => [call.name, call.at]),
      [
        [nameOf(1), 300],
        [nameOf(2), 425],
        [nameOf(3), 600],
        [nameOf(4), 725],
        [nameOf(5), 900],
        [nameOf(6), 1025],
      ],
      "each container as soon as its agent is registered and 125 ms have passed since the last creation",
    );
    assert.ok(creations[0].at < Math.max(...keys.map((key) => key.madeAt!)));
    assert.match(log.text, /Created 6 container\(s\) in 1\.0 s; the first was requested after 0\.3 s\./);
  });

  it("makes keys while the pool and the provider are checked", async () => {
    const prepare = world.provider.prepare.bind(world.provider);
    world.provider.prepare = async (plan) => {
      await new Promise((resolve) => setTimeout(resolve, 600));
      await prepare(plan);
    };
    const settled = await start(world.pools, 6);
    assert.ok(settled.ok, String(!settled.ok && settled.error));
    assert.equal(world.callsOf("prepare")[0].at, 600);
    assert.deepEqual(
      keys.map((key) => key.madeAt),
      [300, 300, 600, 600, 900, 900],
    );
    assert.deepEqual(
      world.callsOf("create").map((call) => call.at),
      [600, 725, 850, 975, 1100, 1225],
      "four keys were made during the checks: the creations follow each other 125 ms apart",
    );
  });

  it("begins no more keys when a check fails", async () => {
    world.fail("prepare", new Error("prepare refused"));
    const error = failure(await start(world.pools, 6));
    assert.equal(error.message, "prepare refused");
    await clock.tickAsync(5000);
    assert.equal(keys.length, 2, "only the two keys begun before the failure");
    assert.deepEqual(world.callsOf("registerAgent"), []);
  });

  it("removes every registration and container made so far when a registration fails, and begins no new one", async () => {
    world.fail("registerAgent", new Error("HTTP 500 from the pool"), { name: nameOf(3) });
    const error = failure(await start(world.pools, 6));
    assert.match(error.message, /HTTP 500 from the pool/);
    assert.deepEqual(
      world.callsOf("create").map((call) => call.name),
      [nameOf(1), nameOf(2)],
      "the agents registered before the failure got their containers",
    );
    assert.deepEqual(
      world.callsOf("registerAgent").map((call) => call.name),
      [1, 2, 3].map(nameOf),
      "no registration after the failure",
    );
    assert.deepEqual(
      keys.map((key) => key.askedAt),
      [0, 0, 300, 300, 600],
      "the last agent, whose turn came after the failure, asked for no key",
    );
    assert.deepEqual(world.left(), { containers: [], agents: [] });
  });

  it("removes every registration and container when cancelled while later agents are still being registered", async () => {
    world.onCall = (call) => {
      if (call.method === "create" && call.name === nameOf(2)) abort.abort();
    };
    const error = failure(await start(world.pools, 6));
    assert.ok(isCancellation(error), error.message);
    assert.deepEqual(
      world.callsOf("create").map((call) => call.name),
      [nameOf(1), nameOf(2)],
    );
    assert.ok(world.callsOf("registerAgent").length >= 2);
    assert.equal(keys.length, 4, "no key asked for after the cancellation");
    assert.deepEqual(world.left(), { containers: [], agents: [] });
  });

  it("removes the registration when cancelled between an agent's registration and its container", async () => {
    world.onCall = (call) => {
      if (call.method === "registerAgent") abort.abort();
    };
    const error = failure(await start(world.pools, 1));
    assert.ok(isCancellation(error), error.message);
    assert.equal(world.callsOf("registerAgent").length, 1);
    assert.deepEqual(world.callsOf("create"), []);
    assert.deepEqual(world.left(), { containers: [], agents: [] });
  });

  it("fails clearly, and removes the registration, when the server gives the agent no OAuth client", async () => {
    const pools: PoolAccess = {
      ...world.pools,
      registerAgent: async (pool, registration) => ({
        id: (await world.pools.registerAgent(pool, registration)).id,
      }),
    };
    const error = failure(await start(pools));
    assert.match(error.message, /gave it no OAuth client .* set registration to token/);
    assert.deepEqual(world.left(), { containers: [], agents: [] });
  });
});
