/** Where the core writes what it is doing; the task entry maps this onto the agent's log commands. */
export interface Log {
  info(message: string): void;
  warn(message: string): void;
  /** Prints lines inside a collapsible group of the pipeline log. */
  group(title: string, lines: string): void;
}

/** "12.3 s" below a minute, "2 min 5 s" from there on; rounded before it is split, so never "1 min 60 s". */
export function formatDuration(milliseconds: number): string {
  const tenthsOfSeconds = Math.round(milliseconds / 100);
  if (tenthsOfSeconds < 600) return `${(tenthsOfSeconds / 10).toFixed(1)} s`;
  const seconds = Math.round(milliseconds / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}
