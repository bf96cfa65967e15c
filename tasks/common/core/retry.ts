import { httpStatusOf } from "./errors";
import { sleep } from "./timing";

/** How often and how patiently a transient failure is retried. */
export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 5, baseDelayMs: 1000, maxDelayMs: 30_000 };
/** The longest Retry-After honoured: a server that asks for more is not waited for within one task. */
const MAX_RETRY_AFTER_MS = 60_000;

const TRANSIENT_STATUSES = [408, 429, 500, 502, 503, 504];
const TRANSIENT_CODES = [
  "ECONNRESET",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "ECONNREFUSED",
  "EPIPE",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
];

/** A failure that may pass if the same request is sent again. */
export function isTransient(error: unknown): boolean {
  const status = httpStatusOf(error);
  if (status !== undefined) return TRANSIENT_STATUSES.includes(status);
  let current: unknown = error;
  for (let depth = 0; current && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && TRANSIENT_CODES.includes(code)) return true;
    if (/socket hang up|network error|fetch failed/i.test((current as { message?: string }).message ?? ""))
      return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** The wait a server asked for with Retry-After (seconds or an HTTP date), if any. */
export function retryAfterMs(error: unknown, now: number = Date.now()): number | undefined {
  const headers = (error as { responseHeaders?: Record<string, string | string[] | undefined> })
    .responseHeaders;
  const raw = headers?.["retry-after"];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The wait before retry number `retry` (1 for the first): exponential with jitter, or what the server asked for. */
export function retryDelayMs(
  policy: RetryPolicy,
  retry: number,
  error: unknown,
  random: () => number = Math.random,
): number {
  const asked = retryAfterMs(error);
  if (asked !== undefined) return Math.min(asked, MAX_RETRY_AFTER_MS);
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return exponential / 2 + (random() * exponential) / 2;
}

/**
 * Runs the operation, retrying transient failures within the policy; other failures are thrown at once. A wait
 * between tries ends with a CancelledError when the signal fires.
 */
export async function withRetries<T>(
  operation: () => Promise<T>,
  policy: RetryPolicy,
  signal: AbortSignal,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (attempt >= policy.attempts || !isTransient(error)) throw error;
      await sleep(retryDelayMs(policy, attempt, error), signal);
    }
  }
}
