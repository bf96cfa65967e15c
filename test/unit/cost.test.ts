import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  aciRates,
  costOver,
  formatMoney,
  perMinute,
  ratesOf,
  secondsPerUnit,
  type RetailPriceItem,
} from "../../tasks/common/core/cost";
import { startCost, startCostLine } from "../../tasks/common/start/cost";
import { teardownCost } from "../../tasks/common/teardown/cost";
import { RETAIL_PRICES_REFERENCE } from "../../standins/retail-prices";

const SAVED = JSON.parse(readFileSync(RETAIL_PRICES_REFERENCE, "utf8")) as { Items: RetailPriceItem[] };

/** The saved list's price of a meter, per second, read by hand from the file. */
function savedPerSecond(meterName: string, secondsInUnit: number): number {
  const item = SAVED.Items.find((candidate) => candidate.meterName === meterName)!;
  return item.retailPrice / secondsInUnit;
}

const LINUX = { region: "eastus", cpu: 1, memoryGB: 2, osType: "Linux" as const };
const WINDOWS = { region: "eastus", cpu: 2, memoryGB: 4, osType: "Windows" as const };

describe("cost of Container Instances (core/cost)", () => {
  it("reads units of measure as durations", () => {
    assert.equal(secondsPerUnit("1 Hour"), 3600);
    assert.equal(secondsPerUnit("1 GB Hour"), 3600);
    assert.equal(secondsPerUnit("1 GiB Hour"), 3600);
    assert.equal(secondsPerUnit("1 Second"), 1);
    assert.equal(secondsPerUnit("100 Seconds"), 100);
    assert.equal(secondsPerUnit("100 GB Seconds"), 100);
    assert.equal(secondsPerUnit("1/Day"), 86_400);
    assert.equal(secondsPerUnit("1 GB/Month"), undefined);
    assert.equal(secondsPerUnit("10K"), undefined);
  });

  it("takes the Standard meters of the saved list, not the Spot ones", () => {
    const rates = aciRates(SAVED.Items, "eastus");
    assert.equal(rates.currency, "USD");
    assert.equal(rates.vcpuPerSecond, savedPerSecond("Standard vCPU Duration", 3600));
    assert.equal(rates.memoryGBPerSecond, savedPerSecond("Standard Memory Duration", 3600));
    assert.equal(rates.windowsVcpuPerSecond, savedPerSecond("Standard Windows Software Duration", 1));
  });

  it("prices a Linux container by vCPU and memory, a Windows one with the software meter on top", () => {
    const rates = aciRates(SAVED.Items, "eastus");
    const linux = 60 * (1 * (0.0405 / 3600) + 2 * (0.00445 / 3600));
    assert.ok(Math.abs(perMinute(rates, LINUX) - linux) < 1e-12);
    const windows = 60 * (2 * (0.0405 / 3600) + 4 * (0.00445 / 3600) + 2 * 0.000012);
    assert.ok(Math.abs(perMinute(rates, WINDOWS) - windows) < 1e-12);
    assert.ok(Math.abs(costOver(rates, LINUX, 90_000) - 1.5 * linux) < 1e-12);
  });

  it("says which meter is missing for a region the list does not cover", () => {
    assert.throws(() => aciRates(SAVED.Items, "westeurope"), /no 'Standard vCPU Duration'.*'westeurope'/);
  });

  it("refuses a meter whose unit is not a duration", () => {
    const odd = SAVED.Items.map((item) =>
      item.meterName === "Standard Memory Duration" ? { ...item, unitOfMeasure: "1 GB/Month" } : item,
    );
    assert.throws(() => aciRates(odd, "eastus"), /'Standard Memory Duration' is priced per '1 GB\/Month'/);
  });

  it("formats small amounts with three significant digits", () => {
    assert.equal(formatMoney(0.000823333, "USD"), "0.000823 USD");
    assert.equal(formatMoney(12.3456, "EUR"), "12.35 EUR");
    assert.equal(formatMoney(0, "USD"), "0 USD");
  });

  it("turns a failing source into a reason, never an exception", async () => {
    const failing = {
      source: {
        containerInstancesPrices: () =>
          Promise.reject(new Error("the API could not be reached: ECONNREFUSED")),
      },
    };
    assert.deepEqual(await ratesOf(failing, "eastus"), {
      unknown: "the API could not be reached: ECONNREFUSED",
    });
    const cost = await startCost(LINUX, 2, failing);
    assert.equal(startCostLine(cost), "- Cost: unknown: the API could not be reached: ECONNREFUSED");
  });

  it("prices the start's agents per minute, and asks nothing when prices are unavailable", async () => {
    let asked = 0;
    const source = {
      containerInstancesPrices: () => {
        asked += 1;
        return Promise.resolve(SAVED.Items);
      },
    };
    const cost = await startCost(LINUX, 3, { source });
    assert.ok(cost.known);
    assert.ok(Math.abs(cost.perMinute - 3 * 60 * (0.0405 / 3600 + 2 * (0.00445 / 3600))) < 1e-12);
    const off = await startCost(LINUX, 3, { unavailable: "the price lookup is off (estimateCost: false)" });
    assert.equal(startCostLine(off), "- Cost: unknown: the price lookup is off (estimateCost: false)");
    assert.equal(asked, 1);
  });

  it("prices each removed container by its size and lifetime, and says why one cannot be priced", async () => {
    const source = { containerInstancesPrices: () => Promise.resolve(SAVED.Items) };
    const base = { job: "", container: "removed", registration: "removed", swept: false, milestones: {} };
    const cost = await teardownCost(
      [
        { ...base, name: "a", billedSize: LINUX, lifetimeMs: 600_000 },
        { ...base, name: "b", billedSize: WINDOWS, lifetimeMs: 60_000 },
        { ...base, name: "c", billedSize: LINUX },
        { ...base, name: "d", lifetimeMs: 60_000 },
      ],
      { source },
    );
    const a = 10 * 60 * (0.0405 / 3600 + 2 * (0.00445 / 3600));
    const b = 60 * (2 * (0.0405 / 3600) + 4 * (0.00445 / 3600) + 2 * 0.000012);
    assert.deepEqual(
      cost.agents.map((agent) => agent.cost),
      [
        formatMoney(a, "USD"),
        formatMoney(b, "USD"),
        "unknown: the container was gone before the teardown",
        "unknown: the container's size was not found",
      ],
    );
    assert.match(
      cost.total,
      new RegExp(
        `^about ${formatMoney(a + b, "USD")} for 2 of 4 agent\\(s\\) \\(Azure retail prices.*\\); the others unknown$`,
      ),
    );
  });

  it("leaves the sweep's leftovers of other runs out", async () => {
    const source = { containerInstancesPrices: () => Promise.resolve(SAVED.Items) };
    const base = {
      job: "",
      container: "removed",
      registration: "removed",
      billedSize: LINUX,
      lifetimeMs: 60_000,
      milestones: {},
    };
    const cost = await teardownCost(
      [
        { ...base, name: "ours", swept: false },
        { ...base, name: "leftover", swept: true },
      ],
      { source },
    );
    assert.deepEqual(
      cost.agents.map((agent) => agent.name),
      ["ours"],
    );
  });

  it("does not price a Windows container where the list lacks the Windows software meter", async () => {
    const linuxOnly = SAVED.Items.filter((item) => item.meterName !== "Standard Windows Software Duration");
    const source = { containerInstancesPrices: () => Promise.resolve(linuxOnly) };
    const cost = await startCost(WINDOWS, 1, { source });
    assert.equal(
      startCostLine(cost),
      "- Cost: unknown: the retail price list has no 'Standard Windows Software Duration' price for region 'eastus'",
    );
    assert.ok((await startCost(LINUX, 1, { source })).known);
  });
});
