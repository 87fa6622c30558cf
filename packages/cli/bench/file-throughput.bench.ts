/**
 * File throughput: `keyport encrypt` and `keyport decrypt` of one large file (256 MiB; 16 MiB
 * with KEYPORT_BENCH_QUICK=1) from the built bin, local provider, output to a file (temp, fsync,
 * rename, as the CLI always does), against a plain Node script doing the same file work in a
 * child spawned the same way with the same node: read 1 MiB at a time, AES-256-GCM per 1 MiB
 * frame in 64 KiB `update` slices (a fresh IV per frame; decrypt verifies each frame's tag before
 * writing it), one `writev` per frame, fsync, rename. The sides alternate; each figure is the
 * best of KEYPORT_BENCH_RUNS runs (default 5) with the slowest beside it, and each side's peak
 * RSS comes from the OS (VmHWM of the child's own image, scripts/peak-rss-hook.mjs). Writes
 * bench-results/cli-files.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_FRAME_LENGTH } from '@keyport/envelope';
import { openLocalKeystore } from '@keyport/local';
import { expect, it } from 'vitest';
import { writeBenchResults } from '../../../scripts/bench-results.mjs';
import { BIN, buildCli } from './build-cli.js';

/** Writes the child's own peak RSS (VmHWM) to $KEYPORT_PEAK_FILE at exit. */
const PEAK_HOOK = fileURLToPath(new URL('../../../scripts/peak-rss-hook.mjs', import.meta.url));
const QUICK = process.env.KEYPORT_BENCH_QUICK === '1';
const RUNS = Number(process.env.KEYPORT_BENCH_RUNS ?? (QUICK ? 1 : 5));
const MIB = 1024 * 1024;
const SIZE = (QUICK ? 16 : 256) * MIB;
const PASSPHRASE = 'bench passphrase, not a secret';

/** The plain script: `node plain.mjs seal|open <in> <out>`. */
const PLAIN = `
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import { open, rename } from 'node:fs/promises';
const [mode, input, output] = process.argv.slice(2);
const key = Buffer.alloc(32, 7);
const F = ${MIB};
const SLICE = 64 * 1024;
const src = await open(input, 'r');
const tmp = output + '.plain.tmp';
const dst = await open(tmp, 'wx', 0o600);
const frame = Buffer.allocUnsafe(mode === 'seal' ? F : 12 + F + 16);
for (;;) {
  const { bytesRead } = await src.read(frame, 0, frame.length, null);
  if (bytesRead === 0) break;
  const pieces = [];
  if (mode === 'seal') {
    const iv = randomFillSync(Buffer.allocUnsafe(12));
    const c = createCipheriv('aes-256-gcm', key, iv);
    pieces.push(iv);
    for (let i = 0; i < bytesRead; i += SLICE) pieces.push(c.update(frame.subarray(i, Math.min(bytesRead, i + SLICE))));
    c.final();
    pieces.push(c.getAuthTag());
  } else {
    const d = createDecipheriv('aes-256-gcm', key, frame.subarray(0, 12));
    d.setAuthTag(frame.subarray(bytesRead - 16, bytesRead));
    for (let i = 12; i < bytesRead - 16; i += SLICE) pieces.push(d.update(frame.subarray(i, Math.min(bytesRead - 16, i + SLICE))));
    d.final();
  }
  await dst.writev(pieces);
}
await dst.sync();
await dst.close();
await src.close();
await rename(tmp, output);
`;

const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;

it(`keyport encrypt / decrypt of a ${SIZE / MIB} MiB file vs a plain Node script, ${RUNS} runs each`, async () => {
  buildCli();
  const work = await mkdtemp(join(tmpdir(), 'keyport-bench-files-'));
  try {
    const keystore = join(work, 'keys.kp');
    const p = await openLocalKeystore({
      path: keystore,
      passphrase: PASSPHRASE,
      create: true,
      kdf: { log2N: 10, r: 8, p: 1 },
    });
    await p.createKey({ name: 'k', spec: 'AES_256' }, { signal: new AbortController().signal });
    await p.close?.();
    const uri = `local://${keystore}#k`;
    await writeFile(
      join(work, 'keyport.config.json'),
      JSON.stringify({ providers: { local: { keystore: './keys.kp' } } }),
    );
    await writeFile(join(work, 'plain.mjs'), PLAIN);
    const peakFile = join(work, 'peak.txt');
    const input = Buffer.allocUnsafe(SIZE);
    for (let i = 0; i < SIZE; i += 4) input.writeUInt32LE((i * 2654435761) >>> 0, i);
    await writeFile(join(work, 'in.bin'), input);
    const env = { PATH: process.env.PATH, KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE, KEYPORT_PEAK_FILE: peakFile };

    /** Wall ms and peak RSS MiB of one child run; `out` is removed first (both sides create it). */
    const run = async (args: string[], out: string) => {
      await rm(join(work, out), { force: true });
      const t = performance.now();
      const r = spawnSync(process.execPath, ['--import', PEAK_HOOK, ...args], {
        cwd: work,
        env,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const ms = performance.now() - t;
      if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
      return { ms, peakMiB: Number(await readFile(peakFile, 'utf8')) / 1024 };
    };
    const sides = {
      encrypt: {
        keyport: () => run([BIN, 'encrypt', 'in.bin', '-o', 'k.enc', '-r', uri, '--no-progress'], 'k.enc'),
        plain: () => run(['plain.mjs', 'seal', 'in.bin', 'p.enc'], 'p.enc'),
      },
      decrypt: {
        keyport: () => run([BIN, 'decrypt', 'k.enc', '-o', 'k.out', '-k', uri, '--no-progress'], 'k.out'),
        plain: () => run(['plain.mjs', 'open', 'p.enc', 'p.out'], 'p.out'),
      },
    };
    const rows: Array<Record<string, unknown>> = [];
    for (const [op, side] of Object.entries(sides)) {
      await side.keyport(); // warm the file cache and the compile cache
      await side.plain();
      const ours: Array<{ ms: number; peakMiB: number }> = [];
      const base: Array<{ ms: number; peakMiB: number }> = [];
      for (let i = 0; i < RUNS; i++) {
        if (i % 2 === 0) {
          ours.push(await side.keyport());
          base.push(await side.plain());
        } else {
          base.push(await side.plain());
          ours.push(await side.keyport());
        }
      }
      const best = (xs: typeof ours) => Math.min(...xs.map((x) => x.ms));
      const worst = (xs: typeof ours) => Math.max(...xs.map((x) => x.ms));
      const peak = (xs: typeof ours) => Math.max(...xs.map((x) => x.peakMiB));
      const common = {
        concurrency: 1,
        suite: '0x0478',
        frameLength: DEFAULT_FRAME_LENGTH,
        runs: RUNS,
        bytes: SIZE,
      };
      rows.push(
        {
          name: `keyport ${op} of a ${SIZE / MIB} MiB file to a file (local provider): wall time, best of ${RUNS}`,
          unit: 'ms',
          value: round(best(ours)),
          baseline: `plain Node script: 1 MiB reads, AES-256-GCM per 1 MiB frame, writev, fsync, rename (same node, spawned alike)`,
          baselineValue: round(best(base)),
          ratio: round(best(ours) / best(base), 3),
          spread: { slowest: round(worst(ours)), baselineSlowest: round(worst(base)) },
          mibPerSecond: round(SIZE / MIB / (best(ours) / 1000)),
          ...common,
        },
        {
          name: `keyport ${op} of a ${SIZE / MIB} MiB file: peak RSS (VmHWM, child process)`,
          unit: 'MiB',
          value: round(peak(ours)),
          baseline: 'the plain Node script above',
          baselineValue: round(peak(base)),
          ratio: round(peak(ours) / peak(base), 3),
          ...common,
        },
      );
    }
    expect((await readFile(join(work, 'k.out'))).equals(input)).toBe(true);
    expect((await readFile(join(work, 'p.out'))).equals(input)).toBe(true);
    writeBenchResults('cli-files', rows, QUICK);
    console.table(
      rows.map(({ name, value, baselineValue, ratio }) => ({ name, value, baselineValue, ratio })),
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
