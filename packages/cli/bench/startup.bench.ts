/**
 * Start-up benchmark: `keyport encrypt` of 1 KiB with the local provider, from the built bin
 * (dist/, as installed), against a bare `node -e ''` start — the same `node` binary, spawned the
 * same way, runs alternating so load on the machine hits both alike. Goal: ≤ 1.5× the bare start.
 * Two keystores: one with the default scrypt cost (what a user has: the unlock is part of
 * every command) and one at the minimum cost (the CLI's own start-up alone).
 *
 * Writes bench-results/cli.json: `{ name, unit, value, baseline, baselineValue, ratio }` rows with
 * medians, plus the spread (p10/p90) of each side. KEYPORT_BENCH_RUNS (default 15) per side.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openLocalKeystore } from '@keyport/local';
import { expect, it } from 'vitest';
import { REPO_ROOT } from './targets.js';

const RUNS = Number(process.env.KEYPORT_BENCH_RUNS ?? 15);
const CLI_ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(CLI_ROOT, 'bin/keyport.mjs');
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
  // The bin runs dist/: build the CLI (its workspace dependencies are built by turbo's ^build).
  const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(CLI_ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });

  const work = await mkdtemp(join(tmpdir(), 'keyport-bench-startup-'));
  const rows: Array<Record<string, unknown>> = [];
  try {
    await writeFile(join(work, 'kib'), Buffer.alloc(1024, 1));
    const env = { PATH: process.env.PATH, KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE };
    for (const [label, log2N] of [
      ['default keystore (scrypt 2^15)', 15],
      ['minimum-cost keystore (scrypt 2^10)', 10],
    ] as const) {
      const dir = join(work, `n${log2N}`);
      await mkdir(dir);
      const p = await openLocalKeystore({
        path: join(dir, 'keys.kp'),
        passphrase: PASSPHRASE,
        create: true,
        kdf: { log2N },
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
      timed(cli, dir, env); // warm the file cache once
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
        spread: {
          keyport: { p10: round(quantile(ours, 0.1)), p90: round(quantile(ours, 0.9)) },
          bare: { p10: round(quantile(bare, 0.1)), p90: round(quantile(bare, 0.9)) },
        },
      });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  await mkdir(join(REPO_ROOT, 'bench-results'), { recursive: true });
  await writeFile(join(REPO_ROOT, 'bench-results/cli.json'), `${JSON.stringify(rows, null, 2)}\n`);
  console.table(rows.map(({ spread: _s, ...r }) => r));
  expect(rows.every((r) => Number.isFinite(r.value as number))).toBe(true);
});
