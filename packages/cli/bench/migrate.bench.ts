/**
 * Migration benchmark: wall time per file for many small envelopes, against a baseline run in
 * the same process on the same providers and the same envelopes.
 *
 * (a) local -> OpenBao, Vault `batch_input` on, against the same files with it off.
 * (b) AWS KMS (moto) -> local, against the bare provider calls a migration cannot avoid: one
 *     unwrap under --from (AWS decrypt) and one wrap under --to (local encrypt) per data key,
 *     through the same `Keyport` client at the same concurrency, with no files, journal, fsync or
 *     verification. The ratio is keyport's time per file over the bare time per file (goal
 *     <= 1.2); the migration's verification (each new file opened with --to alone) is included.
 *
 * Each side runs KEYPORT_MIGRATE_BENCH_RUNS times (default 3), alternating which goes first; every
 * migration starts from a fresh copy of the same sealed files and its time is the whole run
 * (lock, probe, walk, journal). Reported: the best run of each side, the spread of the runs
 * ((max - min) / min), the run count and the Node version. Writes bench-results/migrate.json at
 * the repository root as a list of `{ name, unit, value, baseline, baselineValue, ratio, ... }`.
 *
 * KEYPORT_BENCH_FILES (default 10000; 200 with KEYPORT_BENCH_QUICK=1, which `pnpm bench --quick`
 * sets, and one run per side) sets how many envelopes each section migrates per run.
 * KEYPORT_MIGRATE_BENCH_ONLY=openbao or =aws runs one section; its rows then go to
 * bench-results/migrate-<section>.json, leaving migrate.json (both sections) as it was.
 *
 * Besides best-of-N, the AWS section records each alternating pair's ratio (migration run i over
 * bare run i, measured back to back): their min and max are the ratio's spread.
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AwsKmsProvider } from '@keyport/aws-kms';
import { type EncryptionContext, Keyport } from '@keyport/core';
import { DEFAULT_FRAME_LENGTH, sealEnvelope } from '@keyport/envelope';
import { openLocalKeystore } from '@keyport/local';
import { VaultTransitProvider } from '@keyport/vault-transit';
import { expect, it } from 'vitest';
import { writeBenchResults } from '../../../scripts/bench-results.mjs';
import { type MigrateSummary, migrateFiles } from '../src/index.js';
import { peekMessage } from '../src/migrate/header-peek.js';
import { forEachBounded } from '../src/migrate/pool.js';
import { benchTargets } from './targets.js';

const QUICK = process.env.KEYPORT_BENCH_QUICK === '1';
const FILES = Number(process.env.KEYPORT_BENCH_FILES ?? (QUICK ? 200 : 10_000));
const RUNS = Math.max(1, Number(process.env.KEYPORT_MIGRATE_BENCH_RUNS ?? (QUICK ? 1 : 3)));
const ONLY = process.env.KEYPORT_MIGRATE_BENCH_ONLY;
if (ONLY !== undefined && ONLY !== 'openbao' && ONLY !== 'aws') {
  throw new Error(`KEYPORT_MIGRATE_BENCH_ONLY: expected openbao or aws, got ${ONLY}`);
}
const RESULTS_NAME = ONLY === undefined ? 'migrate' : `migrate-${ONLY}`;
const JOBS = 64;
const PASSPHRASE = 'bench passphrase, not a secret';

interface Result {
  name: string;
  unit: string;
  value: number;
  baseline: string;
  baselineValue: number;
  ratio: number;
  [extra: string]: unknown;
}

const round = (n: number, d = 3): number => Math.round(n * 10 ** d) / 10 ** d;
const row = (
  name: string,
  unit: string,
  value: number,
  baseline: string,
  baselineValue: number,
  extra: Record<string, unknown> = {},
): Result => ({
  name,
  unit,
  value: round(value),
  baseline,
  baselineValue: round(baselineValue),
  ratio: round(baselineValue === 0 ? 0 : value / baselineValue),
  ...extra,
});
/** (max - min) / min of a list of timings: how much the runs disagreed. */
const spread = (xs: readonly number[]): number =>
  round((Math.max(...xs) - Math.min(...xs)) / Math.min(...xs));

const contextOf = (i: number): EncryptionContext => ({ app: 'bench', n: String(i) });

/** FILES small envelopes (200-1,000 bytes) under `recipient`, JOBS sealed at a time. */
async function sealMany(keys: Keyport, recipient: string, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const paths = Array.from({ length: FILES }, (_, i) => join(dir, `m${String(i).padStart(6, '0')}.enc`));
  await forEachBounded(
    paths.map((p, i) => [p, i] as const),
    JOBS,
    async ([path, i]) => {
      const sealed = await sealEnvelope(randomBytes(200 + (i % 9) * 100), {
        recipients: [recipient],
        keys,
        context: contextOf(i),
      });
      await writeFile(path, sealed);
    },
  );
  return paths;
}

/** CPU milliseconds (user + system, every thread of this process) since `start`. */
const cpuMsSince = (start: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
};

let runNo = 0;
/** Migrates a fresh copy of `pristine` (the copy is not timed; the whole run is). */
async function migrateCopy(
  keys: Keyport,
  from: string,
  to: string,
  pristine: string,
  work: string,
  batch: boolean,
): Promise<{ ms: number; cpuMs: number; summary: MigrateSummary }> {
  const dir = join(work, `run-${++runNo}`);
  await cp(pristine, dir, { recursive: true });
  const cpu = process.cpuUsage();
  const started = performance.now();
  const summary = await migrateFiles({
    keys,
    from,
    to,
    target: dir,
    journal: join(work, `run-${runNo}.journal`),
    removeSource: true,
    jobs: JOBS,
    batch,
  });
  const ms = performance.now() - started;
  const cpuMs = cpuMsSince(cpu);
  expect(summary).toMatchObject({ migrated: FILES, failed: 0, skipped: 0 });
  await rm(dir, { recursive: true, force: true });
  return { ms, cpuMs, summary };
}

/** Runs `a` and `b` RUNS times each, alternating which goes first; returns every time of each. */
async function alternate<A, B>(
  a: () => Promise<{ ms: number } & A>,
  b: () => Promise<{ ms: number } & B>,
): Promise<{ a: Array<{ ms: number } & A>; b: Array<{ ms: number } & B> }> {
  const out = { a: [] as Array<{ ms: number } & A>, b: [] as Array<{ ms: number } & B> };
  for (let i = 0; i < RUNS; i++) {
    if (i % 2 === 0) {
      out.a.push(await a());
      out.b.push(await b());
    } else {
      out.b.push(await b());
      out.a.push(await a());
    }
  }
  return out;
}

const best = (runs: ReadonlyArray<{ ms: number }>): number => Math.min(...runs.map((r) => r.ms));
const perFileMs = (ms: number): number => ms / FILES;

it(`migrates ${FILES} small envelopes: local -> OpenBao (batch_input) and AWS KMS (moto) -> local`, async () => {
  const targets = benchTargets();
  const work = await mkdtemp(join(tmpdir(), 'keyport-bench-migrate-'));
  const results: Result[] = [];
  // The files are envelopes sealed with the defaults (suite and frame length as below).
  const common = {
    runs: RUNS,
    node: process.version,
    concurrency: JOBS,
    files: FILES,
    suite: '0x0478',
    frameLength: DEFAULT_FRAME_LENGTH,
  };
  try {
    const local = await openLocalKeystore({
      path: join(work, 'keys.kp'),
      passphrase: PASSPHRASE,
      create: true,
      kdf: { log2N: 10 },
    });
    const vault = new VaultTransitProvider({
      endpoint: targets.env.KEYPORT_OPENBAO_ADDR,
      auth: targets.env.KEYPORT_OPENBAO_TOKEN,
      flavor: 'openbao',
    });
    const aws = new AwsKmsProvider({
      region: 'us-east-1',
      endpoint: targets.env.KEYPORT_MOTO_ENDPOINT,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    const keys = new Keyport({ providers: [local, vault, aws] });
    const stamp = Date.now().toString(36);
    const localA = (await keys.createKey('local', { name: 'a', spec: 'AES_256' })).uri;
    const localB = (await keys.createKey('local', { name: 'b', spec: 'AES_256' })).uri;
    const baoKey = (await keys.createKey('hcvault', { name: `bench-${stamp}`, spec: 'AES_256' })).uri;
    const awsKey = (await keys.createKey('aws-kms', { name: `bench-${stamp}`, spec: 'AES_256' })).uri;

    // (a) local -> OpenBao: the same files, batch_input on and off.
    if (ONLY !== 'aws') await localToOpenBao();
    // (b) AWS KMS (moto) -> local.
    if (ONLY !== 'openbao') await awsToLocal();
    await keys.close();

    async function localToOpenBao(): Promise<void> {
      const pristineA = join(work, 'pristine-a');
      await sealMany(keys, localA, pristineA);
      const ab = await alternate(
        () => migrateCopy(keys, localA, baoKey, pristineA, work, true),
        () => migrateCopy(keys, localA, baoKey, pristineA, work, false),
      );
      const on = (ab.a.find((r) => r.ms === best(ab.a)) ?? ab.a[0])?.summary as MigrateSummary;
      const off = (ab.b.find((r) => r.ms === best(ab.b)) ?? ab.b[0])?.summary as MigrateSummary;
      const batchRequests =
        (on.calls.byOperation['to:encryptBatch'] ?? 0) + (on.calls.byOperation['to:decryptBatch'] ?? 0);
      results.push(
        row(
          `migrate local -> OpenBao, batch_input on: time per file (best of ${RUNS})`,
          'ms/file',
          perFileMs(best(ab.a)),
          'same files, batch_input off (one transit call per data key)',
          perFileMs(best(ab.b)),
          { ...common, spread: spread(ab.a.map((r) => r.ms)), baselineSpread: spread(ab.b.map((r) => r.ms)) },
        ),
        row(
          'local -> OpenBao, batch on: provider calls per file, wrapping side',
          'calls/file',
          on.calls.wrapPerFile,
          'target: at most 1 per file',
          1,
          common,
        ),
        row(
          'local -> OpenBao, batch on: provider calls per file, all (unwrap + wrap + verify)',
          'calls/file',
          on.calls.perFile,
          'batch_input off',
          off.calls.perFile,
          common,
        ),
        row(
          'local -> OpenBao, batch on: data keys per transit request',
          'items/request',
          batchRequests === 0 ? 0 : (FILES * 2) / batchRequests,
          'batch_input off',
          1,
          common,
        ),
      );
    }

    async function awsToLocal(): Promise<void> {
      const pristineB = join(work, 'pristine-b');
      const awsFiles = await sealMany(keys, awsKey, pristineB);
      const edks = await Promise.all(
        awsFiles.map(async (f) => {
          const p = await peekMessage(f);
          if (p.kind !== 'envelope' || p.edks[0] === undefined) throw new Error(`not an envelope: ${f}`);
          return p.edks[0].ciphertext;
        }),
      );
      // The floor: the unwrap and wrap calls alone, same client, same concurrency.
      const bare = async (): Promise<{ ms: number; cpuMs: number }> => {
        const cpu = process.cpuUsage();
        const started = performance.now();
        await forEachBounded(
          edks.map((e, i) => [e, i] as const),
          JOBS,
          async ([edk, i]) => {
            const dataKey = await keys.decrypt(awsKey, edk, { context: contextOf(i) });
            await keys.encrypt(localB, dataKey.plaintext, { context: contextOf(i) });
            dataKey.plaintext.fill(0);
          },
        );
        return { ms: performance.now() - started, cpuMs: cpuMsSince(cpu) };
      };
      const kb = await alternate(() => migrateCopy(keys, awsKey, localB, pristineB, work, true), bare);
      const fromAws = (kb.a.find((r) => r.ms === best(kb.a)) ?? kb.a[0])?.summary as MigrateSummary;
      results.push(
        row(
          `migrate AWS KMS (moto) -> local, verified: time per file (best of ${RUNS})`,
          'ms/file',
          perFileMs(best(kb.a)),
          'bare unwrap (AWS decrypt) + wrap (local encrypt) per data key through the same client: no files, journal or verify',
          perFileMs(best(kb.b)),
          {
            ...common,
            goal: 'ratio <= 1.2',
            spread: spread(kb.a.map((r) => r.ms)),
            baselineSpread: spread(kb.b.map((r) => r.ms)),
            runsMs: kb.a.map((r) => round(r.ms, 1)),
            baselineRunsMs: kb.b.map((r) => round(r.ms, 1)),
            pairRatios: kb.a.map((r, i) => round(r.ms / (kb.b[i]?.ms ?? Number.NaN))),
          },
        ),
        row(
          `AWS KMS (moto) -> local: this process's CPU time per file (best of ${RUNS})`,
          'cpu ms/file',
          Math.min(...kb.a.map((r) => r.cpuMs)) / FILES,
          'the same bare unwrap + wrap (the emulator process is not counted on either side)',
          Math.min(...kb.b.map((r) => r.cpuMs)) / FILES,
          {
            ...common,
            spread: spread(kb.a.map((r) => r.cpuMs)),
            baselineSpread: spread(kb.b.map((r) => r.cpuMs)),
          },
        ),
        row(
          'AWS KMS -> local: provider calls per file, wrapping side',
          'calls/file',
          fromAws.calls.wrapPerFile,
          'target: at most 1 per file',
          1,
          common,
        ),
        row(
          'AWS KMS -> local: provider calls per file, all (unwrap + wrap + verify)',
          'calls/file',
          fromAws.calls.perFile,
          'unwrap + wrap only (no verification)',
          2,
          { ...common, byOperation: fromAws.calls.byOperation },
        ),
      );
    }
  } finally {
    targets.release();
    await rm(work, { recursive: true, force: true });
  }
  writeBenchResults(RESULTS_NAME, results);
  console.table(
    results.map(({ name, unit, value, baselineValue, ratio }) => ({
      name,
      unit,
      value,
      baselineValue,
      ratio,
    })),
  );
  expect(results.every((r) => Number.isFinite(r.value) && r.value > 0)).toBe(true);
});
