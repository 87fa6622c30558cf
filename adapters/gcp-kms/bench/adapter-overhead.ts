/**
 * Adapter overhead against keyport's Cloud KMS gRPC test server, in one run: encrypt and decrypt
 * of a 32-byte data key with a context, through Keyport and through the provider alone, against
 * the bare `KeyManagementServiceClient` call sending the same request (AAD and CRC32C fields) on
 * the same channel. Contenders alternate per round, the starting slot rotating, and the median
 * round counts. Writes bench-results/gcp-kms.json: `{ name, unit, value, baseline, baselineValue, ratio }[]`.
 *
 * The test server reaches clients through a TCP relay whose sockets keep Nagle's algorithm on, so
 * every unary call waits ~40 ms for a delayed ACK; that floor is the same for all contenders, so
 * the ratio stays meaningful but the absolute numbers are the relay's, not Cloud KMS's.
 * BENCH_ROUNDS / BENCH_OPS / BENCH_WARMUP override the sizes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { credentials } from '@grpc/grpc-js';
import { encodeContext, Keyport } from '@keyport/core';
import { startCloudKmsServer } from '@keyport/test-servers';
import { OAuth2Client } from 'google-auth-library';
import { expect, it } from 'vitest';
import { GcpKmsProvider } from '../src/index.js';
import { crc32c } from '../src/rpc.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const OPS = Number(process.env.BENCH_OPS ?? 40);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 20);
const context = { purpose: 'bench', tenant: 't-1' };
const plaintext = new Uint8Array(32).fill(7);

interface Row {
  name: string;
  unit: string;
  value: number;
  baseline: string;
  baselineValue: number;
  ratio: number;
}

async function microsPerOp(op: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < OPS; i++) await op();
  return ((performance.now() - start) * 1000) / OPS;
}

async function race(contenders: Record<string, () => Promise<unknown>>): Promise<Record<string, number>> {
  const entries = Object.entries(contenders);
  const samples = new Map<string, number[]>(entries.map(([name]) => [name, []]));
  for (const [, op] of entries) for (let i = 0; i < WARMUP; i++) await op();
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < entries.length; i++) {
      const [name, op] = entries[(round + i) % entries.length] as [string, () => Promise<unknown>];
      samples.get(name)?.push(await microsPerOp(op));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  return Object.fromEntries([...samples].map(([name, xs]) => [name, median(xs)]));
}

it('measures adapter encrypt/decrypt against the bare Cloud KMS client', async () => {
  const server = await startCloudKmsServer();
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: 'bench', expiry_date: Date.now() + 3_600_000 });
  const provider = new GcpKmsProvider({
    apiEndpoint: '127.0.0.1',
    port: server.port,
    sslCreds: credentials.createInsecure(),
    authClient,
    keyRing: 'projects/bench/locations/global/keyRings/bench',
  });
  const keyport = new Keyport({ providers: [provider] });
  const bare = await provider.client();
  try {
    const { uri } = await keyport.createKey('gcp-kms', { name: 'bench', spec: 'AES_256' });
    const name = uri.slice('gcp-kms://'.length);
    const aad = encodeContext(context);
    const signal = new AbortController().signal;
    const sealed = (await keyport.encrypt(uri, plaintext, { context })).ciphertext;
    const bareSealed =
      (await bare.encrypt({ name, plaintext, additionalAuthenticatedData: aad }))[0].ciphertext ?? '';

    const enc = await race({
      keyport: () => keyport.encrypt(uri, plaintext, { context }),
      provider: () => provider.encrypt({ uri }, plaintext, { context }, { signal }),
      bare: () =>
        bare.encrypt({
          name,
          plaintext,
          plaintextCrc32c: { value: crc32c(plaintext) },
          additionalAuthenticatedData: aad,
          additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
        }),
    });
    const dec = await race({
      keyport: () => keyport.decrypt(uri, sealed, { context }),
      provider: () => provider.decrypt({ uri }, sealed, { context }, { signal }),
      bare: () =>
        bare.decrypt({
          name,
          ciphertext: bareSealed,
          additionalAuthenticatedData: aad,
          additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
        }),
    });

    const row = (op: string, who: 'keyport' | 'provider', m: Record<string, number>): Row => {
      const value = m[who] as number;
      const baselineValue = m.bare as number;
      return {
        name: `gcp-kms ${op} 32 B with context over gRPC (${who === 'keyport' ? 'Keyport -> adapter' : 'adapter alone'})`,
        unit: 'us/op',
        value: Math.round(value * 10) / 10,
        baseline: `@google-cloud/kms ${op} (same request and channel, keyport Cloud KMS test server)`,
        baselineValue: Math.round(baselineValue * 10) / 10,
        ratio: Math.round((value / baselineValue) * 1000) / 1000,
      };
    };
    const results = [
      row('encrypt', 'keyport', enc),
      row('encrypt', 'provider', enc),
      row('decrypt', 'keyport', dec),
      row('decrypt', 'provider', dec),
    ];
    const dir = join(new URL('../../..', import.meta.url).pathname, 'bench-results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'gcp-kms.json'), `${JSON.stringify(results, null, 2)}\n`);
    console.table(results);
    expect(results.every((r) => Number.isFinite(r.ratio) && r.ratio > 0)).toBe(true);
  } finally {
    await keyport.close();
    await server.stop();
  }
});
