// Adapter overhead against local-kms: AwsKmsProvider encrypt/decrypt (and the same through core's
// Keyport client) vs the bare KMSClient.send call, same emulator, same run, calls interleaved so
// all sides share the noise. Writes bench-results/aws-kms.json (in this package) as
// [{ name, unit, value, baseline, baselineValue, ratio }]; ratio = value / baselineValue, where
// value is the median single-call latency (lower is better; DESIGN's target is <= 1.05).
//
// Needs local-kms: `pnpm emulators up local-kms` (reads KEYPORT_LOCALKMS_ENDPOINT, else the
// harness's .emulators/env). Run through `pnpm bench` (turbo builds @keyport/core first).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DecryptCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { Keyport } from '@keyport/core';
import { AwsKmsProvider } from '../dist/index.js';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 4 : 12;
const CALLS = quick ? 20 : 60;

function localKmsEndpoint() {
  if (process.env.KEYPORT_LOCALKMS_ENDPOINT) return process.env.KEYPORT_LOCALKMS_ENDPOINT;
  const envFile = fileURLToPath(new URL('../../../.emulators/env', import.meta.url));
  if (existsSync(envFile)) {
    const line = readFileSync(envFile, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('KEYPORT_LOCALKMS_ENDPOINT='));
    if (line) return line.slice('KEYPORT_LOCALKMS_ENDPOINT='.length).trim();
  }
  throw new Error('target local-kms is not running: run "pnpm emulators up local-kms"');
}

const endpoint = localKmsEndpoint();
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const provider = new AwsKmsProvider({ region: 'us-east-1', endpoint, credentials });
const keyport = new Keyport({ providers: [provider], retry: { maxAttempts: 1 } });
const bare = new KMSClient({ region: 'us-east-1', endpoint, credentials, maxAttempts: 1 });
const signal = new AbortController().signal;

const key = await provider.createKey(
  { name: `bench-${Date.now().toString(36)}`, spec: 'AES_256' },
  { signal },
);
const keyId = key.uri.slice('aws-kms://'.length);
const plaintext = new TextEncoder().encode('x'.repeat(32));
const context = { purpose: 'bench', tenant: 't-1' };
const sealed = (
  await bare.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: context }))
).CiphertextBlob;

const cases = {
  'bare encrypt': () =>
    bare.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: context })),
  'bare decrypt': () =>
    bare.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: sealed, EncryptionContext: context })),
  'adapter encrypt': () => provider.encrypt({ uri: key.uri }, plaintext, { context }, { signal }),
  'adapter decrypt': () => provider.decrypt({ uri: key.uri }, sealed, { context }, { signal }),
  'keyport encrypt': () => keyport.encrypt(key.uri, plaintext, { context }),
  'keyport decrypt': () => keyport.decrypt(key.uri, sealed, { context }),
};

async function once(fn) {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

const names = Object.keys(cases);
for (let i = 0; i < 30; i++) for (const name of names) await cases[name](); // warm-up: sockets, JIT, spec cache
// Call by call, every case in turn (order rotated each time): each case sees the same noise, and
// the median of single-call latencies ignores the stalls a busy machine adds.
const samples = Object.fromEntries(names.map((n) => [n, []]));
for (let i = 0; i < ROUNDS * CALLS; i++) {
  const shift = i % names.length;
  for (const name of [...names.slice(shift), ...names.slice(0, shift)])
    samples[name].push(await once(cases[name]));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (v, d = 3) => Math.round(v * 10 ** d) / 10 ** d;
const results = [];
for (const who of ['adapter', 'keyport']) {
  for (const op of ['encrypt', 'decrypt']) {
    const value = median(samples[`${who} ${op}`]);
    const baselineValue = median(samples[`bare ${op}`]);
    results.push({
      name: `${who} ${op} (local-kms)`,
      unit: 'ms/call',
      value: round(value),
      baseline: `bare KMSClient.send(${op === 'encrypt' ? 'Encrypt' : 'Decrypt'}Command)`,
      baselineValue: round(baselineValue),
      ratio: round(value / baselineValue),
    });
  }
}

const outDir = fileURLToPath(new URL('../../../bench-results/', import.meta.url));
mkdirSync(outDir, { recursive: true });
writeFileSync(`${outDir}aws-kms.json`, `${JSON.stringify(results, null, 2)}\n`);
console.table(results);
await provider.close();
bare.destroy();
