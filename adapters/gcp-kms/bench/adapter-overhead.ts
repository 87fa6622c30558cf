import { credentials } from '@grpc/grpc-js';
import { encodeContext, Keyport } from '@keyport/core';
import { startCloudKmsServer } from '@keyport/test-servers';
import { OAuth2Client } from 'google-auth-library';
import { expect, it } from 'vitest';
import { againstBaseline, interleavedLatencies } from '../../../scripts/bench-latency.mjs';
import { writeBenchResults } from '../../../scripts/bench-results.mjs';
import { GcpKmsProvider } from '../src/index.js';
import { crc32c } from '../src/rpc.js';

// `pnpm bench --quick` (KEYPORT_BENCH_QUICK=1): a small size that keeps the bench working.
const QUICK = process.env.KEYPORT_BENCH_QUICK === '1';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 2 : 7));
const OPS = Number(process.env.BENCH_OPS ?? (QUICK ? 20 : 160));
const WARMUP = Number(process.env.BENCH_WARMUP ?? (QUICK ? 5 : 40));
const CALLERS = [1, 16] as const;
const context = { purpose: 'bench', tenant: 't-1' };
const plaintext = new Uint8Array(32).fill(7);

interface Row {
  name: string;
  unit: string;
  value: number;
  baseline: string;
  baselineValue: number;
  ratio: number;
  ratioSpread: [number, number];
  rounds: number;
  opsPerRound: number;
  concurrency: number;
  /** KMS calls, not envelope messages: no suite, no frame length. */
  suite: null;
  frameLength: null;
  node: string;
}

type Op = () => Promise<unknown>;

const WHO = {
  keyport: 'Keyport -> adapter',
  provider: 'adapter alone',
  bareWithSignal: 'bare SDK given an AbortSignal, for reference',
} as const;

const round3 = (x: number) => Math.round(x * 1000) / 1000;

it('measures adapter encrypt/decrypt against the bare Cloud KMS client, 1 and 16 callers', async () => {
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
    const { uri } = await keyport.createKey('gcp-kms', { name: `bench-${Date.now()}`, spec: 'AES_256' });
    const name = uri.slice('gcp-kms://'.length);
    // Each bare call encodes the context itself, as the adapter does (a caller's context varies per
    // call; the Azure and pkcs11 benches' bare paths do the same).
    const aad = () => encodeContext(context);
    const signal = new AbortController().signal;
    const sealed = (await keyport.encrypt(uri, plaintext, { context })).ciphertext;
    const bareSealed = (await bare.encrypt({ name, plaintext, additionalAuthenticatedData: aad() }))[0]
      .ciphertext;
    const crcOf = (field: { value?: unknown } | null | undefined) => Number(String(field?.value));

    // `withSignal`: the same call given an AbortSignal (as every keyport call passes one), to show
    // what cancellation support costs in the SDK itself; the baseline is the call without one.
    const bareEncrypt =
      (withSignal: boolean): Op =>
      async () => {
        const additionalAuthenticatedData = aad();
        const request = {
          name,
          plaintext,
          plaintextCrc32c: { value: crc32c(plaintext) },
          additionalAuthenticatedData,
          additionalAuthenticatedDataCrc32c: { value: crc32c(additionalAuthenticatedData) },
        };
        const [res] = await (withSignal ? bare.encrypt(request, { signal }) : bare.encrypt(request));
        const ct = res.ciphertext as Uint8Array;
        if (!res.verifiedPlaintextCrc32c || crcOf(res.ciphertextCrc32c) !== crc32c(ct))
          throw new Error('crc');
      };
    const bareDecrypt =
      (withSignal: boolean): Op =>
      async () => {
        const additionalAuthenticatedData = aad();
        const request = {
          name,
          ciphertext: bareSealed as Uint8Array,
          ciphertextCrc32c: { value: crc32c(bareSealed as Uint8Array) },
          additionalAuthenticatedData,
          additionalAuthenticatedDataCrc32c: { value: crc32c(additionalAuthenticatedData) },
        };
        const [res] = await (withSignal ? bare.decrypt(request, { signal }) : bare.decrypt(request));
        if (crcOf(res.plaintextCrc32c) !== crc32c(res.plaintext as Uint8Array)) throw new Error('crc');
      };

    const results: Row[] = [];
    for (const callers of CALLERS) {
      for (const [op, contenders] of [
        [
          'encrypt',
          {
            keyport: () => keyport.encrypt(uri, plaintext, { context }),
            provider: () => provider.encrypt({ uri }, plaintext, { context }, { signal }),
            bareWithSignal: bareEncrypt(true),
            bare: bareEncrypt(false),
          },
        ],
        [
          'decrypt',
          {
            keyport: () => keyport.decrypt(uri, sealed, { context }),
            provider: () => provider.decrypt({ uri }, sealed, { context }, { signal }),
            bareWithSignal: bareDecrypt(true),
            bare: bareDecrypt(false),
          },
        ],
      ] as const) {
        const samples = await interleavedLatencies(contenders, {
          callers,
          rounds: ROUNDS,
          ops: OPS,
          warmup: WARMUP,
        });
        for (const who of ['keyport', 'provider', 'bareWithSignal'] as const) {
          const { value, baselineValue, ratio, ratioSpread } = againstBaseline(samples, who, 'bare');
          results.push({
            name: `gcp-kms ${op} 32 B with context over gRPC, ${callers} caller${callers > 1 ? 's' : ''} (${WHO[who]})`,
            unit: 'us (median latency)',
            value: Math.round(value * 10) / 10,
            baseline: `@google-cloud/kms ${op} (same request, CRC32C checked, same channel, keyport Cloud KMS test server)`,
            baselineValue: Math.round(baselineValue * 10) / 10,
            ratio,
            ratioSpread,
            rounds: ROUNDS,
            opsPerRound: OPS,
            concurrency: callers,
            suite: null,
            frameLength: null,
            node: process.version,
          });
        }
      }
    }
    writeBenchResults('gcp-kms', results);
    console.table(
      results.map(({ name, value, baselineValue, ratio, ratioSpread }) => ({
        name,
        value,
        baselineValue,
        ratio,
        spread: ratioSpread.join('–'),
      })),
    );
    expect(results.every((r) => Number.isFinite(r.ratio) && r.ratio > 0)).toBe(true);
  } finally {
    await keyport.close();
    await server.stop();
  }
});

/**
 * The adapter's own CPU per call, free of network and server noise: the provider over a stub
 * client that answers at once (checking and sending CRC32C like the service), against the bare
 * calls a careful SDK user makes on the same stub (CRC32C both ways). Process CPU time
 * (getrusage), best of STUB_RUNS runs of STUB_OPS calls; the spread is the runs' lowest and
 * highest ratio. Writes bench-results/gcp-kms-cpu.json.
 */
it('measures the adapter CPU per call over a stub client', async () => {
  const RUNS = Number(process.env.STUB_RUNS ?? (QUICK ? 1 : 5));
  const N = Number(process.env.STUB_OPS ?? (QUICK ? 2_000 : 100_000));
  const name = 'projects/p/locations/global/keyRings/r/cryptoKeys/k';
  const stored = Buffer.alloc(120, 3);
  const stub = {
    encrypt: async (req: { plaintext: Uint8Array; plaintextCrc32c: { value: number } }) => {
      if (crc32c(req.plaintext) !== req.plaintextCrc32c.value) throw new Error('crc');
      const res = {
        name: `${name}/cryptoKeyVersions/1`,
        ciphertext: stored,
        ciphertextCrc32c: { value: crc32c(stored) },
      };
      return [{ ...res, verifiedPlaintextCrc32c: true, verifiedAdditionalAuthenticatedDataCrc32c: true }];
    },
    decrypt: async (req: { ciphertext: Uint8Array; ciphertextCrc32c: { value: number } }) => {
      if (crc32c(req.ciphertext) !== req.ciphertextCrc32c.value) throw new Error('crc');
      return [{ plaintext: Buffer.from(plaintext), plaintextCrc32c: { value: crc32c(plaintext) } }];
    },
  };
  const provider = new GcpKmsProvider({ client: stub as never });
  const uri = `gcp-kms://${name}`;
  const o = { signal: new AbortController().signal };
  const sealed = (await provider.encrypt({ uri }, plaintext, {}, o)).ciphertext;
  const bareEncrypt: Op = async () => {
    const [res] = await stub.encrypt({ plaintext, plaintextCrc32c: { value: crc32c(plaintext) } });
    if (!res?.verifiedPlaintextCrc32c || res.ciphertextCrc32c.value !== crc32c(res.ciphertext))
      throw new Error('crc');
  };
  const bareDecrypt: Op = async () => {
    const [res] = await stub.decrypt({ ciphertext: stored, ciphertextCrc32c: { value: crc32c(stored) } });
    if (res?.plaintextCrc32c.value !== crc32c(res?.plaintext ?? stored)) throw new Error('crc');
  };
  const cpuPerCall = async (op: Op) => {
    for (let i = 0; i < N / 10; i++) await op();
    const start = process.cpuUsage();
    for (let i = 0; i < N; i++) await op();
    const used = process.cpuUsage(start);
    return (used.user + used.system) / N;
  };
  const rows: Row[] = [];
  for (const [op, adapter, bare] of [
    ['encrypt', () => provider.encrypt({ uri }, plaintext, {}, o), bareEncrypt],
    ['decrypt', () => provider.decrypt({ uri }, sealed, {}, o), bareDecrypt],
  ] as const) {
    const runs: Array<[number, number]> = [];
    for (let r = 0; r < RUNS; r++) runs.push([await cpuPerCall(adapter), await cpuPerCall(bare)]);
    const value = Math.min(...runs.map(([a]) => a));
    const baselineValue = Math.min(...runs.map(([, b]) => b));
    const ratios = runs.map(([a, b]) => a / b);
    rows.push({
      name: `gcp-kms ${op} 32 B, no context, adapter alone over a stub client (CPU)`,
      unit: 'us CPU/op',
      value: round3(value),
      baseline: `bare ${op} on the same stub (CRC32C sent and checked)`,
      baselineValue: round3(baselineValue),
      ratio: round3(value / baselineValue),
      ratioSpread: [round3(Math.min(...ratios)), round3(Math.max(...ratios))],
      rounds: RUNS,
      opsPerRound: N,
      concurrency: 1,
      suite: null,
      frameLength: null,
      node: process.version,
    });
  }
  writeBenchResults('gcp-kms-cpu', rows);
  console.table(
    rows.map(({ name, value, baselineValue, ratio, ratioSpread }) => ({
      name,
      value,
      baselineValue,
      ratio,
      spread: ratioSpread.join('–'),
    })),
  );
  expect(rows.every((r) => Number.isFinite(r.ratio) && r.ratio > 0)).toBe(true);
}, 600_000);
