// Inventory benchmark: time to inventory N keys (default 1,000) on the local provider and on AWS
// KMS (moto), against a baseline doing the same calls one at a time (listKeys, then describeKey
// and listGrants per key, sequentially) through the same client in the same process — the same
// work on both sides, so the ratio is what bounded per-provider concurrency buys. The bare
// listing alone is recorded beside them. Each side runs REPEATS times, interleaved; the median
// is reported with the spread (min/max). Writes <repo>/bench-results/policy.json.
//   node bench/inventory.bench.mjs [--keys=N] [--only=local|moto]
// moto's endpoint comes from KEYPORT_MOTO_ENDPOINT (`pnpm bench` starts the emulators).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AwsKmsProvider } from '@keyport/aws-kms';
import { Keyport } from '@keyport/core';
import { openLocalKeystore } from '@keyport/local';
import { benchResultsFile, checkBenchRows, writeBenchResults } from '../../../scripts/bench-results.mjs';
import { collectInventory } from '../dist/index.js';

const arg = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const QUICK = process.env.KEYPORT_BENCH_QUICK === '1' || process.argv.includes('--quick');
const KEYS = Number(arg('keys') ?? process.env.KEYPORT_BENCH_KEYS ?? (QUICK ? 50 : 1000));
const only = arg('only');
const REPEATS = 3;
const _root = fileURLToPath(new URL('../../../', import.meta.url));
const results = [];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function sequential(kp, source) {
  let n = 0;
  for await (const k of kp.listKeys(source)) {
    await kp.describeKey(k.uri);
    if (kp.capabilities(source).grants !== 'none') for await (const _ of kp.listGrants(k.uri)) void _;
    n++;
  }
  return n;
}

async function listingOnly(kp, source) {
  let n = 0;
  for await (const _ of kp.listKeys(source)) n++;
  return n;
}

async function measure(label, kp, source, expectAtLeast) {
  const inv = [];
  const seq = [];
  const list = [];
  for (let i = 0; i < REPEATS; i++) {
    let t = performance.now();
    const r = await collectInventory(kp, { sources: [source] });
    inv.push(performance.now() - t);
    if (r.keys.length < expectAtLeast || r.sources[0].error)
      throw new Error(
        `${label}: inventory saw ${r.keys.length} keys${r.sources[0].error ? ` (${JSON.stringify(r.sources[0].error)})` : ''}`,
      );
    t = performance.now();
    await sequential(kp, source);
    seq.push(performance.now() - t);
    t = performance.now();
    await listingOnly(kp, source);
    list.push(performance.now() - t);
  }
  const row = (name, values, baseline, baseValues, concurrency) => ({
    name,
    unit: 'ms',
    value: Math.round(median(values)),
    baseline,
    baselineValue: Math.round(median(baseValues)),
    ratio: Number((median(values) / median(baseValues)).toFixed(3)),
    spread: { min: Math.round(Math.min(...values)), max: Math.round(Math.max(...values)) },
    baselineSpread: { min: Math.round(Math.min(...baseValues)), max: Math.round(Math.max(...baseValues)) },
    keys: expectAtLeast,
    repeats: REPEATS,
    concurrency,
    // Key listings, not envelope messages: no suite, no frame length.
    suite: null,
    frameLength: null,
  });
  results.push(
    row(`inventory ${label} ${expectAtLeast} keys (concurrency 8)`, inv, 'same calls sequentially', seq, 8),
    row(`listKeys only ${label} ${expectAtLeast} keys`, list, 'inventory', inv, 1),
  );
}

async function seedLocal() {
  const dir = mkdtempSync(join(tmpdir(), 'keyport-policy-bench-'));
  const provider = await openLocalKeystore({
    path: join(dir, 'k.keystore'),
    passphrase: 'bench',
    create: true,
    kdf: { log2N: 10 },
  });
  const kp = new Keyport({ providers: [provider] });
  const t = performance.now();
  for (let i = 0; i < KEYS; i++) {
    const k = await kp.createKey('local', {
      name: `k${i}`,
      spec: 'AES_256',
      labels: { owner: 'bench' },
      ...(i % 2 ? { rotation: { periodDays: 90 } } : {}),
    });
    if (i % 10 === 0)
      await kp.createGrant(k.uri, {
        grantee: 'app',
        operations: ['encrypt'],
        expiresAt: new Date(Date.now() + 86_400_000),
      });
  }
  console.error(`local: seeded ${KEYS} keys in ${Math.round(performance.now() - t)} ms`);
  return {
    kp,
    cleanup: async () => {
      await kp.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function seedMoto() {
  const endpoint = process.env.KEYPORT_MOTO_ENDPOINT;
  if (!endpoint)
    throw new Error('KEYPORT_MOTO_ENDPOINT is not set: run through `pnpm bench` (it starts the emulators)');
  const provider = new AwsKmsProvider({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const kp = new Keyport({ providers: [provider] });
  let have = 0;
  for await (const _ of kp.listKeys('aws-kms')) have++;
  const t = performance.now();
  const queue = Array.from({ length: Math.max(0, KEYS - have) }, (_, i) => i);
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        await kp.createKey('aws-kms', {
          name: `bench-${process.pid}-${i}`,
          spec: 'AES_256',
          labels: { owner: 'bench' },
        });
      }
    }),
  );
  console.error(
    `moto: had ${have} keys, seeded ${Math.max(0, KEYS - have)} in ${Math.round(performance.now() - t)} ms`,
  );
  return { kp, cleanup: () => kp.close() };
}

for (const [label, seed, source] of [
  ['local', seedLocal, 'local'],
  ['moto', seedMoto, 'aws-kms'],
]) {
  if (only !== undefined && only !== label) continue;
  const { kp, cleanup } = await seed();
  try {
    await measure(label, kp, source, KEYS);
  } finally {
    await cleanup();
  }
}

console.table(
  results.map(({ name, value, baselineValue, ratio, spread }) => ({
    name,
    ms: value,
    baseline: baselineValue,
    ratio,
    min: spread.min,
    max: spread.max,
  })),
);
// --only runs replace their own rows and keep the others' — those a file from an older bench
// holds in a shape the writer no longer takes are dropped, not a reason to fail the run.
const file = benchResultsFile('policy', QUICK);
let previous = [];
try {
  previous = JSON.parse(readFileSync(file, 'utf8'));
} catch {}
const fresh = new Set(results.map((r) => r.name));
const current = (row) => {
  try {
    checkBenchRows('policy', [row]);
    return true;
  } catch {
    return false;
  }
};
const kept = Array.isArray(previous) ? previous.filter((r) => !fresh.has(r?.name) && current(r)) : [];
writeBenchResults('policy', [...kept, ...results], QUICK);
