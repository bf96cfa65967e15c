import assert from "node:assert/strict";
import { isTransient, retryAfterMs, retryDelayMs, withRetries } from "../../tasks/common/core/retry";
import { CancelledError } from "../../tasks/common/core/timing";

const POLICY = { attempts: 4, baseDelayMs: 1, maxDelayMs: 20 };
const NEVER = new AbortController().signal;

function httpError(statusCode: number): Error {
  return Object.assign(new Error(`HTTP ${statusCode}`), { statusCode });
}

describe("retries", () => {
  it("treats throttling, server errors and dropped connections as transient", () => {
    for (const status of [408, 429, 500, 502, 503, 504])
      assert.equal(isTransient({ statusCode: status }), true, String(status));
    for (const status of [400, 401, 403, 404, 409])
      assert.equal(isTransient({ statusCode: status }), false, String(status));
    assert.equal(isTransient(Object.assign(new Error("read"), { code: "ECONNRESET" })), true);
    assert.equal(isTransient(new Error("socket hang up")), true);
    assert.equal(isTransient(new Error("fetch failed", { cause: { code: "ECONNREFUSED" } })), true);
    assert.equal(isTransient(new Error("Input 'count': bad")), false);
  });

  it("reads Retry-After in seconds or as a date", () => {
    assert.equal(retryAfterMs({ responseHeaders: { "retry-after": "3" } }), 3000);
    assert.equal(
      retryAfterMs({ responseHeaders: { "retry-after": new Date(10_000).toUTCString() } }, 4_000),
      6000,
    );
    assert.equal(retryAfterMs({}), undefined);
  });

  it("waits what the server asks, capped, or backs off exponentially with jitter", () => {
    const policy = { attempts: 5, baseDelayMs: 1000, maxDelayMs: 30_000 };
    assert.equal(retryDelayMs(policy, 1, { responseHeaders: { "retry-after": "7" } }), 7000);
    assert.equal(
      retryDelayMs(policy, 1, { responseHeaders: { "retry-after": "45" } }),
      45_000,
      "beyond the backoff cap",
    );
    assert.equal(retryDelayMs(policy, 1, { responseHeaders: { "retry-after": "600" } }), 60_000);
    assert.equal(
      retryDelayMs(policy, 1, {}, () => 1),
      1000,
    );
    assert.equal(
      retryDelayMs(policy, 3, {}, () => 0),
      2000,
    );
    assert.equal(
      retryDelayMs(policy, 10, {}, () => 1),
      30_000,
    );
  });

  it("retries transient failures up to the attempt limit, then gives up with the last error", async () => {
    let calls = 0;
    const result = await withRetries(
      () => {
        calls++;
        return calls < 3 ? Promise.reject(httpError(503)) : Promise.resolve("ok");
      },
      POLICY,
      NEVER,
    );
    assert.equal(result, "ok");
    assert.equal(calls, 3);

    calls = 0;
    await assert.rejects(
      withRetries(
        () => {
          calls++;
          return Promise.reject(httpError(500));
        },
        POLICY,
        NEVER,
      ),
      { statusCode: 500 },
    );
    assert.equal(calls, 4);
  });

  it("stops waiting for the next try when the task is cancelled", async () => {
    const controller = new AbortController();
    let calls = 0;
    const retrying = withRetries(
      () => {
        calls++;
        if (calls === 1) setImmediate(() => controller.abort());
        return Promise.reject(Object.assign(httpError(429), { responseHeaders: { "retry-after": "3600" } }));
      },
      POLICY,
      controller.signal,
    );
    await assert.rejects(retrying, CancelledError);
    assert.equal(calls, 1);
  });

  it("does not retry failures that would fail again", async () => {
    let calls = 0;
    await assert.rejects(
      withRetries(
        () => {
          calls++;
          return Promise.reject(httpError(403));
        },
        POLICY,
        NEVER,
      ),
      { statusCode: 403 },
    );
    assert.equal(calls, 1);
  });
});
