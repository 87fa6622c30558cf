// Median latency of contenders measured side by side, shared by the adapter benches. `callers`
// loops run at once; each issues the contenders in turn, call by call, in its own rotating order,
// so load and noise fall on all of them alike (and with many callers each contender's calls
// overlap the others' as they would in an app). A round's figure per contender is its median
// latency in µs; a warm-up round is run first and not counted.

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * @param {Record<string, () => Promise<unknown>>} contenders
 * @param {{ callers: number, rounds: number, ops: number, warmup: number }} size
 * @returns {Promise<Map<string, number[]>>} per contender, each round's median latency in µs
 */
export async function interleavedLatencies(contenders, { callers, rounds, ops, warmup }) {
  const entries = Object.entries(contenders);
  const out = new Map(entries.map(([name]) => [name, []]));
  for (let round = -1; round < rounds; round++) {
    const samples = entries.map(() => []);
    const perCaller = Math.ceil((round < 0 ? warmup : ops) / callers);
    await Promise.all(
      Array.from({ length: callers }, async (_, caller) => {
        for (let i = 0; i < perCaller; i++) {
          for (let j = 0; j < entries.length; j++) {
            const k = (i + j + caller) % entries.length;
            const start = performance.now();
            await entries[k][1]();
            samples[k].push((performance.now() - start) * 1000);
          }
        }
      }),
    );
    if (round < 0) continue;
    for (const [k, [name]] of entries.entries()) out.get(name).push(median(samples[k]));
  }
  return out;
}

const round3 = (x) => Math.round(x * 1000) / 1000;

/**
 * One contender against a baseline, from `interleavedLatencies`' rounds: each side's best round,
 * their ratio, and the lowest and highest per-round ratio (the spread), ratios to 3 places.
 *
 * @param {Map<string, number[]>} samples
 * @param {string} who
 * @param {string} baseline
 */
export function againstBaseline(samples, who, baseline) {
  const base = samples.get(baseline) ?? [];
  const ours = samples.get(who) ?? [];
  const ratios = ours.map((v, i) => v / base[i]);
  const value = Math.min(...ours);
  const baselineValue = Math.min(...base);
  return {
    value,
    baselineValue,
    ratio: round3(value / baselineValue),
    ratioSpread: [round3(Math.min(...ratios)), round3(Math.max(...ratios))],
  };
}
