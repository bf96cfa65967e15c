/**
 * The Azure Retail Prices API (Microsoft Learn, "Azure Retail Prices overview"): public, no sign-in. GET
 * https://prices.azure.com/api/retail/prices?$filter=... answers { Items, NextPageLink, Count, BillingCurrency };
 * a page holds up to 100 items and NextPageLink (null on the last page) is the next page's full URL.
 */
import {
  createDefaultHttpClient,
  createPipelineFromOptions,
  createPipelineRequest,
  type HttpClient,
  type Pipeline,
} from "@azure/core-rest-pipeline";
import type { PriceSource, RetailPriceItem } from "../core/cost";
import { errorMessage } from "../core/errors";
import { azurePipelineOptions, type AgentHttpSettings } from "./entra";

export const RETAIL_PRICES_URL = "https://prices.azure.com/api/retail/prices";

export interface RetailPricesOptions {
  /** The API's URL; RETAIL_PRICES_URL unless a test points elsewhere. */
  url?: string;
  /** How long one lookup (all its pages) may take before the cost is reported unknown. */
  timeoutMs: number;
  /** The agent's proxy and certificates. */
  agentHttp?: AgentHttpSettings;
  signal: AbortSignal;
}

/** A region's list of a few dozen meters fits one page; more pages than this mean the filter was not applied. */
const MAX_PAGES = 5;

interface RetailPricesPage {
  Items?: RetailPriceItem[];
  NextPageLink?: string | null;
}

/** Reads the Container Instances prices of a region, once per region and task run. */
export class RetailPrices implements PriceSource {
  private readonly url: string;
  private readonly pipeline: Pipeline;
  private readonly httpClient: HttpClient = createDefaultHttpClient();
  private readonly cache = new Map<string, Promise<RetailPriceItem[]>>();

  constructor(private readonly options: RetailPricesOptions) {
    this.url = options.url ?? RETAIL_PRICES_URL;
    // No retries: a price is worth a few seconds at most, and the summary says when it could not be had.
    this.pipeline = createPipelineFromOptions({
      retryOptions: { maxRetries: 0 },
      ...azurePipelineOptions(options.agentHttp, this.url),
    });
  }

  containerInstancesPrices(region: string): Promise<RetailPriceItem[]> {
    const armRegionName = region.toLowerCase().replace(/\s+/g, "");
    let prices = this.cache.get(armRegionName);
    if (!prices) {
      prices = this.readAll(armRegionName);
      this.cache.set(armRegionName, prices);
    }
    return prices;
  }

  private async readAll(armRegionName: string): Promise<RetailPriceItem[]> {
    const signal = AbortSignal.any([this.options.signal, AbortSignal.timeout(this.options.timeoutMs)]);
    const first = new URL(this.url);
    first.searchParams.set(
      "$filter",
      `serviceName eq 'Container Instances' and armRegionName eq '${armRegionName}' and priceType eq 'Consumption'`,
    );
    const items: RetailPriceItem[] = [];
    let next: string | null | undefined = first.toString();
    for (let page = 0; next && page < MAX_PAGES; page++) {
      const answer = await this.readPage(next, signal);
      items.push(...(answer.Items ?? []));
      next = answer.NextPageLink;
    }
    return items;
  }

  private async readPage(url: string, signal: AbortSignal): Promise<RetailPricesPage> {
    const request = createPipelineRequest({ url, method: "GET", abortSignal: signal });
    request.headers.set("accept", "application/json");
    let status: number;
    let body: string | undefined;
    try {
      const response = await this.pipeline.sendRequest(this.httpClient, request);
      status = response.status;
      body = response.bodyAsText ?? undefined;
    } catch (error) {
      if (signal.aborted && !this.options.signal.aborted) {
        throw new Error(
          `the Azure Retail Prices API (${new URL(url).host}) did not answer within ${this.options.timeoutMs / 1000} s`,
        );
      }
      throw new Error(
        `the Azure Retail Prices API (${new URL(url).host}) could not be reached: ${errorMessage(error)}`,
      );
    }
    if (status !== 200) throw new Error(`the Azure Retail Prices API answered ${status}`);
    try {
      return JSON.parse(body ?? "") as RetailPricesPage;
    } catch {
      throw new Error("the Azure Retail Prices API answered something other than JSON");
    }
  }
}
