/**
 * The milestones of an agent's life, in the order they happen. One vocabulary for the teardown summary, the
 * demo's output and the benchmark's results.
 */
export const MILESTONES = [
  "requested",
  "running",
  "online",
  "job queued",
  "job started",
  "job ended",
  "removed",
] as const;

export type Milestone = (typeof MILESTONES)[number];

/** When each milestone happened; a milestone nobody saw is left out. */
export type Milestones = Partial<Record<Milestone, Date>>;

export interface TimelineEntry {
  milestone: Milestone;
  at: Date;
  /** Time since the agent was requested; undefined when that is not known. */
  sinceRequestedMs?: number;
}

/** The known milestones in the order of MILESTONES, each with its distance from the request. */
export function timelineOf(milestones: Milestones): TimelineEntry[] {
  const requested = milestones.requested?.getTime();
  return MILESTONES.flatMap((milestone) => {
    const at = milestones[milestone];
    if (!at) return [];
    return [
      { milestone, at, ...(requested === undefined ? {} : { sinceRequestedMs: at.getTime() - requested }) },
    ];
  });
}

/** "+0.8s", "+42.0s", "+3m05s": short enough for a table cell, exact enough to compare agents. */
export function formatOffset(ms: number): string {
  const sign = ms < 0 ? "-" : "+";
  const abs = Math.abs(ms);
  if (abs < 60_000) return `${sign}${(abs / 1000).toFixed(1)}s`;
  const seconds = Math.round(abs / 1000);
  return `${sign}${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
}

/** The time of day in UTC, to the second: "08:10:02". */
export function clockTime(at: Date): string {
  return at.toISOString().slice(11, 19);
}

function cellOf(entry: TimelineEntry | undefined): string {
  if (!entry) return "–";
  if (entry.milestone === "requested" || entry.sinceRequestedMs === undefined) return clockTime(entry.at);
  return formatOffset(entry.sinceRequestedMs);
}

/** One line: "requested 08:10:02 · running +1.2s · online +6.3s · ..."; milestones nobody saw are left out. */
export function timelineLine(milestones: Milestones): string {
  return timelineOf(milestones)
    .map((entry) => `${entry.milestone} ${cellOf(entry)}`)
    .join(" · ");
}

/**
 * A Markdown table, one row per agent and one column per milestone: the request as a UTC time of day, the others
 * as time since the request ("–" when not seen; UTC times of day when the request is not known).
 */
export function timelineTable(rows: readonly { name: string; milestones: Milestones }[]): string[] {
  return [
    `| Agent | ${MILESTONES.map((milestone) => (milestone === "requested" ? "requested (UTC)" : milestone)).join(" | ")} |`,
    `| --- |${" --- |".repeat(MILESTONES.length)}`,
    ...rows.map(({ name, milestones }) => {
      const entries = new Map(timelineOf(milestones).map((entry) => [entry.milestone, entry]));
      return `| ${name} | ${MILESTONES.map((milestone) => cellOf(entries.get(milestone))).join(" | ")} |`;
    }),
  ];
}

/**
 * When the agent started listening for jobs, from its log: the listener prints "{0:u}: Listening for Jobs" with the
 * UTC time (ListenForJobs in src/Misc/layoutbin/en-US/strings.json of microsoft/azure-pipelines-agent, written by
 * Agent.Listener/Agent.cs), such as "2026-12-05 08:10:09Z: Listening for Jobs". The first such line counts.
 */
export function listeningSince(log: string): Date | undefined {
  const match = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)Z: Listening for Jobs\s*$/m.exec(log);
  return match ? new Date(`${match[1]}T${match[2]}Z`) : undefined;
}
