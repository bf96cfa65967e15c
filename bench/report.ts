import { DEFAULT_POLL_INTERVAL_MS } from "../tasks/common/core/timing";
import type { ColdStart, DetectionLag, Overhead, PlatformLatency, ScalePoint } from "./measurements";
import { seconds, type Summary } from "./stats";
import type { VsixSize } from "./vsix";

export interface BenchResults {
  date: string;
  node: string;
  platform: string;
  cpus: number;
  mode: "full" | "quick";
  durationSeconds?: number;
  coldStart: ColdStart;
  detectionLag: DetectionLag[];
  scale: { latency: PlatformLatency; pollIntervalMs: number; runsPerCount: number; points: ScalePoint[] };
  overhead: Overhead;
  vsix: VsixSize;
}

const START_OVERHEAD_TARGET_MS = 1000;
const SCALE_RATIO_TARGET = 1.3;
/** Request rates count as bounded when the rate for the largest N is within this factor of the next smaller N. */
const BOUNDED_RATE_FACTOR = 1.25;

type Row = [figure: string, value: string, runs: string, target: string];

function spread(summary: Summary): string {
  return `median ${seconds(summary.medianMs)} (min ${seconds(summary.minMs)}, max ${seconds(summary.maxMs)})`;
}

function verdict(met: boolean): string {
  return met ? "met" : "MISSED";
}

function intervalName(lag: DetectionLag): string {
  return lag.pollIntervalMs === undefined
    ? `default ${DEFAULT_POLL_INTERVAL_MS.start} ms poll`
    : `${lag.pollIntervalMs} ms poll`;
}

function rows(results: BenchResults): Row[] {
  const { coldStart, scale, overhead, vsix } = results;
  const table: Row[] = [
    [
      "1. Cold start, bundle (spawn → first request)",
      spread(coldStart.bundle),
      `${coldStart.bundle.runs}`,
      "—",
    ],
    ["1. Cold start, sources via tsx", spread(coldStart.sources), `${coldStart.sources.runs}`, "—"],
    ["1. Cold start ratio sources / bundle", `${coldStart.ratio}×`, "medians", "—"],
  ];
  for (const lag of results.detectionLag) {
    table.push([
      `2. Detection lag, ${intervalName(lag)} (online → exit)`,
      `median ${seconds(lag.lag.medianMs)}, p95 ${seconds(lag.lag.p95Ms)} (max ${seconds(lag.lag.maxMs)})`,
      `${lag.lag.runs}`,
      "—",
    ]);
  }
  const counts = scale.points.map((point) => point.count).join(" / ");
  const devops = scale.points.map((point) => point.devopsRequestsPerMinute);
  const arm = scale.points.map((point) => point.armRequestsPerMinute);
  const bounded = (rates: number[]) =>
    rates.length < 2 || rates[rates.length - 1] <= rates[rates.length - 2] * BOUNDED_RATE_FACTOR;
  const lastTwo = scale.points
    .slice(-2)
    .map((point) => point.count)
    .join(" vs ");
  table.push(
    [
      `3. DevOps requests/min while waiting, N = ${counts}`,
      devops.join(" / "),
      `${scale.runsPerCount} each`,
      `no growth ${lastTwo}: ${verdict(bounded(devops))}`,
    ],
    [
      `3. ARM requests/min while waiting, N = ${counts}`,
      arm.join(" / "),
      `${scale.runsPerCount} each`,
      `no growth ${lastTwo}: ${verdict(bounded(arm))}`,
    ],
  );
  const largest = scale.points[scale.points.length - 1];
  const throttled = scale.points.reduce((sum, point) => sum + point.throttled, 0);
  for (const point of scale.points) {
    const target =
      point === largest ? `≤ ${SCALE_RATIO_TARGET}: ${verdict(point.ratioToOne <= SCALE_RATIO_TARGET)}` : "—";
    table.push([
      `4. Time to ${point.count} agent(s) online (task total)`,
      `median ${seconds(point.total.medianMs)}, ratio to N = 1: ${point.ratioToOne}`,
      `${point.total.runs}`,
      target,
    ]);
  }
  table.push(
    [
      `4. Time to the first container creation request, N = ${counts}`,
      scale.points.map((point) => seconds(point.firstCreation.medianMs)).join(" / "),
      `${scale.runsPerCount} each`,
      "—",
    ],
    [
      `4. Time to the last container creation request, N = ${counts}`,
      scale.points.map((point) => seconds(point.lastCreation.medianMs)).join(" / "),
      `${scale.runsPerCount} each`,
      "—",
    ],
  );
  table.push([
    "4. HTTP 429 answers during the scale runs",
    `${throttled}`,
    "all",
    `0: ${verdict(throttled === 0)}`,
  ]);
  const start = overhead.start;
  table.push([
    `5. Start overhead, N = 1 (total − platform latency, ${overhead.pollIntervalMs} ms poll)`,
    `${spread(start.overhead)}; of it startup ${seconds(start.startup.medianMs)}, checks ${seconds(start.checks.medianMs)}, online → exit ${seconds(start.finish.medianMs)}`,
    `${start.overhead.runs}`,
    `< 1 s: ${verdict(start.overhead.medianMs < START_OVERHEAD_TARGET_MS)}`,
  ]);
  for (const lag of results.detectionLag) {
    table.push([
      `5. Start overhead, N = 1, ${intervalName(lag)}`,
      spread(lag.overhead),
      `${lag.overhead.runs}`,
      `< 1 s: ${verdict(lag.overhead.medianMs < START_OVERHEAD_TARGET_MS)}`,
    ]);
  }
  table.push(
    [
      "5. Teardown overhead, 1 idle agent, gracePeriodSeconds 0, default timing",
      `${spread(overhead.teardown.overhead)}; of it startup ${seconds(overhead.teardown.startup.medianMs)}`,
      `${overhead.teardown.overhead.runs}`,
      `< 1 s: ${verdict(overhead.teardown.overhead.medianMs < START_OVERHEAD_TARGET_MS)}`,
    ],
    ["6. .vsix size", `${(vsix.bytes / 1024).toFixed(0)} KiB (${vsix.bytes} bytes, ${vsix.file})`, "1", "—"],
  );
  return table;
}

/** A Markdown table, so that docs/performance.md can quote it as printed. */
export function table(results: BenchResults): string {
  const header: Row = ["Figure", "Value", "Runs", "Target"];
  const all = [header, ...rows(results)];
  const widths = header.map((_, column) => Math.max(...all.map((row) => row[column].length)));
  const line = (row: Row) => `| ${row.map((cell, column) => cell.padEnd(widths[column])).join(" | ")} |`;
  return [
    line(header),
    `| ${widths.map((width) => "-".repeat(width)).join(" | ")} |`,
    ...rows(results).map(line),
  ].join("\n");
}

export function conditions(results: BenchResults): string {
  const { scale, overhead } = results;
  return [
    `Node ${results.node}, ${results.platform}, ${results.cpus} CPUs, ${results.mode} mode, ${results.date}.`,
    `Scale and request-rate runs: provisioning ${seconds(scale.latency.provisioningMs)} + registration ${seconds(scale.latency.registrationMs)} simulated, default poll interval (${scale.pollIntervalMs} ms).`,
    `Overhead runs: provisioning ${seconds(overhead.latency.provisioningMs)} + registration ${seconds(overhead.latency.registrationMs)} simulated; ARM deletes at once.`,
  ].join("\n");
}
