/** Order statistics over a handful of samples; nearest-rank percentiles, since there are few samples. */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export function percentile(values: readonly number[], rank: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  if (rank === 50 && sorted.length % 2 === 0) {
    const upper = sorted.length / 2;
    return (sorted[upper - 1] + sorted[upper]) / 2;
  }
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((rank / 100) * sorted.length) - 1));
  return sorted[index];
}

export interface Summary {
  runs: number;
  medianMs: number;
  p95Ms: number;
  minMs: number;
  maxMs: number;
  samplesMs: number[];
}

export function summarise(samples: readonly number[]): Summary {
  const rounded = samples.map((sample) => Math.round(sample));
  return {
    runs: samples.length,
    medianMs: Math.round(median(samples)),
    p95Ms: Math.round(percentile(samples, 95)),
    minMs: Math.min(...rounded),
    maxMs: Math.max(...rounded),
    samplesMs: rounded,
  };
}

export function ratio(numerator: number, denominator: number): number {
  return Math.round((numerator / denominator) * 100) / 100;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
