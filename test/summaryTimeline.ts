// Reads the timeline table of a teardown summary back, as a user reads the summary tab.
import assert from "node:assert/strict";

/** The summary's timeline table read back: agent name -> milestone -> cell. */
export function timelineRows(summary: string): Map<string, Record<string, string>> {
  const afterHeading = summary.slice(summary.indexOf("**Timeline**")).split("\n");
  const tableStart = afterHeading.findIndex((line) => line.startsWith("|"));
  const tableEnd = afterHeading.findIndex((line, i) => i > tableStart && !line.startsWith("|"));
  // The table ends at its first other line: a cost table may follow.
  const lines = afterHeading.slice(tableStart, tableEnd < 0 ? undefined : tableEnd);
  const cells = (line: string) =>
    line
      .split("|")
      .slice(1, -1)
      .map((cell) => cell.trim());
  const [, ...milestones] = cells(lines[0]).map((heading) => heading.replace(" (UTC)", ""));
  return new Map(
    lines.slice(2).map((line) => {
      const [name, ...values] = cells(line);
      return [name, Object.fromEntries(milestones.map((milestone, i) => [milestone, values[i]]))];
    }),
  );
}

/** "+6.3s" or "+3m05s" in ms; fails on anything else, such as "–". */
export function offsetMs(cell: string | undefined): number {
  const match = /^\+(?:(\d+)m(\d\d)s|(\d+\.\d)s)$/.exec(cell ?? "");
  assert.ok(match, `not an offset: ${cell}`);
  return match[3] !== undefined ? Number(match[3]) * 1000 : (Number(match[1]) * 60 + Number(match[2])) * 1000;
}
