/** Where the core writes what it is doing; the task entry maps this onto the agent's log commands. */
export interface Log {
  info(message: string): void;
  warn(message: string): void;
  /** Prints lines inside a collapsible group of the pipeline log. */
  group(title: string, lines: string): void;
}

export function formatDuration(milliseconds: number): string {
  const seconds = milliseconds / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}
