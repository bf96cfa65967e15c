import type { PriceSource, Prices } from "../core/cost";
import type { ProviderSettings } from "../providers";

export interface PriceLookup {
  /** The estimateCost input: false sends no request. */
  estimateCost: boolean;
  /** The Retail Prices API's URL; the public one unless a test points elsewhere. */
  url?: string;
  timeoutMs: number;
  signal: AbortSignal;
}

/** Where the task's cost figures come from, or why it has none; never throws, as a price never fails a task. */
export function pricesFor(settings: ProviderSettings, lookup: PriceLookup): Prices {
  if (!lookup.estimateCost) return { unavailable: "the price lookup is off (estimateCost: false)" };
  if (settings.provider === "docker")
    return { unavailable: "containers on a Docker engine have no price list" };
  const { connection } = settings.aci;
  // Azure operated by 21Vianet publishes its retail prices as a CSV download (prices.azure.cn), not through this API.
  if (/^https?:\/\/[^/]*\.chinacloudapi\.cn(:\d+)?(\/|$)/i.test(connection.armUrl)) {
    return {
      unavailable:
        "Azure in China publishes its retail prices elsewhere (prices.azure.cn), which this task does not read",
    };
  }
  // Loaded on first use, like the providers: the client's HTTP pipeline is the Azure SDK's, bundled with the aci
  // provider's libraries (scripts/build.mjs), which the docker path never loads.
  let client: Promise<PriceSource> | undefined;
  const load = () =>
    (client ??= import("../clients/retailPrices").then(
      ({ RetailPrices }) =>
        new RetailPrices({
          url: lookup.url,
          timeoutMs: lookup.timeoutMs,
          agentHttp: connection.agentHttp,
          signal: lookup.signal,
        }),
    ));
  return {
    source: { containerInstancesPrices: async (region) => (await load()).containerInstancesPrices(region) },
  };
}
