import type { Log } from "../core/log";

/** Fires when the agent cancels the task (SIGINT, then SIGTERM). */
export function cancellationSignal(log: Log): AbortSignal {
  const controller = new AbortController();
  const cancel = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    log.warn(`Received ${signal}: cancelling and removing what this task created.`);
    controller.abort();
  };
  process.on("SIGINT", cancel);
  process.on("SIGTERM", cancel);
  return controller.signal;
}
