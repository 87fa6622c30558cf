// The Keyport path (createKeyport + awsKms: core's call policy, audit-free defaults, the driver)
// against the bare @aws-sdk/client-kms on the same emulator, in the same process, for 1 caller
// and for 16 concurrent callers, on moto and on local-kms (issue #26: ≤ 1.05× bare).
//
// - 1 caller: calls alternate one by one (bare, keyport, keyport, bare, ...), so both sides see
//   the same noise; a round's figure is the median single-call latency of each side.
// - 16 callers: 16 loops each send calls back to back; a round's figure is the wall time of a
//   fixed number of calls, the two sides run one after the other in alternating order.
// Both sides do the same work: the same key ARN, plaintext, ciphertext and encryption context;
// the bare client is built as the adapter builds its own (`maxAttempts: 1`, default handler),
// but keeps the SDK's default SHA-256: on Node 24 and 25 the adapter's clients sign with a
// KeyObject-keyed one (src/sha256.ts), part of what the adapter does that a bare SDK does not.
// Each row gives the median of the per-round ratios and their spread (min..max over rounds).
// A third target, `stubbed transport`, gives both sides the same in-process request handler
// that answers at once (the SDK still builds, signs and parses every request): it isolates the
// CPU the Keyport path adds from emulator and network noise, which on a busy machine hides 5%;
// there the driver alone (AwsKmsProvider called directly) is measured too, to split its share
// from core's, and the bare SDK given an AbortSignal (which every driver call passes).
//
// Writes bench-results/aws-kms.json as [{ name, unit, value, baseline, baselineValue, ratio,
// spread, rounds, target, concurrency, node }]. Needs moto and local-kms
// (`pnpm emulators up moto local-kms`); `--quick` runs a small size (CI: keeps it working).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DecryptCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { createKeyport } from '@keyport/core';
import { writeBenchResults } from '../../../scripts/bench-results.mjs';
import { awsKms } from '../dist/index.js';

const quick = process.argv.includes('--quick');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const ROUNDS = arg('--rounds', quick ? 3 : 9);
const SERIAL_CALLS = arg('--serial-calls', quick ? 10 : 60);
const PARALLEL_CALLS = arg('--parallel-calls', quick ? 32 : 320);
const CALLERS = 16;
const TARGETS = [
  { name: 'moto', variable: 'KEYPORT_MOTO_ENDPOINT', scale: 1 },
  { name: 'local-kms', variable: 'KEYPORT_LOCALKMS_ENDPOINT', scale: 1 },
  { name: 'stubbed transport', scale: 10 },
];
const STUB_ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** The SDK's requestHandler answering KMS JSON at once: DescribeKey, Encrypt and Decrypt. */
function stubHandler() {
  const b64 = (n) => Buffer.alloc(n, 7).toString('base64');
  const answers = {
    DescribeKey: {
      KeyMetadata: {
        ...{ Arn: STUB_ARN, KeyId: STUB_ARN, KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' },
        ...{ KeyState: 'Enabled', Enabled: true, Origin: 'AWS_KMS' },
      },
    },
    Encrypt: { CiphertextBlob: b64(184), KeyId: STUB_ARN, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' },
    Decrypt: { Plaintext: b64(32), KeyId: STUB_ARN, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' },
  };
  const bodies = Object.fromEntries(
    Object.entries(answers).map(([op, json]) => [op, new TextEncoder().encode(JSON.stringify(json))]),
  );
  const headers = { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'stub' };
  return {
    metadata: { handlerProtocol: 'h1' },
    destroy() {},
    updateHttpClientConfig() {},
    httpHandlerConfigs: () => ({}),
    async handle(request) {
      const op = String(request.headers['x-amz-target']).replace('TrentService.', '');
      return { response: { statusCode: 200, reason: '', headers: { ...headers }, body: bodies[op] } };
    },
  };
}

function endpointOf({ name, variable }) {
  if (process.env[variable]) return process.env[variable];
  const envFile = fileURLToPath(new URL('../../../.emulators/env', import.meta.url));
  const line = existsSync(envFile)
    ? readFileSync(envFile, 'utf8')
        .split('\n')
        .find((l) => l.startsWith(`${variable}=`))
    : undefined;
  if (line) return line.slice(variable.length + 1).trim();
  throw new Error(`target ${name} is not running: run "pnpm emulators up ${name}"`);
}

const now = () => Number(process.hrtime.bigint()) / 1e6;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (v, d = 3) => Math.round(v * 10 ** d) / 10 ** d;

/** Median single-call latency of each side, calls alternating (ABBA) so both share the noise. */
async function serialRound(bare, ours, calls) {
  const a = [];
  const b = [];
  for (let i = 0; i < calls; i++) {
    const order = i % 2 === 0 ? [bare, ours] : [ours, bare];
    for (const fn of order) {
      const t = now();
      await fn();
      (fn === bare ? a : b).push(now() - t);
    }
  }
  return { bare: median(a), ours: median(b) };
}

/** Wall time of `calls` calls made by CALLERS loops at once. */
async function parallel(fn, calls) {
  let left = calls;
  const t = now();
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (left-- > 0) await fn();
    }),
  );
  return now() - t;
}

async function parallelRound(bare, ours, r, calls) {
  if (r % 2 === 0) {
    const x = await parallel(bare, calls);
    return { bare: x, ours: await parallel(ours, calls) };
  }
  const y = await parallel(ours, calls);
  return { bare: await parallel(bare, calls), ours: y };
}

const results = [];
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const only = process.argv.indexOf('--target');
for (const target of only === -1 ? TARGETS : TARGETS.filter((t) => t.name === process.argv[only + 1])) {
  const stubbed = target.variable === undefined;
  const endpoint = stubbed ? 'http://127.0.0.1:9' : endpointOf(target);
  const clientConfig = stubbed ? { requestHandler: stubHandler() } : {};
  const provider = awsKms({ region: 'us-east-1', endpoint, credentials, clientConfig });
  const keyport = createKeyport({ providers: [provider] });
  const bare = new KMSClient({ region: 'us-east-1', endpoint, credentials, maxAttempts: 1, ...clientConfig });
  const key = stubbed
    ? { uri: `aws-kms://${STUB_ARN}` }
    : await keyport.createKey('aws-kms', { name: `bench-${Date.now().toString(36)}`, spec: 'AES_256' });
  const KeyId = key.uri.slice('aws-kms://'.length);
  const plaintext = new TextEncoder().encode('x'.repeat(32));
  const context = { purpose: 'bench', tenant: 't-1' };
  const sealed = (
    await bare.send(new EncryptCommand({ KeyId, Plaintext: plaintext, EncryptionContext: context }))
  ).CiphertextBlob;
  const signal = new AbortController().signal;
  const ops = {
    encrypt: {
      bare: () => bare.send(new EncryptCommand({ KeyId, Plaintext: plaintext, EncryptionContext: context })),
      keyport: () => keyport.encrypt(key.uri, plaintext, { context }),
      driver: () => provider.encrypt({ uri: key.uri }, plaintext, { context }, { signal }),
      'bare+signal': () =>
        bare.send(new EncryptCommand({ KeyId, Plaintext: plaintext, EncryptionContext: context }), {
          abortSignal: signal,
        }),
    },
    decrypt: {
      bare: () =>
        bare.send(new DecryptCommand({ KeyId, CiphertextBlob: sealed, EncryptionContext: context })),
      keyport: () => keyport.decrypt(key.uri, sealed, { context }),
      driver: () => provider.decrypt({ uri: key.uri }, sealed, { context }, { signal }),
      'bare+signal': () =>
        bare.send(new DecryptCommand({ KeyId, CiphertextBlob: sealed, EncryptionContext: context }), {
          abortSignal: signal,
        }),
    },
  };
  // the driver alone (no core), and the bare SDK given the AbortSignal every driver call passes,
  // only where the transport adds no noise to hide them in
  const paths = stubbed ? ['keyport', 'driver', 'bare+signal'] : ['keyport'];
  // warm-up: sockets (16 of them), JIT, the driver's spec cache
  for (const op of Object.values(ops)) {
    for (let i = 0; i < 20; i++) await Promise.all([op.bare(), op.keyport(), op.driver()]);
    await Promise.all(Array.from({ length: CALLERS }, () => Promise.all([op.bare(), op.keyport()])));
  }
  for (const [op, fns] of Object.entries(ops)) {
    for (const path of paths) {
      for (const concurrency of [1, CALLERS]) {
        const rounds = [];
        const calls = (concurrency === 1 ? SERIAL_CALLS : PARALLEL_CALLS) * target.scale;
        for (let r = 0; r < ROUNDS; r++) {
          rounds.push(
            concurrency === 1
              ? await serialRound(fns.bare, fns[path], calls)
              : await parallelRound(fns.bare, fns[path], r, calls),
          );
        }
        const ratios = rounds.map((x) => x.ours / x.bare);
        const perCall = (ms) => (concurrency === 1 ? ms : (calls * 1000) / ms);
        results.push({
          name: `${path} ${op}, ${concurrency} caller${concurrency === 1 ? '' : 's'} (${target.name})`,
          unit: concurrency === 1 ? 'ms/call (median)' : 'calls/s',
          value: round(perCall(median(rounds.map((x) => x.ours)))),
          baseline: `bare KMSClient.send(${op === 'encrypt' ? 'Encrypt' : 'Decrypt'}Command)`,
          baselineValue: round(perCall(median(rounds.map((x) => x.bare)))),
          // time ratio (ours / bare) in both modes: > 1 means slower than the bare SDK
          ratio: round(median(ratios)),
          spread: [round(Math.min(...ratios)), round(Math.max(...ratios))],
          rounds: ROUNDS,
          calls,
          target: target.name,
          concurrency,
          // KMS calls, not envelope messages: no suite, no frame length.
          suite: null,
          frameLength: null,
          node: process.version,
        });
      }
    }
  }
  await keyport.close(); // closes the driver
  bare.destroy();
}

writeBenchResults('aws-kms', results, quick);
console.table(
  results.map(({ name, unit, value, baselineValue, ratio, spread }) => ({
    name,
    unit,
    value,
    baselineValue,
    ratio,
    spread: spread.join('..'),
  })),
);
