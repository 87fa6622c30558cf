/**
 * Migration benchmark: files per second and provider calls per file for many small envelopes,
 * (a) local -> OpenBao with Vault `batch_input` on (against the same files with it off), and
 * (b) AWS KMS (local-kms) -> local (against the bare provider calls the migration needs, without
 * files, journal or verification). Writes bench-results/migrate.json at the repository root as
 * a list of `{ name, unit, value, baseline, baselineValue, ratio }`.
 *
 * KEYPORT_BENCH_FILES (default 10000) sets how many envelopes each section migrates.
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AwsKmsProvider } from '@keyport/aws-kms';
import { type EncryptionContext, Keyport } from '@keyport/core';
import { sealEnvelope } from '@keyport/envelope';
import { openLocalKeystore } from '@keyport/local';
import { VaultTransitProvider } from '@keyport/vault-transit';
import { expect, it } from 'vitest';
import { type MigrateSummary, migrateFiles } from '../src/index.js';
import { peekMessage } from '../src/migrate/header-peek.js';
import { forEachBounded } from '../src/migrate/pool.js';
import { benchTargets, REPO_ROOT } from './targets.js';

const FILES = Number(process.env.KEYPORT_BENCH_FILES ?? 10_000);
const JOBS = 64;
const PASSPHRASE = 'bench passphrase, not a secret';

interface Result {
  name: string;
  unit: string;
  value: number;
  baseline: string;
  baselineValue: number;
  ratio: number;
}

const round = (n: number, d = 3): number => Math.round(n * 10 ** d) / 10 ** d;
const row = (name: string, unit: string, value: number, baseline: string, baselineValue: number): Result => ({
  name,
  unit,
  value: round(value),
  baseline,
  baselineValue: round(baselineValue),
  ratio: round(baselineValue === 0 ? 0 : value / baselineValue),
});

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

function migrate(
  keys: Keyport,
  from: string,
  to: string,
  dir: string,
  batch: boolean,
): Promise<MigrateSummary> {
  return migrateFiles({
    keys,
    from,
    to,
    target: dir,
    journal: join(dir, '..', `${batch ? 'on' : 'off'}-${Date.now()}.journal`),
    removeSource: true,
    jobs: JOBS,
    batch,
  });
}

it(`migrates ${FILES} small envelopes: local -> OpenBao (batch_input) and AWS KMS (local-kms) -> local`, async () => {
  const targets = benchTargets();
  const work = await mkdtemp(join(tmpdir(), 'keyport-bench-migrate-'));
  const results: Result[] = [];
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
      endpoint: targets.env.KEYPORT_LOCALKMS_ENDPOINT,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    const keys = new Keyport({ providers: [local, vault, aws] });
    const stamp = Date.now().toString(36);
    const localA = (await keys.createKey('local', { name: 'a', spec: 'AES_256' })).uri;
    const localB = (await keys.createKey('local', { name: 'b', spec: 'AES_256' })).uri;
    const baoKey = (await keys.createKey('hcvault', { name: `bench-${stamp}`, spec: 'AES_256' })).uri;
    const awsKey = (await keys.createKey('aws-kms', { name: `bench-${stamp}`, spec: 'AES_256' })).uri;

    // (a) local -> OpenBao: the same files twice, batch_input on and off.
    await sealMany(keys, localA, join(work, 'on'));
    await cp(join(work, 'on'), join(work, 'off'), { recursive: true });
    const on = await migrate(keys, localA, baoKey, join(work, 'on'), true);
    const off = await migrate(keys, localA, baoKey, join(work, 'off'), false);
    expect(on.migrated).toBe(FILES);
    expect(off.migrated).toBe(FILES);
    const batchRequests =
      (on.calls.byOperation['to:encryptBatch'] ?? 0) + (on.calls.byOperation['to:decryptBatch'] ?? 0);
    results.push(
      row(
        `migrate ${FILES} envelopes local -> OpenBao, batch_input on, ${JOBS} files in flight`,
        'files/s',
        on.filesPerSecond,
        'same files, batch_input off (one transit call per data key)',
        off.filesPerSecond,
      ),
      row(
        'local -> OpenBao, batch on: provider calls per file, wrapping side',
        'calls/file',
        on.calls.wrapPerFile,
        'target: at most 1 per file',
        1,
      ),
      row(
        'local -> OpenBao, batch on: provider calls per file, all (unwrap + wrap + verify)',
        'calls/file',
        on.calls.perFile,
        'batch_input off',
        off.calls.perFile,
      ),
      row(
        'local -> OpenBao, batch on: data keys per transit request',
        'items/request',
        batchRequests === 0 ? 0 : (FILES * 2) / batchRequests,
        'batch_input off',
        1,
      ),
    );

    // (b) AWS KMS (local-kms) -> local.
    const awsFiles = await sealMany(keys, awsKey, join(work, 'aws'));
    const edks = await Promise.all(
      awsFiles.map(async (f) => {
        const p = await peekMessage(f);
        if (p.kind !== 'envelope' || p.edks[0] === undefined) throw new Error(`not an envelope: ${f}`);
        return p.edks[0].ciphertext;
      }),
    );
    const fromAws = await migrate(keys, awsKey, localB, join(work, 'aws'), true);
    expect(fromAws.migrated).toBe(FILES);
    // The floor: the unwrap and wrap calls alone, same concurrency, no files, journal or verify.
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
    const bareRate = FILES / ((performance.now() - started) / 1000);
    results.push(
      row(
        `migrate ${FILES} envelopes AWS KMS (local-kms) -> local, ${JOBS} files in flight`,
        'files/s',
        fromAws.filesPerSecond,
        'bare unwrap (AWS decrypt) + wrap (local encrypt) per data key, no files, journal or verify',
        bareRate,
      ),
      row(
        'AWS KMS -> local: provider calls per file, wrapping side',
        'calls/file',
        fromAws.calls.wrapPerFile,
        'target: at most 1 per file',
        1,
      ),
      row(
        'AWS KMS -> local: provider calls per file, all (unwrap + wrap + verify)',
        'calls/file',
        fromAws.calls.perFile,
        'unwrap + wrap only (no verification)',
        2,
      ),
    );
    await keys.close();
  } finally {
    targets.release();
    await rm(work, { recursive: true, force: true });
  }
  await mkdir(join(REPO_ROOT, 'bench-results'), { recursive: true });
  await writeFile(join(REPO_ROOT, 'bench-results/migrate.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.table(results);
  expect(results.every((r) => Number.isFinite(r.value))).toBe(true);
});
