// startAgents in-process, against the fake provider and pool, in virtual time: every wait is a fake timer.
import assert from "node:assert/strict";
import type sinon from "sinon";
import { ENV } from "../../tasks/common/core/contract";
import { DEFAULT_POLL_INTERVAL_MS } from "../../tasks/common/core/timing";
import {
  StartFailure,
  isCancellation,
  type StartOptions,
  type StartResult,
} from "../../tasks/common/start/startAgents";
import { startFailed, startSucceeded } from "../../tasks/common/start/outcome";
import {
  FakeWorld,
  RecordingLog,
  TOKEN,
  httpError,
  installVirtualClock,
  nameOf,
  startInWorld,
  startOptionsWith,
  type Settled,
} from "./fakes";

describe("startAgents (in-process, virtual time)", () => {
  let clock: sinon.SinonFakeTimers;
  let world: FakeWorld;
  let log: RecordingLog;
  let abort: AbortController;

  beforeEach(() => {
    clock = installVirtualClock();
    world = new FakeWorld(clock);
    log = new RecordingLog();
    abort = new AbortController();
  });
  afterEach(() => {
    clock.restore();
    const printed = [log.text, ...log.groups.map((group) => `${group.title}\n${group.lines}`)].join("\n");
    assert.ok(!printed.includes(TOKEN), "the registration token reached the log");
  });

  function start(overrides: Partial<StartOptions> = {}): Promise<Settled<StartResult>> {
    return startInWorld(world, clock, startOptionsWith(overrides), { log, signal: abort.signal });
  }

  function failure(settled: Settled<StartResult>): StartFailure {
    assert.ok(!settled.ok, "the start failed");
    assert.ok(settled.error instanceof StartFailure, String(settled.error));
    assert.ok(!settled.error.message.includes(TOKEN), "the registration token reached the error message");
    return settled.error;
  }

  const nothingLeft = { containers: [], agents: [] };

  describe("success", () => {
    it("launches N agents, waits until all are online and removes nothing", async () => {
      world.scripts.set(nameOf(2), { registersAfterMs: 4000, onlineAfterMs: 6500 });
      const settled = await start({ count: 3 });
      assert.ok(settled.ok, String(!settled.ok && settled.error));
      const names = [1, 2, 3].map(nameOf);
      assert.deepEqual(
        settled.value.agents.map((agent) => agent.name),
        names,
      );
      for (const agent of settled.value.agents) assert.ok(agent.onlineAfterMs !== undefined, agent.name);
      assert.equal(settled.value.demand, "EPHEMERAL_AGENT_RUN -equals 4711");
      assert.deepEqual(
        settled.value.steps.map((step) => step.name),
        ["Check pool and provider", "Create containers", "Wait for agents online"],
      );
      assert.deepEqual(world.left(), { containers: names, agents: names });
      assert.deepEqual(world.callsOf("remove"), []);
      assert.deepEqual(world.callsOf("deleteAgent"), []);
      for (const name of names) {
        assert.match(log.text, new RegExp(`Agent ${name} registered in pool 'Default' after`));
        assert.match(log.text, new RegExp(`Agent ${name} is online after`));
      }
      assert.match(log.text, /All 3 agent\(s\) are online after/);
    });

    it("checks the pool, the right to manage it and the provider before it creates anything", async () => {
      await start();
      assert.deepEqual(
        world.calls.slice(0, 4).map((call) => call.method),
        ["findPool", "checkCanManage", "prepare", "create"],
      );
    });

    it("gives each container its identity and environment, and the token only as the secret", async () => {
      await start({ count: 2 });
      for (const name of [nameOf(1), nameOf(2)]) {
        const container = world.containers.get(name)!;
        assert.deepEqual(
          { ...container.identity, created: undefined },
          { name, pool: "Default", runKey: "4711", created: undefined, lifetimeMinutes: 120 },
        );
        assert.equal(container.token, TOKEN);
        assert.deepEqual(container.environment, {
          FOO: "bar",
          [ENV.url]: "https://dev.azure.com/myorg/",
          [ENV.pool]: "Default",
          [ENV.agentName]: name,
          [ENV.runKey]: "4711",
          [ENV.lifetimeMinutes]: "120",
        });
        assert.ok(!Object.values(container.environment).includes(TOKEN), "token not visible");
      }
    });

    it("warns before creating anything about environment entries the agent will not report", async () => {
      const settled = await start({ environment: { FOO: "bar", TERM: "xterm", LONG: "x".repeat(1024) } });
      assert.ok(settled.ok);
      const warnings = log.lines.filter((line) => line.level === "warn").map((line) => line.message);
      assert.equal(warnings.length, 2, warnings.join("\n"));
      assert.match(warnings[0], /environment entry TERM .*ignore list.*demand on it would never match/);
      assert.match(warnings[1], /environment entry LONG .*1024 characters/);
      const firstWarning = log.lines.findIndex((line) => line.level === "warn");
      const launching = log.lines.findIndex((line) => line.message.startsWith("Launching"));
      assert.ok(firstWarning < launching, "the warnings come before the launch");
    });

    it("spaces creations 125 ms apart", async () => {
      await start({ count: 5 });
      assert.deepEqual(
        world.callsOf("create").map((call) => [call.name, call.at]),
        [1, 2, 3, 4, 5].map((number, index) => [nameOf(number), index * 125]),
      );
    });

    it("keeps 50 creations 125 ms apart, each waiting for its slot without a listener warning", async () => {
      const warnings: Error[] = [];
      const onWarning = (warning: Error) => warnings.push(warning);
      process.on("warning", onWarning);
      try {
        const settled = await start({ count: 50 });
        assert.ok(settled.ok, String(!settled.ok && settled.error));
        await new Promise((resolve) => process.nextTick(resolve));
      } finally {
        process.off("warning", onWarning);
      }
      assert.deepEqual(
        world.callsOf("create").map((call) => call.at),
        Array.from({ length: 50 }, (_, index) => index * 125),
      );
      assert.deepEqual(warnings, []);
    });

    it("asks the pool once per round and the containers every third round, however many agents wait", async () => {
      world.defaultScript = { registersAfterMs: 1000, onlineAfterMs: 9500 };
      const settled = await start({ count: 3 });
      assert.ok(settled.ok);
      const waitBegan = world.callsOf("create").at(-1)!.at;
      const rounds = (method: "listAgents" | "pollStatuses") =>
        world.callsOf(method).map((call) => (call.at - waitBegan) / DEFAULT_POLL_INTERVAL_MS.start);
      // Online at 9.5 s after the first creation: seen in round 10, 9.75 s after the last creation.
      assert.deepEqual(rounds("listAgents"), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      assert.deepEqual(rounds("pollStatuses"), [0, 3, 6, 9]);
    });

    it("reports progress every 30 s while agents are not online", async () => {
      world.defaultScript = { registersAfterMs: 1000, onlineAfterMs: 65_000 };
      const settled = await start();
      assert.ok(settled.ok);
      const progress = log.lines.filter((line) => /Waiting for 1 of 1 agent\(s\)/.test(line.message));
      assert.equal(progress.length, 2, log.text);
      assert.match(progress[0].message, /\(30\.0 s so far\)/);
    });
  });

  describe("failure", () => {
    it("fails at the next container round when a container stops, with its state, exit code and log tail", async () => {
      const log40 = Array.from({ length: 40 }, (_, index) => `line ${index + 1}`).join("\n");
      world.scripts.set(nameOf(2), {
        stops: { afterMs: 2500, state: "exited", exitCode: 3, detail: "Error" },
        logs: `${log40}\n`,
      });
      world.defaultScript = { registersAfterMs: 1000 };
      const error = failure(await start({ count: 2 }));
      assert.match(
        error.message,
        new RegExp(
          `container of agent ${nameOf(2)} stopped before the agent came online \\(exited, exit code 3, Error\\)`,
        ),
      );
      assert.match(error.message, /Last lines of its log:\nline 11\n[\s\S]*\nline 40$/);
      assert.doesNotMatch(error.message, /line 10\n/);
      const stoppedSeen = world.callsOf("pollStatuses").at(-1)!.at;
      assert.equal(
        stoppedSeen,
        125 + 3 * DEFAULT_POLL_INTERVAL_MS.start,
        "seen in the round after it stopped",
      );
      assert.deepEqual(world.left(), nothingLeft);
      assert.deepEqual(error.result.agents.find((agent) => agent.name === nameOf(2))?.status, {
        state: "exited",
        exitCode: 3,
        detail: "Error",
      });
    });

    it("says so when a stopped container wrote no log, or its log cannot be read", async () => {
      world.defaultScript = {
        stops: { afterMs: 10, state: "failed", detail: "InaccessibleImage" },
        logs: "",
      };
      assert.match(
        failure(await start()).message,
        /\(failed, InaccessibleImage\)\. The container wrote no log\.$/,
      );

      world = new FakeWorld(clock);
      world.defaultScript = { stops: { afterMs: 10, state: "exited", exitCode: 1 } };
      world.fail("logs", httpError(500, "log service down"));
      assert.match(failure(await start()).message, /Its log could not be read: log service down$/);
    });

    it("times out with each agent's state and removes everything it created", async () => {
      world.scripts.set(nameOf(1), { registersAfterMs: 1000 });
      world.scripts.set(nameOf(2), {});
      const error = failure(await start({ count: 2, onlineTimeoutMs: 5000 }));
      assert.match(
        error.message,
        new RegExp(
          `^Timed out after 5\\.0 s waiting for 2 agent\\(s\\) to come online \\(${nameOf(1)}: registered, offline, container running; ${nameOf(2)}: not registered, container running\\)\\. Raise onlineTimeoutMinutes`,
        ),
      );
      assert.match(error.message, new RegExp(`Last lines of its log:\nagent ${nameOf(1)} starting$`));
      assert.deepEqual(world.left(), nothingLeft);
      assert.ok(world.callsOf("listAgents").at(-2)!.at <= 125 + 5000, "no round after the deadline");
    });

    it("fails when a creation throws, creates no more and removes the containers that were created", async () => {
      world.fail("create", httpError(409, "quota exceeded"), { name: nameOf(2) });
      const error = failure(await start({ count: 3 }));
      assert.equal(error.message, "quota exceeded");
      assert.deepEqual(
        world.callsOf("create").map((call) => call.name),
        [1, 2].map(nameOf),
        "no creation after one failed",
      );
      assert.deepEqual(
        world.callsOf("remove").map((call) => call.name),
        [1, 2, 3].map(nameOf),
      );
      assert.deepEqual(world.left(), nothingLeft);
      assert.deepEqual(world.callsOf("listAgents").length, 1, "only the removal's listing: no waiting");
    });

    it("creates and removes nothing when the pool or the provider check fails", async () => {
      for (const method of ["findPool", "checkCanManage", "prepare"] as const) {
        world = new FakeWorld(clock);
        world.fail(method, new Error(`${method} refused`));
        const error = failure(await start());
        assert.equal(error.message, `${method} refused`);
        assert.deepEqual(world.callsOf("create"), [], method);
        assert.deepEqual(world.callsOf("remove"), [], method);
      }
    });

    it("removes containers first, then the registrations", async () => {
      world.defaultScript = { registersAfterMs: 500, stops: { afterMs: 2000, state: "exited", exitCode: 1 } };
      failure(await start({ count: 3 }));
      const removal = world.calls.filter((call) => call.method === "remove" || call.method === "deleteAgent");
      assert.deepEqual(
        removal.map((call) => `${call.method} ${call.name}`),
        [
          ...[1, 2, 3].map((number) => `remove ${nameOf(number)}`),
          ...[1, 2, 3].map((number) => `deleteAgent ${nameOf(number)}`),
        ],
      );
      assert.deepEqual(world.left(), nothingLeft);
    });

    it("keeps what it created on failure when keepOnFailure is set, and says so", async () => {
      world.defaultScript = { registersAfterMs: 500, stops: { afterMs: 2000, state: "exited", exitCode: 1 } };
      failure(await start({ count: 2, keepOnFailure: true }));
      assert.deepEqual(world.callsOf("remove"), []);
      assert.deepEqual(world.left(), { containers: [nameOf(1), nameOf(2)], agents: [nameOf(1), nameOf(2)] });
      assert.match(
        log.warnings.join("\n"),
        /keepOnFailure is set: leaving .*-1, .*-2 in place for debugging/,
      );
    });

    it("reports a removal that fails and still fails with the first error", async () => {
      world.defaultScript = { registersAfterMs: 500, stops: { afterMs: 2000, state: "exited", exitCode: 1 } };
      world.fail("remove", httpError(403, "may not delete"), { name: nameOf(1) });
      const error = failure(await start({ count: 2 }));
      assert.match(error.message, /stopped before the agent came online/);
      assert.deepEqual(log.warnings, [
        `Could not remove the container of agent ${nameOf(1)}: may not delete`,
      ]);
      assert.deepEqual(world.left(), { containers: [nameOf(1)], agents: [] });
    });

    it("reports registrations it could not list for removal", async () => {
      world.defaultScript = { registersAfterMs: 500, stops: { afterMs: 2000, state: "exited", exitCode: 1 } };
      world.onCall = (call) => {
        if (call.method === "remove") world.fail("listAgents", httpError(503, "pool unavailable"));
      };
      failure(await start());
      assert.deepEqual(log.warnings, [
        "Could not remove the agent registrations from pool 'Default': pool unavailable",
      ]);
      assert.deepEqual(world.left(), { containers: [], agents: [nameOf(1)] });
    });
  });

  describe("cancellation", () => {
    /** Aborts the start at the first call matching `method` (and name); returns what the start ended with. */
    async function cancelAt(method: string, count: number, name?: string): Promise<StartFailure> {
      world.onCall = (call) => {
        if (call.method === method && (name === undefined || call.name === name)) abort.abort();
      };
      const settled = await start({ count });
      const error = failure(settled);
      assert.ok(isCancellation(error), error.message);
      return error;
    }

    it("before creating: creates and removes nothing", async () => {
      await cancelAt("prepare", 2);
      assert.deepEqual(world.callsOf("create"), []);
      assert.deepEqual(world.callsOf("remove"), []);
      assert.deepEqual(world.left(), nothingLeft);
    });

    it("while creating: creates no more and removes what it created", async () => {
      await cancelAt("create", 3, nameOf(2));
      assert.deepEqual(
        world.callsOf("create").map((call) => call.name),
        [nameOf(1), nameOf(2)],
      );
      assert.deepEqual(world.left(), nothingLeft);
      assert.equal(world.callsOf("remove").length, 3, "every name of the start is removed");
    });

    it("while waiting: removes containers and registrations", async () => {
      world.defaultScript = { registersAfterMs: 500 };
      world.onCall = (call) => {
        if (call.method === "listAgents" && call.at >= 4000) abort.abort();
      };
      const error = failure(await start({ count: 2 }));
      assert.ok(isCancellation(error));
      assert.equal(world.callsOf("deleteAgent").length, 2);
      assert.deepEqual(world.left(), nothingLeft);
    });

    it("during a wait between rounds: ends the wait at once", async () => {
      world.defaultScript = {};
      clock.setTimeout(() => abort.abort(), 2500);
      const error = failure(await start());
      assert.ok(isCancellation(error));
      assert.equal(world.callsOf("remove")[0].at, 2500, "removal began when the signal came");
      assert.deepEqual(world.left(), nothingLeft);
    });
  });

  describe("outcome", () => {
    it("sets the outputs on success and names cancellation on failure", async () => {
      const settled = await start({ count: 2 });
      assert.ok(settled.ok);
      const outcome = startSucceeded(settled.value);
      assert.equal(outcome.status, "Succeeded");
      assert.deepEqual(outcome.outputs, {
        agentName: nameOf(1),
        agentNames: `${nameOf(1)},${nameOf(2)}`,
        agentPool: "Default",
        runKey: "4711",
        demand: "EPHEMERAL_AGENT_RUN -equals 4711",
      });
      assert.match(outcome.summary?.markdown ?? "", /Ephemeral agents: online/);

      world = new FakeWorld(clock);
      world.onCall = (call) => call.method === "create" && abort.abort();
      const cancelled = await start();
      assert.ok(!cancelled.ok);
      const failed = startFailed(cancelled.error);
      assert.equal(failed.status, "Failed");
      assert.equal(failed.message, "Cancelled; removed what this task created.");
      assert.match(failed.summary?.markdown ?? "", /Ephemeral agents: failed/);
    });
  });
});
