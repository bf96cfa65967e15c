/**
 * The Azure Retail Prices API (https://prices.azure.com/api/retail/prices), serving a price list saved in
 * standins/reference/retail-prices/ (see SOURCES.md: composed in the documented answer format). Behaviour from
 * Microsoft Learn, "Azure Retail Prices overview": GET with an OData `$filter` of `field eq 'value'` terms joined by
 * `and`; the answer is { BillingCurrency, CustomerEntityId, CustomerEntityType, Items, NextPageLink, Count } with up
 * to 100 items a page and NextPageLink the next page's full URL ($skip), null on the last page. Filter values are
 * compared without regard to case, as the API did before api-version 2023-01-01-preview.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import {
  startStandinServer,
  type Interceptor,
  type RecordedRequest,
  type StandinRequest,
} from "./http-server";

export const RETAIL_PRICES_REFERENCE = path.join(
  __dirname,
  "reference/retail-prices/container-instances-eastus.json",
);

type PriceItem = Record<string, unknown>;

export interface RetailPricesStandinOptions {
  /** The saved answer whose Items the stand-in serves; default the East US Container Instances list. */
  referenceFile?: string;
  /** Items per page; 100 as the API's documentation says, smaller to exercise paging. */
  pageSize?: number;
}

export interface RetailPricesStandin {
  /** The API's URL, .../api/retail/prices, for EPHEMERAL_AGENT_RETAIL_PRICES_URL. */
  url: string;
  /** The items it serves, as saved. */
  items: readonly PriceItem[];
  requests: RecordedRequest[];
  intercept(interceptor: Interceptor): () => void;
  close(): Promise<void>;
}

const PATH = "/api/retail/prices";

/** The `field eq 'value'` terms of a filter; undefined when it holds anything else. */
function filterTerms(filter: string): [string, string][] | undefined {
  const terms: [string, string][] = [];
  for (const term of filter.split(/\s+and\s+/i)) {
    const match = /^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$/i.exec(term);
    if (!match) return undefined;
    terms.push([match[1], match[2].replace(/''/g, "'")]);
  }
  return terms;
}

function matches(item: PriceItem, terms: readonly [string, string][]): boolean {
  return terms.every(([field, value]) => {
    // priceType is the filter's name for the item's `type` (Microsoft Learn lists both).
    const actual = item[field === "priceType" ? "type" : field];
    return typeof actual === "string" && actual.toLowerCase() === value.toLowerCase();
  });
}

export async function startRetailPrices(
  options: RetailPricesStandinOptions = {},
): Promise<RetailPricesStandin> {
  const saved = JSON.parse(readFileSync(options.referenceFile ?? RETAIL_PRICES_REFERENCE, "utf8")) as {
    Items: PriceItem[];
  };
  const pageSize = options.pageSize ?? 100;
  let origin = "";
  const server = await startStandinServer({
    protocol: "https",
    routes: [
      {
        method: "GET",
        pattern: PATH,
        handle: (request: StandinRequest) => {
          const filter = request.query.$filter ?? "";
          const terms = filter ? filterTerms(filter) : [];
          if (!terms) {
            return {
              status: 400,
              body: { Error: { Code: "BadRequest", Message: `Invalid filter: ${filter}` } },
            };
          }
          const skip = Number(request.query.$skip ?? "0") || 0;
          const selected = saved.Items.filter((item) => matches(item, terms));
          const page = selected.slice(skip, skip + pageSize);
          const next = new URL(`${origin}${PATH}`);
          if (filter) next.searchParams.set("$filter", filter);
          next.searchParams.set("$skip", String(skip + pageSize));
          return {
            status: 200,
            body: {
              BillingCurrency: "USD",
              CustomerEntityId: "Default",
              CustomerEntityType: "Retail",
              Items: page,
              NextPageLink: skip + pageSize < selected.length ? next.toString() : null,
              Count: page.length,
            },
          };
        },
      },
    ],
    notFound: () => ({ status: 404, body: { Error: { Code: "NotFound", Message: "Not found" } } }),
  });
  origin = server.origin;
  return {
    url: `${server.origin}${PATH}`,
    items: saved.Items,
    requests: server.requests,
    intercept: server.intercept,
    close: server.close,
  };
}
