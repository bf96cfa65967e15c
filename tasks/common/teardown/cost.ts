import {
  costOver,
  describeRates,
  describeSize,
  formatMoney,
  ratesOf,
  unpriceable,
  type AciRates,
  type Prices,
} from "../core/cost";
import { formatDuration } from "../core/log";
import type { AgentTeardown } from "./teardownAgents";

export interface AgentCost {
  name: string;
  size?: string;
  lifetime?: string;
  /** The figure, or why there is none. */
  cost: string;
}

/** What the removed containers did cost: size times lifetime at the region's price, or why that is unknown. */
export interface TeardownCost {
  agents: AgentCost[];
  /** The sum over the agents whose cost is known, with the prices' source; or why there is no figure at all. */
  total: string;
}

/** Prices each of the run's containers (not the sweep's leftovers of other runs); never throws. */
export async function teardownCost(removed: readonly AgentTeardown[], prices: Prices): Promise<TeardownCost> {
  const agents = removed.filter((agent) => !agent.swept);
  const regions = [
    ...new Set(agents.flatMap((agent) => (agent.billedSize ? [agent.billedSize.region] : []))),
  ];
  const rates = new Map<string, AciRates | { unknown: string }>();
  for (const region of regions) rates.set(region, await ratesOf(prices, region));
  const sums = new Map<string, number>();
  const used = new Map<string, AciRates>();
  const reasons = new Set<string>();
  const rows = agents.map((agent): AgentCost => {
    const lifetime = agent.lifetimeMs === undefined ? undefined : formatDuration(agent.lifetimeMs);
    const size = agent.billedSize && describeSize(agent.billedSize);
    const row = (cost: string): AgentCost => ({ name: agent.name, size, lifetime, cost });
    if ("unavailable" in prices) return row("unknown");
    if (!agent.billedSize) return row("unknown: the container's size was not found");
    if (agent.lifetimeMs === undefined) return row("unknown: the container was gone before the teardown");
    const regionRates = rates.get(agent.billedSize.region)!;
    if ("unknown" in regionRates) {
      reasons.add(regionRates.unknown);
      return row("unknown");
    }
    const missing = unpriceable(regionRates, agent.billedSize);
    if (missing) {
      reasons.add(missing);
      return row("unknown");
    }
    const amount = costOver(regionRates, agent.billedSize, agent.lifetimeMs);
    sums.set(regionRates.currency, (sums.get(regionRates.currency) ?? 0) + amount);
    used.set(regionRates.region, regionRates);
    return row(formatMoney(amount, regionRates.currency));
  });
  if ("unavailable" in prices) return { agents: rows, total: `unknown: ${prices.unavailable}` };
  const why = [...reasons].join("; ");
  if (sums.size === 0) return { agents: rows, total: `unknown: ${why || "no container could be priced"}` };
  const amounts = [...sums].map(([currency, amount]) => formatMoney(amount, currency)).join(" + ");
  const sources = [
    ...[...used.values()].map(describeRates),
    "lifetime from the container's creation to its removal",
  ];
  const priced = rows.filter((row) => !row.cost.startsWith("unknown")).length;
  const others = priced < rows.length ? `; the others unknown${why ? `: ${why}` : ""}` : "";
  const total = `about ${amounts} for ${priced} of ${rows.length} agent(s) (${sources.join("; ")})${others}`;
  return { agents: rows, total };
}

/** The summary's cost section. */
export function teardownCostLines(cost: TeardownCost, cell: (text: string) => string): string[] {
  if (cost.agents.length === 0) return [];
  return [
    "**Cost**",
    "",
    "| Agent | Size | Lifetime | Cost |",
    "| --- | --- | --- | --- |",
    ...cost.agents.map(
      (agent) => `| ${agent.name} | ${agent.size ?? ""} | ${agent.lifetime ?? ""} | ${cell(agent.cost)} |`,
    ),
    "",
    `- Total: ${cell(cost.total)}`,
    "",
  ];
}
