import assert from "node:assert/strict";
import { ALL_FAULT_KINDS, attachRandomFaults, emptyTally, type FaultTally } from "../../standins";
import { assertNoSecrets, ensureBundles, leftovers, mapConcurrently } from "../../standins/taskProcess";
import { assertNothingLeft, assertOnline, start, teardown, withStandins } from "./faultRuns";

const RANDOM_RUNS = 12;
const CONCURRENT_RUNS = 5;
const MAX_TEARDOWNS = 3;

describe("Hardening: seeded runs under random faults (bundled tasks)", function () {
  this.timeout(180_000);

  before(() => ensureBundles());

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
