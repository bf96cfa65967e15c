// teardownAgents in-process, against the fake provider and pool, in virtual time: every wait is a fake timer.
import assert from "node:assert/strict";
import type sinon from "sinon";
import { CancelledError, DEFAULT_POLL_INTERVAL_MS } from "../../tasks/common/core/timing";
import {
  teardownAgents,
  type TeardownOptions,
  type TeardownResult,
} from "../../tasks/common/teardown/teardownAgents";
import { teardownFailed, teardownSucceeded } from "../../tasks/common/teardown/outcome";
import { FakeWorld, RecordingLog, httpError, installVirtualClock, runToEnd, type Settled } from "./fakes";

const MINE = ["ephemeral-4711-abcde-1", "ephemeral-4711-abcde-2"];
const OTHER = "ephemeral-other-fghij-1";
const nothingLeft = { containers: [], agents: [] };

describe("teardownAgents (in-process, virtual time)", () => {
  let clock: sinon.SinonFakeTimers;
  let world: FakeWorld;
  let log: RecordingLog;
  let abort: AbortController;

  beforeEach(() => {
    // Virtual time starts a day in, so that things can have been created hours before.
    clock = installVirtualClock();
    clock.tick(24 * 60 * 60_000);
    world = new FakeWorld(clock);
    log = new RecordingLog();
    abort = new AbortController();
  });
  afterEach(() => clock.restore());

  function options(overrides: Partial<TeardownOptions> = {}): TeardownOptions {
    return {
      pool: "Default",
      runKey: "4711",
      agentNames: [],
      agentNamePrefix: "ephemeral",
      awaitTimeoutMs: 30 * 60_000,
      gracePeriodMs: 60_000,
      showLogs: true,
      sweepOlderThanMinutes: 0,
      pollIntervalMs: DEFAULT_POLL_INTERVAL_MS.teardown,
      ...overrides,
    };
  }

  function teardown(overrides: Partial<TeardownOptions> = {}): Promise<Settled<TeardownResult>> {
    const operation = teardownAgents(options(overrides), {
      provider: world.provider,
      pools: world.pools,
      log,
      signal: abort.signal,
      clock: () => clock.now,
    });
    return runToEnd(clock, operation);
  }

  async function succeeded(overrides: Partial<TeardownOptions> = {}): Promise<TeardownResult> {
    const settled = await teardown(overrides);
    assert.ok(settled.ok, String(!settled.ok && settled.error));
    return settled.value;
  }

  /** A live agent of a run: its container runs and its agent is online and idle. */
  function liveAgent(name: string, runKey: string, minutesAgo = 5): void {
    world.addContainer(name, { runKey, minutesAgo });
    world.addAgent(name, { online: true, runKey, createdOn: new Date(clock.now - minutesAgo * 60_000) });
  }

  function line(name: string): string {
    return log.lines.find((entry) => entry.message.startsWith(`Agent ${name}:`))?.message ?? "(no line)";
  }

  describe("finding the run's agents", () => {
    it("removes the agents named, and nothing else", async () => {
      for (const name of MINE) liveAgent(name, "4711");
      liveAgent(OTHER, "other");
      const result = await succeeded({ agentNames: [MINE[0], MINE[0]] });
      assert.deepEqual(
        result.agents.map((agent) => agent.name),
        [MINE[0]],
      );
      assert.deepEqual(world.left(), { containers: [MINE[1], OTHER], agents: [MINE[1], OTHER] });
    });

    it("finds them by run key, in container tags or agent capabilities, and leaves other runs alone", async () => {
      // One container whose agent never registered, one registration whose container is gone.
      world.addContainer(MINE[0], { runKey: "4711" });
      world.addAgent(MINE[1], { runKey: "4711" });
      liveAgent(OTHER, "other");
      const result = await succeeded();
      assert.match(log.text, new RegExp(`Tearing down 2 agent\\(s\\) of run '4711': ${MINE.join(", ")}\n`));
      assert.match(
        line(MINE[0]),
        /job none taken; container removed \(running\); registration already gone\.$/,
      );
      assert.match(line(MINE[1]), /job none taken; container already gone; registration removed\.$/);
      assert.equal(result.outcome, "Succeeded");
      assert.deepEqual(world.left(), { containers: [OTHER], agents: [OTHER] });
    });

    it("says so when it finds nothing, and succeeds", async () => {
      liveAgent(OTHER, "other");
      const result = await succeeded();
      assert.match(
        log.text,
        /^No ephemeral agents of run '4711' were found in pool 'Default' or on the fake provider\.$/m,
      );
      assert.deepEqual(result.agents, []);
      assert.equal(
        teardownSucceeded(result, "4711").message,
        "Found no agents of run '4711': nothing to remove.",
      );
      assert.deepEqual(world.callsOf("remove"), []);
    });

    it("fails before removing anything when the pool cannot be found", async () => {
      liveAgent(MINE[0], "4711");
      const settled = await teardown({ pool: "Nope" });
      assert.ok(!settled.ok);
      assert.match(String(settled.error), /'Nope' was not found/);
      assert.deepEqual(world.callsOf("remove"), []);
      assert.deepEqual(world.callsOf("deleteAgent"), []);
    });
  });

  describe("awaiting jobs", () => {
    it("waits for a busy agent's job, removing nothing meanwhile, then removes both agents", async () => {
      for (const name of MINE) liveAgent(name, "4711");
      world.agents.get(MINE[0])!.currentJob = { name: "Deploy" };
      world.at(5000, () => world.finishJob(MINE[0], "succeeded", "exit"));
      const result = await succeeded();
      assert.match(log.text, new RegExp(`Agent ${MINE[0]} is running 'Deploy': waiting for it to finish\\.`));
      // Polled every 2 s: the job that ended at 5 s is seen at 6 s.
      assert.match(log.text, /Jobs finished after 6\.0 s\./);
      const began = world.calls[0].at;
      const firstRemoval = world.calls.find(
        (call) => call.method === "remove" || call.method === "deleteAgent",
      )!;
      assert.equal(firstRemoval.at - began, 6000, "nothing removed while the job ran");
      assert.match(
        line(MINE[0]),
        /lived 5 min 6 s, job 'Deploy' ended, then the agent unregistered itself; container removed \(exited, exit code 0, Completed\); registration already gone\.$/,
      );
      assert.match(line(MINE[1]), /job none taken; container removed \(running\); registration removed\.$/);
      assert.equal(result.outcome, "Succeeded");
      assert.equal(world.callsOf("deleteAgent").length, 1, "only the idle agent's registration was left");
      assert.deepEqual(world.left(), nothingLeft);
    });

    it("does not wait for a busy agent whose container is gone", async () => {
      liveAgent(MINE[0], "4711");
      world.agents.get(MINE[0])!.currentJob = { name: "Orphan" };
      world.stopContainer(MINE[0], { state: "failed", detail: "OOMKilled" });
      const result = await succeeded();
      assert.doesNotMatch(log.text, /waiting for it to finish/);
      assert.equal(world.callsOf("remove")[0].at, world.calls[0].at, "removed at once");
      assert.match(line(MINE[0]), /job 'Orphan' still running; container removed \(failed, OOMKilled\)/);
      assert.equal(result.outcome, "Succeeded");
    });

    it("removes a busy agent anyway after the await timeout, and says so", async () => {
      liveAgent(MINE[0], "4711");
      world.agents.get(MINE[0])!.currentJob = { name: "Endless" };
      const result = await succeeded({ awaitTimeoutMs: 5000 });
      assert.equal(result.outcome, "SucceededWithIssues");
      assert.deepEqual(result.issues, [
        `Agent(s) ${MINE[0]} still ran a job after 5.0 s and were removed anyway: raise awaitTimeoutMinutes if jobs take longer.`,
      ]);
      assert.equal(world.callsOf("remove")[0].at - world.calls[0].at, 5000);
      assert.match(
        line(MINE[0]),
        /job 'Endless' still running; container removed \(running\); registration removed\.$/,
      );
      const outcome = teardownSucceeded(result, "4711");
      assert.equal(outcome.status, "SucceededWithIssues");
      assert.match(outcome.summary?.markdown ?? "", /with issues[\s\S]*\*\*Issues\*\*/);
    });

    it("reports progress every minute while it waits", async () => {
      liveAgent(MINE[0], "4711");
      world.agents.get(MINE[0])!.currentJob = { name: "Long" };
      world.at(150_000, () => world.finishJob(MINE[0]));
      await succeeded();
      const progress = log.lines.filter((entry) => entry.message.startsWith("Still waiting"));
      assert.deepEqual(
        progress.map((entry) => entry.message),
        [
          `Still waiting after 1 min 0 s for ${MINE[0]} ('Long').`,
          `Still waiting after 2 min 0 s for ${MINE[0]} ('Long').`,
        ],
      );
    });
  });

  describe("grace period", () => {
    it("lets a container whose agent did its job exit by itself", async () => {
      liveAgent(MINE[0], "4711");
      world.agents.get(MINE[0])!.lastJob = { name: "Build", result: "succeeded" };
      world.at(3000, () =>
        world.stopContainer(MINE[0], { state: "exited", exitCode: 0, detail: "Completed" }),
      );
      await succeeded({ gracePeriodMs: 10_000 });
      assert.match(log.text, new RegExp(`Giving ${MINE[0]} up to 10\\.0 s to exit\\.`));
      assert.equal(world.callsOf("remove")[0].at - world.calls[0].at, 4000, "removed once it exited");
      assert.match(
        line(MINE[0]),
        /job 'Build' succeeded; container removed \(exited, exit code 0, Completed\); registration removed\.$/,
      );
    });

    it("removes a container that does not exit once the grace period is over", async () => {
      liveAgent(MINE[0], "4711");
      world.agents.get(MINE[0])!.lastJob = { name: "Build", result: "succeeded" };
      await succeeded({ gracePeriodMs: 5000 });
      assert.equal(world.callsOf("remove")[0].at - world.calls[0].at, 5000);
      assert.match(
        line(MINE[0]),
        /job 'Build' succeeded; container removed \(running\); registration removed\.$/,
      );
    });

    it("gives no grace to an agent that took no job, nor with a grace period of 0", async () => {
      liveAgent(MINE[0], "4711");
      liveAgent(MINE[1], "4711");
      world.agents.get(MINE[1])!.lastJob = { name: "Build", result: "succeeded" };
      await succeeded({ gracePeriodMs: 0 });
      assert.doesNotMatch(log.text, /Giving/);
      assert.equal(world.callsOf("remove")[0].at, world.calls[0].at);
    });
  });

  describe("logs", () => {
    it("shows each container's log in a group titled with its state, unless showLogs is off", async () => {
      world.addContainer(MINE[0], { runKey: "4711", logs: "Job Deploy completed with result: Succeeded\n" });
      world.addContainer(MINE[1], {
        runKey: "4711",
        logs: "",
        status: { state: "exited", exitCode: 1, detail: "Error" },
      });
      await succeeded();
      assert.deepEqual(log.groups, [
        { title: `Log of ${MINE[0]} (running)`, lines: "Job Deploy completed with result: Succeeded" },
        { title: `Log of ${MINE[1]} (exited, exit code 1, Error)`, lines: "(empty)" },
      ]);

      world.addContainer(MINE[0], { runKey: "4711" });
      log = new RecordingLog();
      await succeeded({ showLogs: false });
      assert.deepEqual(log.groups, []);
      assert.deepEqual(world.left(), nothingLeft);
    });

    it("warns when a container cannot be read, and still removes it", async () => {
      world.addContainer(MINE[0], { runKey: "4711" });
      world.fail("status", httpError(500, "read failed"));
      const result = await succeeded();
      assert.deepEqual(log.warnings, [`Could not read the container of ${MINE[0]}: read failed`]);
      assert.match(line(MINE[0]), /container removed; registration already gone\.$/);
      assert.equal(result.outcome, "Succeeded");
    });
  });

  describe("removal", () => {
    it("removes registrations after containers", async () => {
      for (const name of MINE) liveAgent(name, "4711");
      await succeeded();
      assert.deepEqual(
        world.calls
          .filter((call) => call.method === "remove" || call.method === "deleteAgent")
          .map((call) => call.method),
        ["remove", "remove", "deleteAgent", "deleteAgent"],
      );
    });

    it("treats a container or registration already gone as removed, and a second run finds nothing", async () => {
      for (const name of MINE) liveAgent(name, "4711");
      // Something else deletes the first container and the second registration just as the task does.
      world.onCall = (call) => {
        if (call.method === "remove" && call.name === MINE[0]) world.containers.delete(MINE[0]);
        if (call.method === "listAgents" && world.callsOf("remove").length === 2)
          world.agents.delete(MINE[1]);
      };
      const result = await succeeded({ agentNames: MINE });
      assert.match(line(MINE[0]), /container already gone; registration removed\.$/);
      assert.match(line(MINE[1]), /container removed \(running\); registration already gone\.$/);
      assert.equal(result.outcome, "Succeeded");
      assert.deepEqual(log.warnings, []);
      assert.equal(teardownSucceeded(result, "4711").message, "Removed 2 agent(s); nothing is left.");

      world.onCall = undefined;
      log = new RecordingLog();
      const again = await succeeded();
      assert.deepEqual(again.agents, []);
      assert.match(log.text, /No ephemeral agents of run '4711' were found/);
    });

    it("removes the registration an agent left behind when its container exited after the job", async () => {
      world.addContainer(MINE[0], {
        runKey: "4711",
        status: { state: "exited", exitCode: 0, detail: "Completed" },
      });
      world.addAgent(MINE[0], { runKey: "4711", lastJob: { name: "Build", result: "failed" } });
      await succeeded({ agentNames: [MINE[0]] });
      assert.match(
        line(MINE[0]),
        /job 'Build' failed; container removed \(exited, exit code 0, Completed\); registration removed\.$/,
      );
      assert.deepEqual(world.left(), nothingLeft);
    });

    it("reports, and does not throw for, a container or registration it may not remove", async () => {
      for (const name of MINE) liveAgent(name, "4711");
      world.fail("remove", httpError(403, "AuthorizationFailed: Contributor on resource group 'rg-agents'"), {
        name: MINE[0],
      });
      world.fail("deleteAgent", httpError(403, "may not manage agent pool 'Default'"), { name: MINE[1] });
      const result = await succeeded();
      assert.equal(result.outcome, "SucceededWithIssues");
      assert.deepEqual(result.issues, [
        `The container of ${MINE[0]} could not be removed: AuthorizationFailed: Contributor on resource group 'rg-agents'`,
        `The registration of ${MINE[1]} could not be removed from pool 'Default': may not manage agent pool 'Default'`,
      ]);
      assert.match(line(MINE[0]), /container failed; registration removed\.$/);
      assert.match(line(MINE[1]), /container removed \(running\); registration failed\.$/);
      assert.deepEqual(world.left(), { containers: [MINE[0]], agents: [MINE[1]] });
      assert.equal(teardownSucceeded(result, "4711").message, result.issues.join(" "));

      // The next teardown, with the rights fixed, finds the rest by run key.
      world = new FakeWorld(clock);
      world.addContainer(MINE[0], { runKey: "4711" });
      world.addAgent(MINE[1], { runKey: "4711" });
      const retry = await succeeded();
      assert.equal(retry.outcome, "Succeeded");
      assert.deepEqual(world.left(), nothingLeft);
    });
  });

  describe("sweep", () => {
    it("removes old leftovers of any run, keeping live, busy and young agents and other hosts", async () => {
      // Leftovers: a container past its lifetime whose agent is offline, and a registration without container.
      world.addContainer("ephemeral-old1-abcde-1", {
        runKey: "old1",
        minutesAgo: 180,
        status: { state: "exited", exitCode: 124, detail: "Error" },
      });
      world.addAgent("ephemeral-old1-abcde-1", {
        runKey: "old1",
        createdOn: new Date(clock.now - 180 * 60_000),
      });
      world.addAgent("ephemeral-old2-fghij-1", {
        runKey: "old2",
        createdOn: new Date(clock.now - 120 * 60_000),
      });
      // Kept: an old container with a busy agent, one within its lifetime, an online one, and registrations
      // that are young, not ours, or whose container is kept.
      world.addContainer("ephemeral-busy-klmno-1", { runKey: "busy", minutesAgo: 180 });
      world.addAgent("ephemeral-busy-klmno-1", {
        runKey: "busy",
        online: true,
        currentJob: { name: "Long" },
        createdOn: new Date(clock.now - 180 * 60_000),
      });
      world.addContainer("ephemeral-young-pqrst-1", {
        runKey: "young",
        minutesAgo: 90,
        lifetimeMinutes: 120,
      });
      world.addContainer("ephemeral-live-zzzzz-1", { runKey: "live", minutesAgo: 180 });
      world.addAgent("ephemeral-live-zzzzz-1", {
        runKey: "live",
        online: true,
        createdOn: new Date(clock.now - 180 * 60_000),
      });
      world.addAgent("build-host-1", { createdOn: new Date(clock.now - 600 * 60_000) });
      world.addAgent("ephemeral-old3-uvwxy-1", {
        runKey: "old3",
        createdOn: new Date(clock.now - 10 * 60_000),
      });
      world.addAgent("ephemeral-young-pqrst-1", {
        runKey: "young",
        createdOn: new Date(clock.now - 90 * 60_000),
      });

      const result = await succeeded({ runKey: "current", sweepOlderThanMinutes: 60 });
      assert.equal(result.outcome, "Succeeded");
      assert.match(log.text, /No ephemeral agents of run 'current' were found/);
      assert.match(
        log.text,
        /Sweep: removing 2 leftover\(s\) older than 60 minutes: ephemeral-old1-abcde-1, ephemeral-old2-fghij-1\n/,
      );
      assert.match(
        log.text,
        /Swept ephemeral-old1-abcde-1: lived 180 min 0 s, job none taken; container removed \(exited, exit code 124, Error\); registration removed\./,
      );
      assert.match(
        log.text,
        /Swept ephemeral-old2-fghij-1: lived 120 min 0 s, job none taken; container already gone; registration removed\./,
      );
      assert.ok(result.agents.every((agent) => agent.swept));
      assert.deepEqual(world.left(), {
        containers: ["ephemeral-busy-klmno-1", "ephemeral-live-zzzzz-1", "ephemeral-young-pqrst-1"],
        agents: [
          "build-host-1",
          "ephemeral-busy-klmno-1",
          "ephemeral-live-zzzzz-1",
          "ephemeral-old3-uvwxy-1",
          "ephemeral-young-pqrst-1",
        ],
      });
      assert.deepEqual(
        world.agents.get("ephemeral-busy-klmno-1")?.currentJob,
        { name: "Long" },
        "job untouched",
      );
      assert.match(
        teardownSucceeded(result, "current").summary?.markdown ?? "",
        /ephemeral-old1-abcde-1 \(sweep\)/,
      );
    });

    it("says when there is nothing to sweep, and does not sweep the run's own agents twice", async () => {
      world.addContainer(MINE[0], { runKey: "4711", minutesAgo: 600 });
      await succeeded({ sweepOlderThanMinutes: 60 });
      assert.match(log.text, /Sweep: no leftovers older than 60 minutes in pool 'Default'\./);
      assert.equal(world.callsOf("remove").length, 1);
    });
  });

  describe("cancellation", () => {
    it("ends the wait for jobs at once and removes nothing", async () => {
      liveAgent(MINE[0], "4711");
      world.agents.get(MINE[0])!.currentJob = { name: "Deploy" };
      world.at(3000, () => abort.abort());
      const settled = await teardown();
      assert.ok(!settled.ok);
      assert.ok(settled.error instanceof CancelledError);
      assert.equal(clock.now - world.calls[0].at, 3000, "ended when the signal came");
      assert.deepEqual(world.callsOf("remove"), []);
      assert.equal(
        teardownFailed(settled.error).message,
        "Cancelled before everything was removed: run the teardown again.",
      );
    });

    it("ends the grace period at once", async () => {
      liveAgent(MINE[0], "4711");
      world.agents.get(MINE[0])!.lastJob = { name: "Build", result: "succeeded" };
      world.at(1500, () => abort.abort());
      const settled = await teardown();
      assert.ok(!settled.ok && settled.error instanceof CancelledError);
      assert.equal(clock.now - world.calls[0].at, 1500);
    });
  });
  describe("timeline", () => {
    const at = (msAgo: number) => new Date(clock.now - msAgo);

    it("records when each agent was requested, ran, came online, ran its job and was removed", async () => {
      const began = clock.now;
      world.addContainer(MINE[0], {
        runKey: "4711",
        minutesAgo: 5,
        status: { state: "running", startedAt: at(290_000) },
      });
      world.addAgent(MINE[0], {
        online: true,
        runKey: "4711",
        statusChangedOn: at(280_000),
        currentJob: { name: "Deploy", queued: at(60_000), started: at(59_000) },
      });
      // The job ends 5 s into the teardown; the agent keeps its registration and goes offline, its container exits.
      world.at(5000, () => {
        world.finishJob(MINE[0], "succeeded");
        world.agents.get(MINE[0])!.online = false;
        world.agents.get(MINE[0])!.statusChangedOn = new Date(clock.now);
        world.stopContainer(MINE[0], {
          state: "exited",
          exitCode: 0,
          startedAt: at(295_000),
          finishedAt: at(0),
        });
      });
      liveAgent(MINE[1], "4711", 2);
      world.agents.get(MINE[1])!.statusChangedOn = at(60_000);

      const result = await succeeded();
      const [worker, idle] = result.agents;
      assert.deepEqual(worker.milestones, {
        requested: new Date(began - 300_000),
        running: new Date(began - 290_000),
        online: new Date(began - 280_000),
        "job queued": new Date(began - 60_000),
        "job started": new Date(began - 59_000),
        "job ended": new Date(began + 5000),
        // The job's end is seen at the next poll, 6 s in; the container is removed then.
        removed: new Date(began + 6000),
      });
      assert.deepEqual(idle.milestones, {
        requested: new Date(began - 120_000),
        running: undefined,
        online: new Date(began - 60_000),
        "job queued": undefined,
        "job started": undefined,
        "job ended": undefined,
        removed: new Date(began + 6000),
      });
    });

    it("takes the online time from the agent's log when no listing showed it online", async () => {
      world.addContainer(MINE[0], {
        runKey: "4711",
        status: { state: "exited", exitCode: 0 },
        logs: "Connecting to the server.\n2026-12-05 08:10:09Z: Listening for Jobs\n",
      });
      world.addAgent(MINE[0], { runKey: "4711", statusChangedOn: at(1000) });
      const [agent] = (await succeeded()).agents;
      assert.deepEqual(agent.milestones.online, new Date("2026-12-05T08:10:09Z"));
      log = new RecordingLog();
      world.addContainer(MINE[0], { runKey: "4711", logs: "2026-12-05 08:10:09Z: Listening for Jobs\n" });
      const [unread] = (await succeeded({ showLogs: false })).agents;
      assert.equal(unread.milestones.online, undefined, "the log is read only to be shown");
    });

    it("leaves out what it did not see: no tags, no container to remove, an agent never seen online", async () => {
      world.addAgent(MINE[0], { runKey: "4711", lastJob: { name: "Deploy", result: "failed" } });
      const result = await succeeded();
      assert.deepEqual(result.agents[0].milestones, {
        requested: undefined,
        running: undefined,
        online: undefined,
        "job queued": undefined,
        "job started": undefined,
        "job ended": undefined,
        removed: undefined,
      });
    });
  });
});
