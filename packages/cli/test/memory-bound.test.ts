/**
 * encrypt, decrypt, rewrap and migrate stream: a command's peak memory does not grow with the file. Run
 * through the real bin in a child process (the bin installs the Ctrl-C signal every read and
 * write is tied to), peak RSS read from the OS (VmHWM, scripts/peak-rss-hook.mjs), 192 MiB
 * against 1 KiB. The reads and writes once raced each chunk against one abort promise kept for
 * the whole command, which kept every chunk: peak RSS grew by twice the file.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, HOOKS, localWorkspace, PASSPHRASE, runCli } from './support/cli.js';

/** Writes the child's own peak RSS (VmHWM) to $KEYPORT_PEAK_FILE at exit. */
const PEAK_HOOK = fileURLToPath(new URL('../../../scripts/peak-rss-hook.mjs', import.meta.url));
const BIG = 192 * 1024 * 1024;
/**
 * Peak growth allowed over the 1 KiB run: frames in flight, write batches, and the garbage V8
 * lets pile up before it collects (measured 60-95 MiB here, whatever the file's size: a 1 GiB
 * encrypt peaks no higher). Two thirds of the file: keeping even one copy of it fails.
 */
const ALLOWED_GROWTH_MIB = 128;

let ws: Awaited<ReturnType<typeof localWorkspace>>;
let key: string;
let key2: string;

beforeAll(async () => {
  ws = await localWorkspace();
  for (const name of ['k', 'k2']) {
    expect((await runCli(['keys', 'create', name], { cwd: ws.dir })).code).toBe(0);
  }
  key = ws.uri('k');
  key2 = ws.uri('k2');
  await writeFile(join(ws.dir, 'small.bin'), Buffer.alloc(1024, 3));
  const big = Buffer.allocUnsafe(BIG);
  for (let i = 0; i < BIG; i += 4096) big.writeUInt32LE(i, i);
  await writeFile(join(ws.dir, 'big.bin'), big);
});

// Nearly 1 GiB of files: not left in the temp directory.
afterAll(async () => {
  if (ws !== undefined) await rm(ws.dir, { recursive: true, force: true });
});

/** Runs the bin; returns its peak RSS in MiB. */
async function peakMiB(args: string[]): Promise<number> {
  const peakFile = join(ws.dir, 'peak.txt');
  const r = spawnSync(process.execPath, ['--import', HOOKS, '--import', PEAK_HOOK, BIN, ...args], {
    cwd: ws.dir,
    env: {
      PATH: process.env.PATH,
      KEYPORT_CLI_FROM_SOURCE: '1',
      KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE,
      KEYPORT_PEAK_FILE: peakFile,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 120_000,
  });
  expect(r.status, r.stderr.toString()).toBe(0);
  const kib = Number(await readFile(peakFile, 'utf8'));
  await rm(peakFile);
  return kib / 1024;
}

describe('peak memory does not grow with the file', () => {
  it('encrypt, decrypt, rewrap and migrate of 192 MiB peak within 128 MiB of the same command on 1 KiB', async () => {
    const commands = (name: string) => [
      ['encrypt', `${name}.bin`, '-o', `${name}.enc`, '-r', key, '--no-progress'],
      ['decrypt', `${name}.enc`, '-o', `${name}.out`, '-k', key, '--no-progress'],
      ['rewrap', `${name}.enc`, '-o', `${name}.re`, '-k', key, '--add', key2, '--no-progress'],
    ];
    const small = commands('small');
    const big = commands('big');
    for (let i = 0; i < small.length; i++) {
      const base = await peakMiB(small[i] as string[]);
      const peak = await peakMiB(big[i] as string[]);
      expect(
        peak - base,
        `${(big[i] as string[])[0]}: ${base.toFixed(0)} MiB on 1 KiB, ${peak.toFixed(0)} MiB on 192 MiB`,
      ).toBeLessThan(ALLOWED_GROWTH_MIB);
    }
    expect((await readFile(join(ws.dir, 'big.out'))).equals(await readFile(join(ws.dir, 'big.bin')))).toBe(
      true,
    );
    // migrate: the run's signal outlives every file, so a chunk kept by it stayed to the end.
    for (const name of ['small', 'big']) {
      await mkdir(join(ws.dir, `mig-${name}`));
      await rename(join(ws.dir, `${name}.enc`), join(ws.dir, `mig-${name}`, 'a.enc'));
    }
    const migrate = (name: string) => [
      'migrate',
      `mig-${name}`,
      '--from',
      key,
      '--to',
      key2,
      '--journal',
      `${name}.journal`,
      '--no-progress',
    ];
    const base = await peakMiB(migrate('small'));
    const peak = await peakMiB(migrate('big'));
    // Migrated, not skipped: --to alone opens it.
    await peakMiB(['decrypt', 'mig-big/a.enc', '-o', 'mig.out', '-k', key2, '--no-progress']);
    expect((await readFile(join(ws.dir, 'mig.out'))).equals(await readFile(join(ws.dir, 'big.bin')))).toBe(
      true,
    );
    expect(
      peak - base,
      `migrate: ${base.toFixed(0)} MiB on 1 KiB, ${peak.toFixed(0)} MiB on 192 MiB`,
    ).toBeLessThan(ALLOWED_GROWTH_MIB);
  }, 300_000);
});
