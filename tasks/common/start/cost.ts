import {
  describeRates,
  describeSize,
  formatMoney,
  perMinute,
  ratesOf,
  unpriceable,
  type AciRates,
  type BilledSize,
  type Prices,
} from "../core/cost";

/** What the start's agents are expected to cost per minute, or why that is unknown. */
export type StartCost =
  | { known: true; size: BilledSize; count: number; rates: AciRates; perMinute: number }
  | { known: false; reason: string };

/** The expected cost of `count` containers of the provider's size; never throws. */
export async function startCost(
  size: BilledSize | undefined,
  count: number,
  prices: Prices,
): Promise<StartCost> {
  if ("unavailable" in prices) return { known: false, reason: prices.unavailable };
  if (!size) return { known: false, reason: "the provider did not say the containers' region and size" };
  const rates = await ratesOf(prices, size.region);
  if ("unknown" in rates) return { known: false, reason: rates.unknown };
  const missing = unpriceable(rates, size);
  if (missing) return { known: false, reason: missing };
  return { known: true, size, count, rates, perMinute: count * perMinute(rates, size) };
}

/** The summary's cost line. */
export function startCostLine(cost: StartCost): string {
  if (!cost.known) return `- Cost: unknown: ${cost.reason}`;
  const { size, count, rates } = cost;
  return `- Cost: about ${formatMoney(cost.perMinute, rates.currency)} per minute for ${count} agent(s) of ${describeSize(size)} (${describeRates(rates)})`;
}
