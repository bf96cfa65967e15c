// startAgents with a warm start (containers claimed from a standby pool), in-process against the fake provider
// and pool, in virtual time. The claimed containers print their public key as the image's warm mode does.
import assert from "node:assert/strict";
import type sinon from "sinon";
import type { AgentKey } from "../../tasks/common/core/agentCredential";
import { ENV, type AgentIdentity } from "../../tasks/common/core/contract";
import type { WarmStart } from "../../tasks/common/core/ports";
import { PUBLIC_KEY_MARKER, type WarmAgentSettings } from "../../tasks/common/core/warmStart";
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

/** Virtual time from a cold creation to the container's public key in its log. */
const COLD_KEY_MS = 20_000;
/** Virtual time from the settings reaching a container to its agent online. */
const ONLINE_AFTER_SETTINGS_MS = 1500;

/** A standby pool over the fake world: `ready` containers run already and printed their keys at boot. */
class FakeStandbyPool implements WarmStart {
  readonly description = "the fake standby pool";
  readonly delivered = new Map<string, WarmAgentSettings>();
  /** Containers whose key never appears, as with an image not in warm mode. */
  readonly silent = new Set<string>();

  constructor(
    private readonly world: FakeWorld,
    private ready: number,
    private readonly key: AgentKey,
  ) {}

  async claim(identity: AgentIdentity): Promise<{ warm: boolean }> {
    const { world } = this;
    world.calls.push({ method: "claim", name: identity.name, at: world.clock.now });
    world.onCall?.({ method: "claim", name: identity.name, at: world.clock.now });
    const warm = this.ready > 0;
    if (warm) this.ready -= 1;
    world.addContainer(identity.name, {
      runKey: identity.runKey,
      logs: warm && !this.silent.has(identity.name) ? `booted\n${this.keyLine()}\nwaiting\n` : "",
    });
    if (!warm && !this.silent.has(identity.name)) {
      world.at(COLD_KEY_MS, () => {
        const container = world.containers.get(identity.name);
        if (container) container.logs = `booted cold\n${this.keyLine()}\n`;
      });
    }
    return Promise.resolve({ warm });
  }

  async publicKey(name: string) {
    const logs = await this.world.provider.logs(name);
    return logs.includes(PUBLIC_KEY_MARKER) ? this.key.publicKey : undefined;
  }

  async deliver(name: string, settings: WarmAgentSettings): Promise<void> {
    const { world } = this;
    world.calls.push({ method: "deliver", name, at: world.clock.now });
    world.onCall?.({ method: "deliver", name, at: world.clock.now });
    this.delivered.set(name, settings);
    world.at(ONLINE_AFTER_SETTINGS_MS, () => {
      const agent = world.agents.get(name);
      if (agent && world.containers.get(name)?.status.state === "running") agent.online = true;
    });
    return Promise.resolve();
  }

  private keyLine(): string {
    return `${PUBLIC_KEY_MARKER} ${JSON.stringify(this.key.publicKey)}`;
  }
}

describe("startAgents with a warm start from a standby pool (in-process)", () => {
  let clock: sinon.SinonFakeTimers;
  let world: FakeWorld;
  let log: RecordingLog;
  let abort: AbortController;
  let key: AgentKey;
  let keysMade: number;

  before(async () => (key = await reusedAgentKey()));
  beforeEach(() => {
    clock = installVirtualClock();
    world = new FakeWorld(clock);
    log = new RecordingLog();
    abort = new AbortController();
    keysMade = 0;
  });
  afterEach(() => clock.restore());

  function start(
    standby: FakeStandbyPool,
    count = 2,
    onlineTimeoutMs?: number,
  ): Promise<Settled<StartResult>> {
    const provider = { ...world.provider, warm: standby };
    const options = startOptionsWith({
      count,
      registration: "agentCredential",
      ...(onlineTimeoutMs === undefined ? {} : { onlineTimeoutMs }),
    });
    const newAgentKey = () => {
      keysMade += 1;
      return reusedAgentKey();
    };
    return startInWorld(world, clock, options, { provider, newAgentKey, log, signal: abort.signal });
  }

  function failure(settled: Settled<StartResult>): StartFailure {
    assert.ok(!settled.ok, "the start failed");
    assert.ok(settled.error instanceof StartFailure, String(settled.error));
    return settled.error;
  }

  const order = (name: string) => world.calls.filter((call) => call.name === name).map((call) => call.method);

  it("claims, reads the container's public key, registers the agent with it, then hands over its settings", async () => {
    const standby = new FakeStandbyPool(world, 2, key);
    const settled = await start(standby);
    assert.ok(settled.ok, String(!settled.ok && settled.error));
    assert.equal(keysMade, 0, "the task makes no key: the containers made theirs");
    assert.deepEqual(world.callsOf("create"), [], "nothing is created");
    for (const name of [nameOf(1), nameOf(2)]) {
      assert.deepEqual(order(name).slice(0, 4), ["claim", "logs", "registerAgent", "deliver"]);
      const settings = standby.delivered.get(name);
      assert.ok(settings);
      assert.deepEqual(JSON.parse(settings.agent), {
        agentId: world.agents.get(name)?.id,
        agentName: name,
        poolId: world.pool.id,
        poolName: world.pool.name,
        serverUrl: "https://dev.azure.com/myorg",
        workFolder: "_work",
      });
      assert.equal((JSON.parse(settings.credentials) as { scheme: string }).scheme, "OAuth");
      const environment = JSON.parse(settings.environment) as Record<string, string>;
      assert.equal(environment[ENV.runKey], "4711");
      assert.equal(environment[ENV.agentName], name);
      assert.equal(environment.FOO, "bar");
      const text = JSON.stringify(settings);
      assert.ok(!text.includes(TOKEN), "no token in the settings");
      assert.ok(!/credentials_rsaparams|"d":/.test(text), "no private key in the settings");
    }
    assert.deepEqual(
      settled.value.steps.map((step) => step.name),
      ["Check pool and provider", "Claim containers and register agents", "Wait for agents online"],
    );
    assert.deepEqual(log.warnings, []);
    assert.match(log.text, /Claimed 2 container\(s\) in 0\.1 s; the first was requested after 0\.0 s\./);
    assert.equal(
      settled.value.totalMs,
      125 + ONLINE_AFTER_SETTINGS_MS + 500,
      "online at the first poll after",
    );
  });

  it("goes on with a container created cold when the pool has none ready, and says so", async () => {
    const standby = new FakeStandbyPool(world, 1, key);
    const settled = await start(standby);
    assert.ok(settled.ok, String(!settled.ok && settled.error));
    assert.equal(log.warnings.length, 1);
    assert.match(
      log.warnings[0],
      new RegExp(`had no container ready for agent ${nameOf(2)}: .*created one cold`),
    );
    assert.ok(standby.delivered.has(nameOf(2)));
    assert.deepEqual(
      settled.value.agents.map((agent) => agent.claimed),
      ["warm", "cold"],
    );
    const registered = world.callsOf("registerAgent").find((call) => call.name === nameOf(2));
    assert.ok(
      registered && registered.at >= 125 + COLD_KEY_MS,
      "registered once the cold container printed its key",
    );
  });

  it("removes the claimed containers and registrations when a container stops before printing its key", async () => {
    const standby = new FakeStandbyPool(world, 0, key);
    standby.silent.add(nameOf(2));
    world.at(30_000, () => world.stopContainer(nameOf(2), { state: "exited", exitCode: 2 }));
    const error = failure(await start(standby));
    assert.match(
      error.message,
      new RegExp(`${nameOf(2)} stopped before it printed its public key \\(exited, exit code 2\\)`),
    );
    assert.match(error.message, /EPHEMERAL_AGENT_WARM_START=true/);
    assert.deepEqual(world.left(), { containers: [], agents: [] });
  });

  it("fails at the online timeout when a container never prints its key, and removes everything", async () => {
    const standby = new FakeStandbyPool(world, 1, key);
    standby.silent.add(nameOf(1));
    const error = failure(await start(standby, 1));
    assert.match(error.message, /printed no public key within 10 min/);
    assert.deepEqual(world.left(), { containers: [], agents: [] });
  });

  it("counts the wait for the key into the online timeout, which bounds the whole wait for the agent", async () => {
    // Created cold, the container prints its key after 20 s; its agent would be online 1.5 s later.
    const timeoutMs = COLD_KEY_MS + ONLINE_AFTER_SETTINGS_MS / 2;
    const error = failure(await start(new FakeStandbyPool(world, 0, key), 1, timeoutMs));
    assert.match(error.message, /Timed out after .* waiting for 1 agent\(s\) to come online/);
    assert.equal(
      world.clock.now,
      timeoutMs,
      "failed at the timeout after the launch, not a timeout after the key",
    );
    assert.deepEqual(world.left(), { containers: [], agents: [] });
  });

  it("removes every claimed container and registration when a registration fails", async () => {
    world.fail("registerAgent", new Error("HTTP 500 from the pool"), { name: nameOf(2) });
    const error = failure(await start(new FakeStandbyPool(world, 3, key), 3));
    assert.match(error.message, /HTTP 500 from the pool/);
    assert.ok(world.callsOf("registerAgent").length >= 2);
    assert.deepEqual(world.left(), { containers: [], agents: [] });
  });

  it("removes the claimed container and its registration when cancelled before the settings are handed over", async () => {
    world.onCall = (call) => {
      if (call.method === "registerAgent") abort.abort();
    };
    const standby = new FakeStandbyPool(world, 1, key);
    const error = failure(await start(standby, 1));
    assert.ok(isCancellation(error), error.message);
    assert.equal(standby.delivered.size, 0, "no settings after the cancellation");
    assert.deepEqual(world.left(), { containers: [], agents: [] });
  });
});
