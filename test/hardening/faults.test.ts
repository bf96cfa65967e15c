import assert from "node:assert/strict";
import { fault, faultReply, slowAnswer, type Reply, type Service } from "../../standins";
import type { Standins } from "../../standins/taskProcess";
import type { InProcessRun } from "../tasks/inProcessRun";
import {
  assertAgentsOnline,
  assertNothingLeft,
  isAgentsQuery,
  isGroupPut,
  isTokenRequest,
  START_INPUTS,
  startInProcess as start,
  withStandins,
} from "./faultRuns";

const assertOnline = (standins: Standins, run: InProcessRun) =>
  assertAgentsOnline(standins, run.outcome.outputs?.agentNames ?? "", Number(START_INPUTS.count), run.log);

// The start runs in this process, as its entry file runs it (test/tasks/inProcessRun.ts); the seeded random runs
// of faults-random.test.ts run the bundled tasks.
describe("Hardening: the start under injected faults", function () {
  this.timeout(180_000);

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
        const run = await start(standins, "retry-after", { retryBaseDelayMs: 100 });
        assert.equal(run.outcome.status, "Succeeded", run.log);
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
            assert.equal(run.outcome.status, "Succeeded", run.log);
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
        assert.equal(run.outcome.status, "Succeeded", run.log);
        const puts = standins.arm.requests.filter((request) => request.method === "PUT");
        assert.equal(puts.length, 4, "three creations and one retry");
        assert.deepEqual(
          standins.arm
            .containerGroups()
            .map((group) => group.name)
            .sort(),
          (run.outcome.outputs?.agentNames ?? "").split(",").sort(),
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
        assert.equal(run.outcome.status, "Succeeded", run.log);
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
        assert.equal(run.outcome.status, "Failed", run.log);
        assert.match(run.outcome.message, /-2 stopped before the agent came online \(failed/);
        assertNothingLeft(standins, "after the failed start");
        assert.equal(standins.arm.requests.filter((request) => request.method === "DELETE").length, 3);
      });
    });

    it("paces creations through Resource Manager's write throttling", async () => {
      await withStandins({ arm: { throttling: { writesPerSecond: 2 } } }, async (standins) => {
        const run = await start(standins, "throttled");
        assert.equal(run.outcome.status, "Succeeded", run.log);
        assert.ok(standins.arm.throttled.writes >= 1, "some creations were throttled");
        const names = (run.outcome.outputs?.agentNames ?? "").split(",").sort();
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
});
