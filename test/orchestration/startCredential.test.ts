// startAgents with registration "agentCredential", in-process against the fake provider and pool, in virtual time.
// The agents' keys are made in real time before each test (test/agentKeys.ts), so the start itself only waits on
// fake timers.
import assert from "node:assert/strict";
import type sinon from "sinon";
import { privateKeyFromRsaParametersFile } from "../../tasks/common/core/agentCredential";
import { ENV } from "../../tasks/common/core/contract";
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

describe("startAgents with the agent's own credential (in-process)", () => {
  let clock: sinon.SinonFakeTimers;
  let world: FakeWorld;
  let log: RecordingLog;
  let abort: AbortController;
  let specs: AgentContainerSpec[];

  before(() => reusedAgentKey());
  beforeEach(() => {
    clock = installVirtualClock();
    world = new FakeWorld(clock);
    // The task registered the agent; its container only opens the session.
    world.defaultScript = { onlineAfterMs: 3000 };
    log = new RecordingLog();
    abort = new AbortController();
    specs = [];
  });
  afterEach(() => clock.restore());

  function start(pools: PoolAccess = world.pools): Promise<Settled<StartResult>> {
    const provider = {
      ...world.provider,
      create: (spec: AgentContainerSpec) => {
        specs.push(spec);
        return world.provider.create(spec);
      },
    };
    const options = startOptionsWith({ count: 2, registration: "agentCredential" });
    return startInWorld(world, clock, options, { provider, pools, log, signal: abort.signal });
  }

  function failure(settled: Settled<StartResult>): StartFailure {
    assert.ok(!settled.ok, "the start failed");
    assert.ok(settled.error instanceof StartFailure, String(settled.error));
    return settled.error;
  }

  it("registers every agent before it creates a container, and hands each only its own credential files", async () => {
    const settled = await start();
    assert.ok(settled.ok, String(!settled.ok && settled.error));
    const methods = world.calls.map((call) => call.method);
    assert.deepEqual(methods.slice(0, 4), ["findPool", "checkCanManage", "prepare", "agentPackage"]);
    assert.ok(
      methods.lastIndexOf("registerAgent") < methods.indexOf("create"),
      `registrations come first: ${methods.join(", ")}`,
    );
    assert.deepEqual(
      settled.value.steps.map((step) => step.name),
      ["Check pool and provider", "Register agents", "Create containers", "Wait for agents online"],
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

  it("leaves no registration behind when cancelled after registering and before creating containers", async () => {
    world.onCall = (call) => {
      // The agents register in parallel, in either order: cancel at the second.
      if (call.method === "registerAgent" && world.callsOf("registerAgent").length === 2) abort.abort();
    };
    const error = failure(await start());
    assert.ok(isCancellation(error), error.message);
    assert.equal(world.callsOf("registerAgent").length, 2);
    assert.deepEqual(world.callsOf("create"), []);
    assert.deepEqual(world.left(), { containers: [], agents: [] });
  });

  it("removes the registrations it made when another registration fails", async () => {
    world.fail("registerAgent", new Error("HTTP 500 from the pool"), { name: nameOf(2) });
    const error = failure(await start());
    assert.match(error.message, /HTTP 500 from the pool/);
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
