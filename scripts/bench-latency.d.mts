/** See bench-latency.mjs: per contender, each round's median latency in µs, measured side by side. */
export declare function interleavedLatencies(
  contenders: Record<string, () => Promise<unknown>>,
  size: { callers: number; rounds: number; ops: number; warmup: number },
): Promise<Map<string, number[]>>;
