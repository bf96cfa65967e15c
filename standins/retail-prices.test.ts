import assert from "node:assert/strict";
import { RetailPrices } from "../tasks/common/clients/retailPrices";
import { fault, slowAnswer } from "./faults";
import { startRetailPrices, type RetailPricesStandin } from "./retail-prices";

const EASTUS_FILTER =
  "serviceName eq 'Container Instances' and armRegionName eq 'eastus' and priceType eq 'Consumption'";

describe("Retail Prices stand-in and clients/retailPrices", () => {
  let standin: RetailPricesStandin;
  const never = new AbortController().signal;

  afterEach(async () => {
    await standin.close();
  });

  it("serves the saved list page by page, and the client reads every page once per region", async () => {
    standin = await startRetailPrices({ pageSize: 2 });
    const client = new RetailPrices({ url: standin.url, timeoutMs: 5000, signal: never });
    const items = await client.containerInstancesPrices("East US");
    assert.deepEqual(items, standin.items);
    assert.deepEqual(
      standin.requests.map((request) => [request.query.$filter, request.query.$skip]),
      [
        [EASTUS_FILTER, undefined],
        [EASTUS_FILTER, "2"],
        [EASTUS_FILTER, "4"],
      ],
    );
    await client.containerInstancesPrices("eastus");
    assert.equal(standin.requests.length, 3, "the second lookup of the region comes from the cache");
  });

  it("answers a region it has no prices for with no items", async () => {
    standin = await startRetailPrices();
    const client = new RetailPrices({ url: standin.url, timeoutMs: 5000, signal: never });
    assert.deepEqual(await client.containerInstancesPrices("westeurope"), []);
  });

  it("refuses a filter that is not a conjunction of 'eq' terms", async () => {
    standin = await startRetailPrices();
    const response = await fetch(
      `${standin.url}?$filter=${encodeURIComponent("contains(meterName, 'vCPU')")}`,
    );
    assert.equal(response.status, 400);
  });

  it("reports an error answer, a dropped connection and a slow answer as reasons", async () => {
    standin = await startRetailPrices();
    const client = () => new RetailPrices({ url: standin.url, timeoutMs: 300, signal: never });
    standin.intercept(fault({ reply: { status: 503, body: "unavailable" } }));
    await assert.rejects(client().containerInstancesPrices("eastus"), /answered 503/);
    standin.intercept(fault({ reply: "reset" }));
    await assert.rejects(client().containerInstancesPrices("eastus"), /could not be reached/);
    standin.intercept(slowAnswer({ delayMs: 5000 }));
    await assert.rejects(client().containerInstancesPrices("eastus"), /did not answer within 0.3 s/);
  });

  it("reports an address nothing listens on", async () => {
    standin = await startRetailPrices();
    const url = standin.url;
    await standin.close();
    standin = await startRetailPrices();
    const client = new RetailPrices({ url, timeoutMs: 5000, signal: never });
    await assert.rejects(client.containerInstancesPrices("eastus"), /could not be reached/);
  });
});
