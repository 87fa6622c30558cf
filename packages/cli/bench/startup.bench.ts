/**
 * Start-up benchmark: `keyport encrypt` of 1 KiB with the local provider, from the built bin
 * (bin/keyport.mjs running the dist/keyport.mjs bundle, as installed), against a bare `node -e ''`
 * start — the same `node` binary, spawned the same way with the same environment, runs
 * alternating so load on the machine hits both alike. Goal: ≤ 1.5× the bare start.
 *
 * The keystore unlock (scrypt) is part of every local command and its cost is a property of the
 * keystore, so three rows:
 * - default keystore: scrypt N = 2^15, r = 8, p = 1 (what `keys create` makes; what a user has);
 * - minimum-cost keystore: scrypt N = 2^10, r = 8, p = 1 (the lowest the adapter accepts): the
 *   CLI's own start-up, nearly without the KDF;
 * - the same minimum-cost keystore with Node's compile cache off (NODE_DISABLE_COMPILE_CACHE=1):
 *   a first run after install or upgrade, before the bin has cached the bundle's compiled code.
 * The cached rows use a compile cache in the bench's temp dir (NODE_COMPILE_CACHE), filled by one
 * warm-up run, as a user's cache is after their first command.
 *
 * Writes bench-results/cli.json: `{ name, unit, value, baseline, baselineValue, ratio }` rows with
 * medians, plus the spread (p10/p90) of each side. KEYPORT_BENCH_RUNS (default 15) per side.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_FRAME_LENGTH } from '@keyport/envelope';
import { openLocalKeystore } from '@keyport/local';
import { expect, it } from 'vitest';
import { writeBenchResults } from '../../../scripts/bench-results.mjs';
import { BIN, buildCli } from './build-cli.js';

const RUNS = Number(process.env.KEYPORT_BENCH_RUNS ?? 15);
const PASSPHRASE = 'bench passphrase, not a secret';

const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
};

function timed(args: string[], cwd: string, env: NodeJS.ProcessEnv): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

it(`keyport encrypt 1 KiB (local) vs a bare node start, ${RUNS} runs each`, async () => {
  buildCli();

  const work = await mkdtemp(join(tmpdir(), 'keyport-bench-startup-'));
  const rows: Array<Record<string, unknown>> = [];
  try {
    await writeFile(join(work, 'kib'), Buffer.alloc(1024, 1));
    const cases = [
      { label: 'default keystore (scrypt N=2^15 r=8 p=1)', log2N: 15, cache: true },
      { label: 'minimum-cost keystore (scrypt N=2^10 r=8 p=1)', log2N: 10, cache: true },
      { label: 'minimum-cost keystore, compile cache off (first run)', log2N: 10, cache: false },
    ] as const;
    for (const [i, { label, log2N, cache }] of cases.entries()) {
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE,
        ...(cache
          ? { NODE_COMPILE_CACHE: join(work, `compile-cache-${i}`) }
          : { NODE_DISABLE_COMPILE_CACHE: '1' }),
      };
      const dir = join(work, `case-${i}`);
      await mkdir(dir);
      const p = await openLocalKeystore({
        path: join(dir, 'keys.kp'),
        passphrase: PASSPHRASE,
        create: true,
        kdf: { log2N, r: 8, p: 1 },
      });
      await p.createKey({ name: 'k', spec: 'AES_256' }, { signal: new AbortController().signal });
      await p.close?.();
      await writeFile(
        join(dir, 'keyport.config.json'),
        JSON.stringify({ providers: { local: { keystore: './keys.kp' } } }),
      );
      const uri = `local://${join(dir, 'keys.kp')}#k`;
      const cli = [
        '--no-warnings',
        BIN,
        'encrypt',
        join(work, 'kib'),
        '-o',
        join(dir, 'out.enc'),
        '--force',
        '-r',
        uri,
      ];
      timed(cli, dir, env); // warm the file cache (and the compile cache) once
      const bare: number[] = [];
      const ours: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        bare.push(timed(['-e', ''], dir, env));
        ours.push(timed(cli, dir, env));
      }
      const value = quantile(ours, 0.5);
      const baselineValue = quantile(bare, 0.5);
      rows.push({
        name: `keyport encrypt 1 KiB, local provider, ${label}: wall time (median of ${RUNS})`,
        unit: 'ms',
        value: round(value),
        baseline: "node -e '' (same node, spawned the same way, alternating)",
        baselineValue: round(baselineValue),
        ratio: round(value / baselineValue, 2),
        goal: 'ratio <= 1.5',
        // `keyport encrypt` seals one message with the defaults, one process at a time.
        concurrency: 1,
        suite: '0x0478',
        frameLength: DEFAULT_FRAME_LENGTH,
        spread: {
          keyport: { p10: round(quantile(ours, 0.1)), p90: round(quantile(ours, 0.9)) },
          bare: { p10: round(quantile(bare, 0.1)), p90: round(quantile(bare, 0.9)) },
        },
      });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  writeBenchResults('cli', rows);
  console.table(rows.map(({ spread: _s, ...r }) => r));
  expect(rows.every((r) => Number.isFinite(r.value as number))).toBe(true);
});
