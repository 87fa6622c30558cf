// Migration throughput against moto's S3: objects/s for 1, 2 and 4 worker processes, each
// against the bare S3 GET+PUT of the same objects by the same number of processes with the
// same number in flight (the baseline), interleaved run by run so both share the noise.
// `pnpm bench` starts moto; alone: KEYPORT_MOTO_ENDPOINT=... node bench/migrate.bench.mjs.
// Options: --objects=N (default 300), --runs=R (default 3), --quick (60 objects, 2 runs).
// Writes <repo>/bench-results/object-migrate.json as [{ name, unit, value, baseline, baselineValue, ratio, spread }].
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Keyport } from '@keyport/core';
import { DEFAULT_FRAME_LENGTH, sealEnvelope } from '@keyport/envelope';
import { openLocalKeystore } from '@keyport/local';
import { writeBenchResults } from '../../../scripts/bench-results.mjs';

const arg = (name, dflt) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? dflt : Number(a.split('=')[1]);
};
const quick = process.argv.includes('--quick');
const OBJECTS = arg('objects', quick ? 60 : 300);
const RUNS = arg('runs', quick ? 2 : 3);
const CONCURRENCY = 8;
const endpoint = process.env.KEYPORT_MOTO_ENDPOINT;
if (endpoint === undefined)
  throw new Error('KEYPORT_MOTO_ENDPOINT is not set: run through `pnpm bench` (it starts moto)');
process.env.AWS_ACCESS_KEY_ID ??= 'testing';
process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';

const here = fileURLToPath(new URL('.', import.meta.url));
const _repoRoot = join(here, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'objmig-bench-'));
const kdf = { log2N: 10, r: 8, p: 1 };
const passphrase = 'object-migrate bench';
const keystore = join(dir, 'keys.keystore');
const provider = await openLocalKeystore({ path: keystore, passphrase, create: true, kdf });
const keys = new Keyport({ providers: [provider], onAuditError: () => {} });
const from = (await keys.createKey('local', { name: 'source', spec: 'AES_256' })).uri;
const to = (await keys.createKey('local', { name: 'target', spec: 'AES_256' })).uri;
const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true });
const bucket = `bench${randomBytes(5).toString('hex')}`;
await s3.send(new CreateBucketCommand({ Bucket: bucket }));
// 8 KiB plaintexts: the common case of many small secrets, where per-object costs dominate.
const sealed = [];
for (let i = 0; i < OBJECTS; i++)
  sealed.push(await sealEnvelope(randomBytes(8192), { recipients: [from], keys }));
await provider.close();

let round = 0;
async function seed() {
  const prefix = `r${round++}/`;
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < sealed.length) {
        const i = next++;
        await s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: `${prefix}o${i}`,
            Body: sealed[i],
            Metadata: { i: String(i) },
          }),
        );
      }
    }),
  );
  return prefix;
}

function worker(mode, prefix, shard) {
  const args = [
    join(here, 'worker.mjs'),
    JSON.stringify({
      mode,
      bucket,
      prefix,
      endpoint,
      shard,
      concurrency: CONCURRENCY,
      keystore,
      passphrase,
      kdf,
      from,
      to,
    }),
  ];
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => {
      err += d;
    });
    c.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${mode} worker exited ${code}: ${err.slice(-800)}`)),
    );
  });
}

/** Objects per second for `n` processes of `mode` over a freshly seeded prefix. */
async function measure(mode, n) {
  const prefix = await seed();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: n }, (_, index) => worker(mode, prefix, { index, count: n })));
  return OBJECTS / ((performance.now() - t0) / 1000);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const r2 = (x) => Math.round(x * 100) / 100;
const results = [];
for (const n of [1, 2, 4]) {
  const ours = [];
  const base = [];
  for (let r = 0; r < RUNS; r++) {
    // Alternate which goes first so neither always gets the warmer server.
    if (r % 2 === 0) {
      base.push(await measure('copy', n));
      ours.push(await measure('migrate', n));
    } else {
      ours.push(await measure('migrate', n));
      base.push(await measure('copy', n));
    }
  }
  const value = median(ours);
  const baselineValue = median(base);
  results.push({
    name: `migrate ${OBJECTS} objects (8 KiB), ${n} worker${n > 1 ? 's' : ''}, moto S3`,
    unit: 'objects/s',
    value: r2(value),
    baseline: `bare S3 GET+PUT, ${n} process${n > 1 ? 'es' : ''}, ${CONCURRENCY} in flight each`,
    baselineValue: r2(baselineValue),
    ratio: r2(value / baselineValue),
    // Objects in flight: workers × each one's concurrency, on both sides.
    concurrency: n * CONCURRENCY,
    workers: n,
    // The objects are envelopes sealed with the defaults.
    suite: '0x0478',
    frameLength: DEFAULT_FRAME_LENGTH,
    spread: {
      runs: RUNS,
      value: [r2(Math.min(...ours)), r2(Math.max(...ours))],
      baseline: [r2(Math.min(...base)), r2(Math.max(...base))],
    },
  });
}
s3.destroy();
rmSync(dir, { recursive: true, force: true });
// Its own name: the CLI's file-migration bench writes migrate.json.
writeBenchResults('object-migrate', results, quick);
for (const r of results)
  console.log(
    `${r.name}: ${r.value} ${r.unit} vs ${r.baselineValue} baseline (ratio ${r.ratio}; spread ${r.spread.value.join('..')} vs ${r.spread.baseline.join('..')})`,
  );
