// Small helpers the benchmarks share: reading `--name value` options and nearest-rank percentiles.

/** The value after `--name` in `args`, or undefined. */
export function option(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** A comma-separated list of positive numbers, e.g. `--sizes 50,200`. */
export function numberList(text: string): number[] {
  return text.split(',').map(Number).filter((n) => n > 0);
}

/** Nearest-rank percentile; NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}
