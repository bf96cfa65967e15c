import { defaultMaxListeners, setMaxListeners } from "node:events";
import type { AgentKey } from "../core/agentCredential";
import { sleep, throwIfCancelled, type Clock } from "../core/timing";

/**
 * Everything one agent needs up to its container's creation request, as one sequence: in registration "token"
 * the creation alone; in "agentCredential" its key, its registration, then the creation. `signal` fires when the
 * start is cancelled or another agent's launch failed: a launch then begins no new request.
 */
export type LaunchAgent = (name: string, signal: AbortSignal) => Promise<void>;

/**
 * Runs one launch per agent, all at once, so that the first container is requested as soon as its own agent is
 * ready. The first failure (or the cancellation) stops the other launches from beginning new requests; every
 * launch has settled before it is thrown, so that nothing is created after the caller removes what was made.
 */
export async function launchEach(
  names: readonly string[],
  launch: LaunchAgent,
  signal: AbortSignal,
): Promise<void> {
  const stop = new AbortController();
  // Each launch waits on the signal at most once at a time (for a key or a creation slot).
  setMaxListeners(names.length + defaultMaxListeners, stop.signal);
  const onAbort = () => stop.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  let failure: { reason: unknown } | undefined;
  try {
    await Promise.allSettled(
      names.map(async (name) => {
        try {
          throwIfCancelled(stop.signal);
          await launch(name, stop.signal);
        } catch (reason) {
          failure ??= { reason };
          stop.abort();
        }
      }),
    );
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  if (failure) throw failure.reason;
}

/** Hands out creation slots at least `spacingMs` apart, first come first served. */
export class CreationPacer {
  private nextSlotAt: number | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly spacingMs: number,
  ) {}

  async slot(signal: AbortSignal): Promise<void> {
    throwIfCancelled(signal);
    const now = this.clock();
    const at = Math.max(now, this.nextSlotAt ?? now);
    this.nextSlotAt = at + this.spacingMs;
    if (at > now) await sleep(at - now, signal);
  }
}

/**
 * Runs at most `limit` jobs at a time, the others in the order they asked. A job whose turn comes after the
 * signal fired is not run.
 */
export class Turns {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(job: () => Promise<T>, signal: AbortSignal): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running += 1;
    try {
      throwIfCancelled(signal);
      return await job();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }
}

/**
 * One key per agent, made `atOnce` at a time in agent order from the moment the supply exists, so that keys are
 * being made while the pool and the provider are checked. After `stop`, no more keys are begun.
 */
export class KeySupply {
  private readonly stopped = new AbortController();
  private readonly keys: Map<string, Promise<AgentKey>>;

  constructor(names: readonly string[], make: () => Promise<AgentKey>, atOnce: number) {
    const turns = new Turns(atOnce);
    this.keys = new Map(
      names.map((name) => {
        const key = turns.run(make, this.stopped.signal);
        // A key nobody takes after a stop must not end the process as an unhandled rejection.
        key.catch(() => undefined);
        return [name, key];
      }),
    );
  }

  /** The agent's key; when `signal` fires first, the supply stops, and the key is awaited no longer than the keys being made. */
  async take(name: string, signal: AbortSignal): Promise<AgentKey> {
    const key = this.keys.get(name);
    if (!key) throw new Error(`No key is made for agent ${name}.`);
    const onAbort = () => this.stop();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const made = await key;
      throwIfCancelled(signal);
      return made;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  stop(): void {
    this.stopped.abort();
  }
}
