/**
 * What agents cost, from the Azure Retail Prices API's Container Instances meters (Microsoft Learn, "Azure Retail
 * Prices overview"; the meters as the API lists them: standins/reference/retail-prices/). Pure: the prices come
 * through a PriceSource, which clients/retailPrices implements.
 */
import { errorMessage } from "./errors";

/** What a container group is billed by: its region, its size and its OS (ACI bills Windows software on top). */
export interface BilledSize {
  region: string;
  cpu: number;
  memoryGB: number;
  osType: "Linux" | "Windows";
}

/** One price of the Retail Prices API's `Items`, reduced to the fields read here. */
export interface RetailPriceItem {
  currencyCode: string;
  retailPrice: number;
  tierMinimumUnits?: number;
  armRegionName: string;
  effectiveStartDate?: string;
  meterName: string;
  productName: string;
  skuName: string;
  serviceName: string;
  unitOfMeasure: string;
  type: string;
}

/** The Container Instances prices of a region; throws, with the reason, when they cannot be had. */
export interface PriceSource {
  containerInstancesPrices(region: string): Promise<RetailPriceItem[]>;
}

/** Where a task gets prices: a source, or the reason it has none (lookup off, a cloud without the API, Docker). */
export type Prices = { source: PriceSource } | { unavailable: string };

/** The prices that apply to an agent container, per second. */
export interface AciRates {
  region: string;
  currency: string;
  vcpuPerSecond: number;
  memoryGBPerSecond: number;
  /** The Windows software meter, per vCPU; charged on Windows container groups only. */
  windowsVcpuPerSecond?: number;
  /** The newest effectiveStartDate among the meters used, for the summary. */
  effectiveSince?: string;
}

/**
 * The meters of a regular (pay-as-you-go, not Spot, not confidential, no GPU) container group. The Spot,
 * "Confidential containers ACI" and GPU SKUs have meters of their own and never apply to the agents this
 * extension creates.
 */
export const ACI_METERS = {
  product: "Container Instances",
  sku: "Standard",
  vcpu: "Standard vCPU Duration",
  memory: "Standard Memory Duration",
  windows: "Standard Windows Software Duration",
} as const;

const UNIT_SECONDS: Record<string, number> = { second: 1, minute: 60, hour: 3600, day: 86_400 };

/**
 * Seconds in one unit of measure, such as "1 Hour", "1 GB Hour", "100 GB Seconds" or "1 GiB Hour"; undefined for
 * a unit that is not a duration. GiB is read as GB: ACI's memoryInGB is the same figure either way.
 */
export function secondsPerUnit(unitOfMeasure: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:GB|GiB|vCPU)?\s*\/?\s*(second|minute|hour|day)s?\s*$/i.exec(
    unitOfMeasure,
  );
  if (!match) return undefined;
  return Number(match[1]) * UNIT_SECONDS[match[2].toLowerCase()];
}

/** A region's rates from its price list; throws, naming what is missing, when the list lacks a meter. */
export function aciRates(items: readonly RetailPriceItem[], region: string): AciRates {
  const regular = items.filter(
    (item) =>
      item.serviceName === "Container Instances" &&
      item.productName === ACI_METERS.product &&
      item.skuName === ACI_METERS.sku &&
      item.type === "Consumption" &&
      item.armRegionName.toLowerCase() === region.toLowerCase() &&
      (item.tierMinimumUnits ?? 0) === 0,
  );
  const meter = (name: string) =>
    regular
      .filter((item) => item.meterName === name)
      .sort((a, b) => (b.effectiveStartDate ?? "").localeCompare(a.effectiveStartDate ?? ""))[0];
  const vcpu = meter(ACI_METERS.vcpu);
  const memory = meter(ACI_METERS.memory);
  if (!vcpu || !memory) {
    throw new Error(
      `the retail price list has no '${ACI_METERS.vcpu}' and '${ACI_METERS.memory}' prices of Container Instances for region '${region}'`,
    );
  }
  const windows = meter(ACI_METERS.windows);
  const used = [vcpu, memory, ...(windows ? [windows] : [])];
  const currencies = new Set(used.map((item) => item.currencyCode));
  if (currencies.size !== 1)
    throw new Error(`the prices come in several currencies (${[...currencies].join(", ")})`);
  return {
    region,
    currency: vcpu.currencyCode,
    vcpuPerSecond: perSecond(vcpu),
    memoryGBPerSecond: perSecond(memory),
    windowsVcpuPerSecond: windows && perSecond(windows),
    effectiveSince: used
      .map((item) => item.effectiveStartDate?.slice(0, 10))
      .filter((date): date is string => Boolean(date))
      .sort()
      .at(-1),
  };
}

function perSecond(item: RetailPriceItem): number {
  const seconds = secondsPerUnit(item.unitOfMeasure);
  if (seconds === undefined) {
    throw new Error(`'${item.meterName}' is priced per '${item.unitOfMeasure}', which is not a duration`);
  }
  return item.retailPrice / seconds;
}

/** Why a container of this size cannot be priced at these rates (a Windows group without the Windows meter). */
export function unpriceable(rates: AciRates, size: BilledSize): string | undefined {
  if (size.osType === "Windows" && rates.windowsVcpuPerSecond === undefined) {
    return `the retail price list has no '${ACI_METERS.windows}' price for region '${rates.region}'`;
  }
  return undefined;
}

/** What one container of the given size costs per minute; check unpriceable first. */
export function perMinute(rates: AciRates, size: BilledSize): number {
  const windows = size.osType === "Windows" ? size.cpu * (rates.windowsVcpuPerSecond ?? 0) : 0;
  return 60 * (size.cpu * rates.vcpuPerSecond + size.memoryGB * rates.memoryGBPerSecond + windows);
}

/** What one container of the given size costs over a lifetime. */
export function costOver(rates: AciRates, size: BilledSize, lifetimeMs: number): number {
  return (perMinute(rates, size) * lifetimeMs) / 60_000;
}

/** The rates of a region, or why there are none; never throws. */
export async function ratesOf(prices: Prices, region: string): Promise<AciRates | { unknown: string }> {
  if ("unavailable" in prices) return { unknown: prices.unavailable };
  try {
    return aciRates(await prices.source.containerInstancesPrices(region), region);
  } catch (error) {
    return { unknown: errorMessage(error) };
  }
}

/** An amount with three significant digits below 1 and cents above, then the currency: "0.000823 USD". */
export function formatMoney(amount: number, currency: string): string {
  const figure = amount === 0 ? "0" : amount >= 1 ? amount.toFixed(2) : amount.toPrecision(3);
  return `${figure} ${currency}`;
}

export function describeSize(size: Omit<BilledSize, "region">): string {
  return `${size.cpu} vCPU, ${size.memoryGB} GB, ${size.osType}`;
}

/** Where a figure comes from, for the summary. */
export function describeRates(rates: AciRates): string {
  const since = rates.effectiveSince ? `, effective since ${rates.effectiveSince}` : "";
  return `Azure retail prices of Container Instances in ${rates.region}${since}; without discounts or taxes`;
}
