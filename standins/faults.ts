import type { ContainerGroupBehaviour } from "./arm";
import { wait, type Interceptor, type Reply, type StandinRequest } from "./http-server";
import type { Standins } from "./index";

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

/** An interceptor that holds the first `times` matching requests for `delayMs`, then lets them pass. */
export function slowAnswer({
  match = () => true,
  times = 1,
  delayMs,
}: {
  match?: (request: StandinRequest) => boolean;
  times?: number;
  delayMs: number;
}): Interceptor {
  let remaining = times;
  return async (request) => {
    if (remaining <= 0 || !match(request)) return undefined;
    remaining -= 1;
    await wait(delayMs, request.signal);
    return undefined;
  };
}

export type Service = "arm" | "entra" | "devops";

/** What a failing request can meet: answered at once, dropped, or answered late. */
export type RequestFaultKind = "throttled" | "serverError" | "unavailable" | "reset" | "slow";
/** A container group whose long-running creation ends Failed (ARM only). */
export type FaultKind = RequestFaultKind | "provisioningFailed";

export const ALL_FAULT_KINDS: readonly FaultKind[] = [
  "throttled",
  "serverError",
  "unavailable",
  "reset",
  "slow",
  "provisioningFailed",
];

function vssBody(message: string, typeKey: string): Record<string, unknown> {
  return {
    $id: "1",
    innerException: null,
    message,
    typeName: `Microsoft.VisualStudio.Services.WebApi.${typeKey}, Microsoft.VisualStudio.Services.WebApi`,
    typeKey,
    errorCode: 0,
    eventId: 3000,
  };
}

function aadBody(error: string, code: number, message: string): Record<string, unknown> {
  return { error, error_description: `AADSTS${code}: ${message}`, error_codes: [code] };
}

/** The answer each service gives for a failure of that kind, in its own error format. */
export function faultReply(
  service: Service,
  kind: "throttled" | "serverError" | "unavailable",
  retryAfterSeconds = 1,
): Reply {
  const retryAfter = { "retry-after": String(retryAfterSeconds) };
  if (kind === "throttled") {
    if (service === "arm") return tooManyRequests(retryAfterSeconds);
    if (service === "devops") {
      return {
        status: 429,
        headers: { ...retryAfter, "x-ratelimit-resource": "ATCPU", "x-ratelimit-delay": "1" },
        body: vssBody("Request was blocked due to exceeding usage of resource 'ATCPU'.", "RequestBlocked"),
      };
    }
    return {
      status: 429,
      headers: retryAfter,
      body: aadBody(
        "temporarily_unavailable",
        50196,
        "The server terminated an operation because it encountered a client request loop.",
      ),
    };
  }
  const status = kind === "serverError" ? 500 : 503;
  const headers = kind === "unavailable" ? retryAfter : undefined;
  if (service === "arm") {
    const code = kind === "serverError" ? "InternalServerError" : "ServiceUnavailable";
    return {
      status,
      headers,
      body: { error: { code, message: `The stand-in injected a transient ${code}.` } },
    };
  }
  if (service === "devops") {
    return {
      status,
      headers,
      body: vssBody("The stand-in injected a transient failure.", "VssServiceException"),
    };
  }
  return {
    status,
    headers,
    body: aadBody("temporarily_unavailable", 90033, "A transient error has occurred. Please try again."),
  };
}

/** A small deterministic PRNG (mulberry32): the same seed gives the same sequence in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type FaultTally = Record<FaultKind, number>;

export function emptyTally(): FaultTally {
  return { throttled: 0, serverError: 0, unavailable: 0, reset: 0, slow: 0, provisioningFailed: 0 };
}

export interface RandomFaultOptions {
  seed: number;
  /** Share of requests (and of container creations) that meet a fault, 0..1. */
  rate: number;
  /** Kinds to draw from, evenly; default all. */
  kinds?: readonly FaultKind[];
  /** Whose error format the answers take; default "arm". */
  service?: Service;
  /** Retry-After of throttled and unavailable answers; default 1. */
  retryAfterSeconds?: number;
  /** Delay of a slow answer, drawn evenly from [min, max] ms; default [1000, 3000]. */
  slowMs?: readonly [number, number];
  /** Which requests may meet a fault; default all. */
  match?: (request: StandinRequest) => boolean;
}

/** An interceptor that also counts what it injected. */
export type CountingInterceptor = Interceptor & { readonly injected: FaultTally };

/**
 * Seeded random faults for one stand-in: each matching request meets a fault with probability `rate`, its kind
 * drawn evenly from the request kinds among `kinds` ("provisioningFailed" is a container group behaviour; see
 * randomProvisioningFailures). The same seed gives the same decisions for the same order of requests.
 */
export function randomFaults(options: RandomFaultOptions): CountingInterceptor {
  const random = mulberry32(options.seed);
  const kinds = (options.kinds ?? ALL_FAULT_KINDS).filter(
    (kind): kind is RequestFaultKind => kind !== "provisioningFailed",
  );
  const service = options.service ?? "arm";
  const [slowMin, slowMax] = options.slowMs ?? [1000, 3000];
  const injected = emptyTally();
  const interceptor = async (request: StandinRequest): Promise<Reply | "reset" | undefined> => {
    if (kinds.length === 0 || (options.match && !options.match(request))) return undefined;
    if (random() >= options.rate) return undefined;
    const kind = kinds[Math.floor(random() * kinds.length)];
    const delayMs = slowMin + random() * (slowMax - slowMin);
    injected[kind] += 1;
    if (kind === "reset") return "reset";
    if (kind === "slow") {
      await wait(delayMs, request.signal);
      return undefined;
    }
    return faultReply(service, kind, options.retryAfterSeconds);
  };
  return Object.assign(interceptor, { injected });
}

/**
 * A container group behaviour (put it first in `arm.behaviours`) under which each new group fails to provision
 * with probability `rate` divided by the number of kinds, when "provisioningFailed" is among them.
 */
export function randomProvisioningFailures(
  options: Pick<RandomFaultOptions, "seed" | "rate" | "kinds">,
  injected: FaultTally,
): ContainerGroupBehaviour {
  const random = mulberry32(options.seed);
  const kinds = options.kinds ?? ALL_FAULT_KINDS;
  const share = kinds.includes("provisioningFailed") ? options.rate / kinds.length : 0;
  return {
    match: () => {
      const fails = random() < share;
      if (fails) injected.provisioningFailed += 1;
      return fails;
    },
    provisioning: "fail",
    error: {
      code: "InjectedProvisioningFailure",
      message: "The stand-in failed this container group on purpose.",
    },
  };
}

export interface AttachedFaults {
  /** What was injected so far, per stand-in. */
  injected: Record<Service, FaultTally>;
  /** All stand-ins together. */
  total(): FaultTally;
  remove(): void;
}

const SERVICE_SEED_OFFSETS: Record<Service, number> = { entra: 0x1000, arm: 0x2000, devops: 0x3000 };

/** Attaches seeded random faults to Entra, ARM and DevOps (each with its own stream) and to ARM provisioning. */
export function attachRandomFaults(
  standins: Pick<Standins, "arm" | "entra" | "devops">,
  options: Omit<RandomFaultOptions, "service">,
): AttachedFaults {
  const injected = {} as Record<Service, FaultTally>;
  const removals: (() => void)[] = [];
  for (const service of ["entra", "arm", "devops"] as const) {
    const interceptor = randomFaults({
      ...options,
      service,
      seed: options.seed + SERVICE_SEED_OFFSETS[service],
    });
    injected[service] = interceptor.injected;
    removals.push(standins[service].intercept(interceptor));
  }
  const behaviour = randomProvisioningFailures({ ...options, seed: options.seed + 0x4000 }, injected.arm);
  standins.arm.behaviours.unshift(behaviour);
  removals.push(() => {
    const index = standins.arm.behaviours.indexOf(behaviour);
    if (index >= 0) standins.arm.behaviours.splice(index, 1);
  });
  return {
    injected,
    total() {
      const sum = emptyTally();
      for (const tally of Object.values(injected))
        for (const kind of ALL_FAULT_KINDS) sum[kind] += tally[kind];
      return sum;
    },
    remove: () => removals.forEach((remove) => remove()),
  };
}
