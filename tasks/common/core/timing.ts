/** The task was cancelled (SIGINT or SIGTERM from the agent). */
export class CancelledError extends Error {
  constructor() {
    super("The task was cancelled.");
    this.name = "CancelledError";
  }
}

export function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw new CancelledError();
}

/** Waits, ending early with a CancelledError when the signal fires. */
export function sleep(milliseconds: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new CancelledError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, milliseconds);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

export type Clock = () => number;

/**
 * How often the tasks poll by default. The start task asks the pool each second (one request for all agents)
 * and the containers every third round; teardown waits for jobs, so it can poll more slowly.
 */
export const DEFAULT_POLL_INTERVAL_MS = { start: 1000, teardown: 2000 } as const;

/** A point in time by which something must have happened. */
export class Deadline {
  private readonly end: number;

  constructor(
    private readonly clock: Clock,
    readonly budgetMs: number,
  ) {
    this.end = clock() + budgetMs;
  }

  get passed(): boolean {
    return this.clock() >= this.end;
  }

  get remainingMs(): number {
    return Math.max(0, this.end - this.clock());
  }

  /** The wait before the next polling round: the interval, cut short at the deadline. */
  nextWaitMs(intervalMs: number): number {
    return Math.min(intervalMs, this.remainingMs);
  }
}

/** How a wait polls: every interval, until the deadline. */
export interface PollTiming {
  deadline: Deadline;
  pollIntervalMs: number;
}

/** Records how long each named step took, in order. */
export class StepTimer {
  readonly steps: { name: string; ms: number }[] = [];
  private readonly start: number;

  constructor(private readonly clock: Clock) {
    this.start = clock();
  }

  async time<T>(name: string, step: () => Promise<T>): Promise<T> {
    const began = this.clock();
    try {
      return await step();
    } finally {
      this.steps.push({ name, ms: this.clock() - began });
    }
  }

  get elapsedMs(): number {
    return this.clock() - this.start;
  }
}
