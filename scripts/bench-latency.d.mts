/** See bench-latency.mjs: per contender, each round's median latency in µs, measured side by side. */
export declare function interleavedLatencies(
  contenders: Record<string, () => Promise<unknown>>,
  size: { callers: number; rounds: number; ops: number; warmup: number },
): Promise<Map<string, number[]>>;

/** See bench-latency.mjs: one contender's best round against the baseline's, with the ratio spread. */
export declare function againstBaseline(
  samples: Map<string, number[]>,
  who: string,
  baseline: string,
): { value: number; baselineValue: number; ratio: number; ratioSpread: [number, number] };
