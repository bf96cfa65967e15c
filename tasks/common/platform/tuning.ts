import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../core/retry";

export interface Tuning {
  pollIntervalMs: number;
  retryPolicy: RetryPolicy;
}

function positiveNumber(variable: string): number | undefined {
  const value = Number(process.env[variable]);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

/** Polling and retry timing; the environment may shorten it so that tests need not wait seconds per round. */
export function tuning(defaultPollIntervalMs: number): Tuning {
  const baseDelayMs = positiveNumber("EPHEMERAL_AGENT_RETRY_BASE_MS") ?? DEFAULT_RETRY_POLICY.baseDelayMs;
  return {
    pollIntervalMs: positiveNumber("EPHEMERAL_AGENT_POLL_INTERVAL_MS") ?? defaultPollIntervalMs,
    retryPolicy: { attempts: DEFAULT_RETRY_POLICY.attempts, baseDelayMs, maxDelayMs: baseDelayMs * 30 },
  };
}

/** How long a price lookup may take before the summary says "cost unknown". */
const RETAIL_PRICES_TIMEOUT_MS = 5000;

/** The Retail Prices API's address and timeout; the environment points tests at a stand-in. */
export function retailPricesTuning(): { url?: string; timeoutMs: number } {
  return {
    url: process.env.EPHEMERAL_AGENT_RETAIL_PRICES_URL || undefined,
    timeoutMs: positiveNumber("EPHEMERAL_AGENT_RETAIL_PRICES_TIMEOUT_MS") ?? RETAIL_PRICES_TIMEOUT_MS,
  };
}
