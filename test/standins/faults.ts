import type { Interceptor, Reply, StandinRequest } from "./http-server";

export interface Fault {
  /** Which requests the fault hits; default every request. */
  match?: (request: StandinRequest) => boolean;
  /** How many matching requests fail before the fault wears off; default 1. */
  times?: number;
  /** The answer instead of the real one; "reset" drops the connection. */
  reply: Reply | "reset";
}

/** An interceptor for `standin.intercept()` that answers the first `times` matching requests with `reply`. */
export function fault({ match = () => true, times = 1, reply }: Fault): Interceptor {
  let remaining = times;
  return (request) => {
    if (remaining <= 0 || !match(request)) return undefined;
    remaining -= 1;
    return reply;
  };
}

/** ARM's throttling answer: 429 with Retry-After. */
export function tooManyRequests(retryAfterSeconds = 1): Reply {
  return {
    status: 429,
    headers: { "retry-after": String(retryAfterSeconds) },
    body: {
      error: {
        code: "TooManyRequests",
        message: "The request is being throttled as the limit has been reached for operation type.",
      },
    },
  };
}
