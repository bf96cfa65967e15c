import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { RETAIL_PRICES_REFERENCE, fault, slowAnswer } from "../../standins";
import {
  ACI_INPUTS,
  AGENT_IMAGE,
  ensureBundles,
  leftovers,
  runTask,
  startStandins,
  taskEnvironment,
  type Standins,
} from "../../standins/taskProcess";
import { TAG } from "../../tasks/common/core/contract";
import { runStartInProcess, runTeardownInProcess } from "./inProcessRun";

/** The saved price list's hourly prices, read from the file itself. */
function savedHourly(meterName: string): number {
  const saved = JSON.parse(readFileSync(RETAIL_PRICES_REFERENCE, "utf8")) as {
    Items: { meterName: string; retailPrice: number; unitOfMeasure: string }[];
  };
  const item = saved.Items.find((candidate) => candidate.meterName === meterName)!;
  assert.match(item.unitOfMeasure, /^1 (GB )?Hour$/);
  return item.retailPrice;
}
const VCPU_HOUR = savedHourly("Standard vCPU Duration");
const GB_HOUR = savedHourly("Standard Memory Duration");
const CPU = 1;
const MEMORY_GB = 2;
/** One container's cost per millisecond: size times the saved prices. */
const PER_MS = (CPU * VCPU_HOUR + MEMORY_GB * GB_HOUR) / 3_600_000;
/** The summary rounds to three significant digits. */
const ROUNDING = 0.005;

function assertWithin(figure: number, low: number, high: number, what: string): void {
  assert.ok(
    figure >= low * (1 - ROUNDING) && figure <= high * (1 + ROUNDING),
    `${what}: ${figure} is not within [${low}, ${high}]`,
  );
}

const startInputs = (runKey: string, inputs: Record<string, string> = {}) => ({
  ...ACI_INPUTS,
  image: AGENT_IMAGE,
  location: "eastus",
  cpu: String(CPU),
  memoryGB: String(MEMORY_GB),
  count: "2",
  runKey,
  ...inputs,
});
const teardownInputs = (runKey: string, inputs: Record<string, string> = {}) => ({
  ...ACI_INPUTS,
  runKey,
  awaitTimeoutMinutes: "1",
  gracePeriodSeconds: "0",
  ...inputs,
});

describe("cost in the run: start and teardown against the stand-ins with the saved price list", function () {
  this.timeout(120_000);
  let standins: Standins;
  let runs = 0;
  let removeFault: (() => void) | undefined;

  before(async () => {
    standins = await startStandins();
  });
  afterEach(() => {
    removeFault?.();
    removeFault = undefined;
    assert.deepEqual(leftovers(standins), { containers: [], agents: [] });
  });
  after(async () => {
    await standins?.close();
  });

  const nextRunKey = () => `cost-${++runs}`;

  it("shows what the agents cost per minute, and what each container did cost over its lifetime", async () => {
    const runKey = nextRunKey();
    const start = await runStartInProcess(standins, { inputs: startInputs(runKey) });
    assert.equal(start.outcome.status, "Succeeded", start.outcome.message);
    const startSummary = start.outcome.summary!.markdown;
    const perMinute =
      /- Cost: about ([\d.]+) USD per minute for 2 agent\(s\) of 1 vCPU, 2 GB, Linux \(Azure retail prices of Container Instances in eastus/.exec(
        startSummary,
      );
    assert.ok(perMinute, startSummary);
    assertWithin(Number(perMinute[1]), 2 * PER_MS * 60_000, 2 * PER_MS * 60_000, "per minute");

    const created = new Map(
      standins.arm.containerGroups().map((group) => [group.name, Date.parse(group.tags![TAG.created])]),
    );
    const teardown = await runTeardownInProcess(standins, { inputs: teardownInputs(runKey) });
    const finished = Date.now();
    assert.equal(teardown.outcome.status, "Succeeded", teardown.outcome.message);
    const summary = teardown.outcome.summary!.markdown;
    let total = 0;
    for (const [name, since] of created) {
      const row = new RegExp(
        `^\\| ${name} \\| 1 vCPU, 2 GB, Linux \\| [\\d.]+ s \\| ([\\d.e-]+) USD \\|$`,
        "m",
      ).exec(summary);
      assert.ok(row, summary);
      const deleted = standins.arm.requests.find(
        (request) => request.method === "DELETE" && request.path.endsWith(`/containerGroups/${name}`),
      )!.receivedAt;
      assertWithin(Number(row[1]), PER_MS * (deleted - since), PER_MS * (finished - since), name);
      total += Number(row[1]);
    }
    const sum =
      /- Total: about ([\d.e-]+) USD for 2 of 2 agent\(s\) \(Azure retail prices of Container Instances in eastus/.exec(
        summary,
      );
    assert.ok(sum, summary);
    assertWithin(Number(sum[1]), total, total, "total");
  });

  for (const [what, interceptor, expected] of [
    ["answers 503", () => fault({ times: 10, reply: { status: 503, body: "" } }), /answered 503/],
    ["drops the connection", () => fault({ times: 10, reply: "reset" }), /could not be reached/],
    ["is slow", () => slowAnswer({ times: 10, delayMs: 10_000 }), /did not answer within 0\.3 s/],
  ] as const) {
    it(`says "cost unknown" and why when the Retail Prices API ${what}; both tasks succeed`, async () => {
      removeFault = standins.retailPrices.intercept(interceptor());
      const runKey = nextRunKey();
      const options = { retailPricesTimeoutMs: 300 };
      const start = await runStartInProcess(standins, { inputs: startInputs(runKey), ...options });
      assert.equal(start.outcome.status, "Succeeded", start.outcome.message);
      const startLine = /- Cost: unknown: (.*)/.exec(start.outcome.summary!.markdown);
      assert.ok(startLine, start.outcome.summary!.markdown);
      assert.match(startLine[1], expected);
      const teardown = await runTeardownInProcess(standins, { inputs: teardownInputs(runKey), ...options });
      assert.equal(teardown.outcome.status, "Succeeded", teardown.outcome.message);
      const totalLine = /- Total: unknown: (.*)/.exec(teardown.outcome.summary!.markdown);
      assert.ok(totalLine, teardown.outcome.summary!.markdown);
      assert.match(totalLine[1], expected);
    });
  }

  it("says why for a region the price list does not cover", async () => {
    const runKey = nextRunKey();
    const start = await runStartInProcess(standins, {
      inputs: startInputs(runKey, { location: "westeurope" }),
    });
    assert.match(
      start.outcome.summary!.markdown,
      /- Cost: unknown: the retail price list has no 'Standard vCPU Duration' and 'Standard Memory Duration' prices of Container Instances for region 'westeurope'/,
    );
    await runTeardownInProcess(standins, { inputs: teardownInputs(runKey) });
  });

  it("sends no request with estimateCost false (the bundled tasks)", async () => {
    await ensureBundles();
    const runKey = nextRunKey();
    const before = standins.retailPrices.requests.length;
    const env = (inputs: Record<string, string>) => taskEnvironment(standins, { inputs });
    const start = await runTask(
      "StartEphemeralAgentV1",
      env(startInputs(runKey, { count: "1", estimateCost: "false" })),
    );
    assert.equal(start.result?.status, "Succeeded", start.stderr);
    assert.match(
      start.summaries.join("\n"),
      /- Cost: unknown: the price lookup is off \(estimateCost: false\)/,
    );
    const teardown = await runTask(
      "TeardownEphemeralAgentV1",
      env(teardownInputs(runKey, { estimateCost: "false" })),
    );
    assert.equal(teardown.result?.status, "Succeeded", teardown.stderr);
    assert.match(teardown.summaries.join("\n"), /- Total: unknown: the price lookup is off/);
    assert.equal(standins.retailPrices.requests.length, before);
  });

  it("prices the run from the bundled tasks, through the address the environment gives", async () => {
    await ensureBundles();
    const runKey = nextRunKey();
    const before = standins.retailPrices.requests.length;
    const env = (inputs: Record<string, string>) => taskEnvironment(standins, { inputs });
    const start = await runTask("StartEphemeralAgentV1", env(startInputs(runKey, { count: "1" })));
    assert.equal(start.result?.status, "Succeeded", start.stderr);
    assert.match(start.summaries.join("\n"), /- Cost: about [\d.e-]+ USD per minute for 1 agent\(s\)/);
    const teardown = await runTask("TeardownEphemeralAgentV1", env(teardownInputs(runKey)));
    assert.equal(teardown.result?.status, "Succeeded", teardown.stderr);
    assert.match(teardown.summaries.join("\n"), /- Total: about [\d.e-]+ USD/);
    assert.equal(standins.retailPrices.requests.length, before + 2, "one lookup per task run");
  });
});
