import assert from "node:assert/strict";
import {
  ALL_FAULT_KINDS,
  STANDIN_DEFAULTS,
  attachRandomFaults,
  emptyTally,
  fault,
  faultReply,
  slowAnswer,
  type FaultTally,
  type Reply,
  type Service,
  type StandinRequest,
  type StartAllOptions,
} from "../../standins";
import {
  ACI_INPUTS,
  AGENT_IMAGE,
  assertNoSecrets,
  leftovers,
  mapConcurrently,
  runTask,
  startStandins,
  taskEnvironment,
  type Standins,
  type TaskRun,
  ensureBundles,
} from "../../standins/taskProcess";

const { poolName } = STANDIN_DEFAULTS;
const START_INPUTS = { ...ACI_INPUTS, image: AGENT_IMAGE, count: "3" };
const TEARDOWN_INPUTS = { ...ACI_INPUTS, awaitTimeoutMinutes: "1", gracePeriodSeconds: "2" };
const RANDOM_RUNS = 12;
const CONCURRENT_RUNS = 5;
const MAX_TEARDOWNS = 3;

type RequestLine = Pick<StandinRequest, "method" | "path">;

const isAgentsQuery = (request: RequestLine) =>
  request.method === "GET" && /\/pools\/\d+\/agents$/.test(request.path);
const isGroupPut = (request: RequestLine) =>
  request.method === "PUT" && /\/containerGroups\/[^/]+$/i.test(request.path);
const isTokenRequest = (request: RequestLine) =>
  request.method === "POST" && request.path.endsWith("/oauth2/v2.0/token");

function start(standins: Standins, runKey: string, extra: Record<string, string> = {}): Promise<TaskRun> {
  return runTask(
    "StartEphemeralAgentV1",
    taskEnvironment(standins, { inputs: { ...START_INPUTS, runKey }, extra }),
  );
}

function teardown(standins: Standins, inputs: Record<string, string>): Promise<TaskRun> {
  return runTask(
    "TeardownEphemeralAgentV1",
    taskEnvironment(standins, { inputs: { ...TEARDOWN_INPUTS, ...inputs } }),
  );
}

function assertNothingLeft(standins: Standins, context: string): void {
  assert.deepEqual(leftovers(standins), { containers: [], agents: [] }, `nothing left ${context}`);
}

function assertOnline(standins: Standins, run: TaskRun): void {
  const names = run.outputs.agentNames.split(",");
  assert.equal(names.length, 3, run.stdout);
  for (const name of names) assert.equal(standins.devops.agent(poolName, name)?.status, "online", name);
}

async function withStandins<T>(
  options: StartAllOptions,
  work: (standins: Standins) => Promise<T>,
): Promise<T> {
  const standins = await startStandins(options);
  try {
    return await work(standins);
  } finally {
    await standins.close();
  }
}

describe("Hardening: start and teardown under injected faults (bundled tasks)", function () {
  this.timeout(180_000);

  before(() => ensureBundles());

  describe("one fault at a time", () => {
    it("honours Retry-After when every DevOps agents query is first answered 429", async () => {
      await withStandins({}, async (standins) => {
        const answers: { at: number; throttled: boolean }[] = [];
        let throttleNext = true;
        standins.devops.intercept((request) => {
          if (!isAgentsQuery(request)) return undefined;
          answers.push({ at: Date.now(), throttled: throttleNext });
          throttleNext = !throttleNext;
          return answers[answers.length - 1].throttled ? faultReply("devops", "throttled", 1) : undefined;
        });
        // A retry base of 100 ms caps a retry wait at 3 s (30 x base), above the 1 s asked for.
        const run = await start(standins, "retry-after", { EPHEMERAL_AGENT_RETRY_BASE_MS: "100" });
        assert.equal(run.result?.status, "Succeeded", run.stdout);
        assertOnline(standins, run);
        const throttled = answers.filter((answer) => answer.throttled);
        assert.ok(throttled.length >= 1, "at least one agents query was throttled");
        for (let index = 0; index + 1 < answers.length; index += 2) {
          const waitedMs = answers[index + 1].at - answers[index].at;
          assert.ok(waitedMs >= 950, `the retry waited ${waitedMs} ms after Retry-After: 1`);
        }
      });
    });

    for (const service of ["arm", "devops", "entra"] as const satisfies readonly Service[]) {
      for (const kind of ["throttled", "serverError", "unavailable", "reset"] as const) {
        const target = { arm: "container group PUT", devops: "agents query", entra: "token request" }[
          service
        ];
        it(`starts anyway when the first ${target} meets ${kind}`, async () => {
          await withStandins({}, async (standins) => {
            const match = { arm: isGroupPut, devops: isAgentsQuery, entra: isTokenRequest }[service];
            const reply: Reply | "reset" = kind === "reset" ? "reset" : faultReply(service, kind, 0);
            standins[service].intercept(fault({ match, reply }));
            const run = await start(standins, `${service}-${kind}`);
            assert.equal(run.result?.status, "Succeeded", run.stdout);
            assertOnline(standins, run);
            const hits = standins[service].requests.filter(match);
            assert.ok(hits.length >= 2, `the ${target} was sent again`);
            assert.equal(hits[0].status, reply === "reset" ? "reset" : reply.status);
          });
        });
      }
    }

    it("creates each container group once when a PUT's connection is reset", async () => {
      await withStandins({}, async (standins) => {
        standins.arm.intercept(fault({ match: isGroupPut, reply: "reset" }));
        const run = await start(standins, "put-reset");
        assert.equal(run.result?.status, "Succeeded", run.stdout);
        const puts = standins.arm.requests.filter((request) => request.method === "PUT");
        assert.equal(puts.length, 4, "three creations and one retry");
        assert.deepEqual(
          standins.arm
            .containerGroups()
            .map((group) => group.name)
            .sort(),
          run.outputs.agentNames.split(",").sort(),
        );
      });
    });

    it("waits out slow answers from all three services", async () => {
      await withStandins({}, async (standins) => {
        standins.entra.intercept(slowAnswer({ match: isTokenRequest, delayMs: 1000 }));
        standins.arm.intercept(slowAnswer({ match: isGroupPut, delayMs: 2500 }));
        standins.devops.intercept(slowAnswer({ match: isAgentsQuery, delayMs: 1500 }));
        const began = Date.now();
        const run = await start(standins, "slow");
        assert.equal(run.result?.status, "Succeeded", run.stdout);
        assertOnline(standins, run);
        assert.ok(Date.now() - began >= 2500, "the slow answers were awaited");
        const puts = standins.arm.requests.filter((request) => request.method === "PUT");
        assert.equal(puts.length, 3, "a slow answer is not retried");
      });
    });

    it("fails and removes everything when one of three creations ends Failed", async () => {
      await withStandins({}, async (standins) => {
        standins.arm.behaviours.push({
          match: /-2$/,
          provisioning: "fail",
          error: { code: "InaccessibleImage", message: "The image could not be pulled." },
        });
        const run = await start(standins, "lro-failed");
        assert.equal(run.result?.status, "Failed", run.stdout);
        assert.match(run.result?.message ?? "", /-2 stopped before the agent came online \(failed/);
        assertNothingLeft(standins, "after the failed start");
        assert.equal(standins.arm.requests.filter((request) => request.method === "DELETE").length, 3);
      });
    });

    it("paces creations through Resource Manager's write throttling", async () => {
      await withStandins({ arm: { throttling: { writesPerSecond: 2 } } }, async (standins) => {
        const run = await start(standins, "throttled");
        assert.equal(run.result?.status, "Succeeded", run.stdout);
        assert.ok(standins.arm.throttled.writes >= 1, "some creations were throttled");
        const names = run.outputs.agentNames.split(",").sort();
        assert.deepEqual(
          standins.arm
            .containerGroups()
            .map((group) => group.name)
            .sort(),
          names,
        );
      });
    });
  });

  describe(`${RANDOM_RUNS} seeded runs with 20% random faults on Entra, ARM and DevOps`, () => {
    type Outcome = "started and removed" | "failed start cleanly";
    interface RunReport {
      outcome: Outcome;
      teardowns: number;
      injected: FaultTally;
      throttled: number;
    }

    /** One start-then-teardown cycle; asserts that nothing is left whatever happened. */
    async function cycle(seed: number): Promise<RunReport> {
      return withStandins({}, async (standins) => {
        const faults = attachRandomFaults(standins, {
          seed,
          rate: 0.2,
          kinds: ALL_FAULT_KINDS,
          retryAfterSeconds: 1,
          slowMs: [200, 800],
        });
        const runKey = `seed-${seed}`;
        const started = await start(standins, runKey);
        const printed = [started.stdout, started.stderr, JSON.stringify(started.outputs)];
        let outcome: Outcome;
        let teardowns = 0;
        const where = `(seed ${seed})`;
        if (started.result?.status === "Succeeded") {
          assertOnline(standins, started);
          outcome = "started and removed";
          let inputs: Record<string, string> = { runKey, agentNames: started.outputs.agentNames };
          for (;;) {
            teardowns += 1;
            const result = await teardown(standins, inputs);
            printed.push(result.stdout, result.stderr);
            const left = leftovers(standins);
            const clean = left.containers.length === 0 && left.agents.length === 0;
            if (result.result?.status === "Succeeded") {
              assert.ok(
                clean,
                `a teardown that Succeeded left ${JSON.stringify(left)} ${where}\n${result.stdout}`,
              );
              break;
            }
            // A teardown whose own requests failed past all retries must say why; the re-run finds the rest by run key.
            assert.ok(result.result?.message, `teardown ${teardowns} ended without a reason ${where}`);
            if (clean) break;
            assert.ok(
              teardowns < MAX_TEARDOWNS,
              `${MAX_TEARDOWNS} teardowns left ${JSON.stringify(left)} ${where}`,
            );
            inputs = { runKey };
          }
        } else {
          assert.equal(
            started.result?.status,
            "Failed",
            `start ended without a result ${where}\n${started.stdout}`,
          );
          assert.ok(started.result?.message, "a failed start says why");
          outcome = "failed start cleanly";
        }
        assertNothingLeft(standins, `after the cycle ${where}`);
        for (const text of printed) assertNoSecrets(text);
        const { reads, writes, deletes } = standins.arm.throttled;
        faults.remove();
        return { outcome, teardowns, injected: faults.total(), throttled: reads + writes + deletes };
      });
    }

    it("ends every run with nothing left: agents online then removed, or a failed start that cleaned up", async () => {
      const seeds = Array.from({ length: RANDOM_RUNS }, (_, index) => 1000 + index);
      const began = Date.now();
      const reports = await mapConcurrently(seeds, CONCURRENT_RUNS, (seed) => cycle(seed));
      const count = (outcome: Outcome) => reports.filter((report) => report.outcome === outcome).length;
      const injected = emptyTally();
      for (const report of reports)
        for (const kind of ALL_FAULT_KINDS) injected[kind] += report.injected[kind];
      const anotherTeardown = reports.filter((report) => report.teardowns > 1).length;
      const throttled = reports.reduce((sum, report) => sum + report.throttled, 0);
      console.log(
        `      ${RANDOM_RUNS} runs: ${count("started and removed")} started+removed (${anotherTeardown} needed another teardown), ${count("failed start cleanly")} failed start cleanly; injected ${JSON.stringify(injected)}; ARM throttled ${throttled}; ${((Date.now() - began) / 1000).toFixed(1)} s`,
      );
      // Each run asserted its own end state; across them, faults must have hit and some starts survived them,
      // so that the teardown under faults ran too.
      assert.ok(
        ALL_FAULT_KINDS.some((kind) => injected[kind] > 0),
        "no fault was injected",
      );
      assert.ok(count("started and removed") > 0, "no start got through the faults to a teardown");
    });
  });
});
