/**
 * Adapter overhead against keyport's Key Vault server (started here, in both modes), in one run:
 * the same result produced three ways, each the same work —
 *
 * - `bare`: the Azure SDK alone, written as a careful user would (vault, RSA_2048: a fresh
 *   content key wrapped with CryptographyClient.wrapKey(RSA-OAEP-256) plus AES-256-GCM with the
 *   context as AAD, and the reverse; Managed HSM, AES_256: CryptographyClient.encrypt/decrypt
 *   A256GCM with the context as AAD);
 * - `driver`: AzureKeyVaultProvider.encrypt/decrypt called directly;
 * - `keyport`: Keyport.encrypt/decrypt (validation, call policy, capability checks, the driver).
 *
 * For 1 and for 16 concurrent callers, each round runs CALLS calls per contender (the order
 * rotating each round, so every contender sees the same noise). A contender's figure is its best
 * round (wall time / calls) over ROUNDS rounds, with the median and worst round as its spread;
 * the process CPU time per call (median round, from the OS via process.cpuUsage, the in-process
 * server included on both sides) is reported beside it, being far less sensitive to other
 * processes on a shared machine. Writes <repo>/bench-results/azure-keyvault.json as
 * [{ name, unit, value, baseline, baselineValue, ratio, spread, cpu, concurrency, node }].
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { CryptographyClient } from '@azure/keyvault-keys';
import { encodeContext, Keyport, parseBoundBody, splitGcmBody } from '@keyport/core';
import { startAzureKeyVaultServer } from '@keyport/test-servers';
import { expect, it } from 'vitest';
import { writeBenchResults } from '../../../scripts/bench-results.mjs';
import { AzureKeyVaultProvider, readCiphertextFrame } from '../src/index.js';
import { clientOptions, staticToken } from '../test/support/server.js';

const quick = process.argv.includes('--quick') || process.env.KEYPORT_BENCH_QUICK === '1';
const ROUNDS = Number(process.env.KEYPORT_BENCH_ROUNDS ?? (quick ? 3 : 9));
const CALLS = Number(process.env.KEYPORT_BENCH_CALLS ?? (quick ? 32 : 192));
const CONCURRENCY = [1, 16] as const;
const context = { purpose: 'bench', tenant: 't-1' };
// Each bare call encodes the context itself, as the adapter does (a caller's context varies per
// call; the pkcs11 bench's bare path does the same).
const aad = () => encodeContext(context);
const plaintext = new Uint8Array(32).fill(7); // a data key: what a KMS encrypts in practice
const signal = new AbortController().signal;

interface Row {
  name: string;
  unit: string;
  value: number;
  baseline: string;
  baselineValue: number;
  ratio: number;
  spread: { median: number; max: number; baselineMedian: number; baselineMax: number };
  cpu: { unit: 'ms/call'; value: number; baselineValue: number; ratio: number };
  concurrency: number;
  /** KMS calls, not envelope messages: no suite, no frame length. */
  suite: null;
  frameLength: null;
  node: string;
}

type Case = () => Promise<unknown>;

/** Wall and CPU ms per call for `calls` calls shared by `callers` concurrent loops. */
async function timed(run: Case, calls: number, callers: number): Promise<{ wall: number; cpu: number }> {
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next++ < calls) await run();
    }),
  );
  const wall = (performance.now() - started) / calls;
  const used = process.cpuUsage(cpu);
  return { wall, cpu: (used.user + used.system) / 1000 / calls };
}

async function measure(cases: Record<string, Case>, callers: number) {
  const names = Object.keys(cases);
  for (const n of names) await timed(cases[n] as Case, Math.max(16, callers * 2), callers); // warm-up
  const rounds: Record<string, { wall: number; cpu: number }[]> = Object.fromEntries(
    names.map((n) => [n, []]),
  );
  for (let i = 0; i < ROUNDS; i++) {
    const shift = i % names.length;
    for (const n of [...names.slice(shift), ...names.slice(0, shift)]) {
      rounds[n]?.push(await timed(cases[n] as Case, CALLS, callers));
    }
  }
  const median = (xs: number[]) => xs[Math.floor(xs.length / 2)] ?? Number.NaN;
  return Object.fromEntries(
    names.map((n) => {
      const wall = (rounds[n] ?? []).map((r) => r.wall).sort((x, y) => x - y);
      const cpu = (rounds[n] ?? []).map((r) => r.cpu).sort((x, y) => x - y);
      return [
        n,
        { best: wall[0] ?? Number.NaN, median: median(wall), max: wall.at(-1) ?? 0, cpu: median(cpu) },
      ];
    }),
  );
}

async function benchMode(mode: 'vault' | 'hsm'): Promise<Row[]> {
  const server = await startAzureKeyVaultServer({ mode });
  const credential = staticToken('keyport-test-admin');
  const options = { ...clientOptions(server.caFile), retryOptions: { maxRetries: 0 } };
  const provider = new AzureKeyVaultProvider({
    vaultUrl: server.url,
    credential,
    clientOptions: clientOptions(server.caFile),
    vaultKind: mode === 'hsm' ? 'managedHsm' : 'vault',
  });
  const keyport = new Keyport({ providers: [provider] });
  try {
    const spec = mode === 'hsm' ? 'AES_256' : 'RSA_2048';
    const key = await provider.createKey({ name: `bench-${mode}`, spec }, { signal });
    const ref = { uri: key.uri };
    const keyId = `${server.url}/keys/bench-${mode}`;
    const sealed = await provider.encrypt(ref, plaintext, { context }, { signal });
    const frame = readCiphertextFrame(sealed.ciphertext);
    const bareLatest = new CryptographyClient(keyId, credential, options);
    const bareVersion = new CryptographyClient(`${keyId}/${frame.keyVersion}`, credential, options);
    const bare: Record<'encrypt' | 'decrypt', Case> =
      mode === 'hsm'
        ? {
            encrypt: () =>
              bareLatest.encrypt(
                { algorithm: 'A256GCM', plaintext, additionalAuthenticatedData: aad() },
                { abortSignal: signal },
              ),
            decrypt: async () => {
              const { iv, ciphertext, tag } = splitGcmBody(frame.body);
              const gcm = { algorithm: 'A256GCM' as const, iv, ciphertext, authenticationTag: tag };
              return bareVersion.decrypt(
                { ...gcm, additionalAuthenticatedData: aad() },
                { abortSignal: signal },
              );
            },
          }
        : {
            encrypt: async () => {
              const contentKey = randomBytes(32);
              const wrapped = await bareLatest.wrapKey('RSA-OAEP-256', contentKey, { abortSignal: signal });
              const iv = randomBytes(12);
              const cipher = createCipheriv('aes-256-gcm', contentKey, iv).setAAD(aad());
              const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
              const w = Buffer.alloc(2);
              w.writeUInt16BE(wrapped.result.length);
              return Buffer.concat([w, wrapped.result, iv, body]);
            },
            decrypt: async () => {
              const parts = parseBoundBody(frame.body);
              const key = await bareVersion.unwrapKey('RSA-OAEP-256', parts.wrappedKey, {
                abortSignal: signal,
              });
              const decipher = createDecipheriv('aes-256-gcm', key.result, parts.iv).setAAD(aad());
              decipher.setAuthTag(parts.tag);
              return Buffer.concat([decipher.update(parts.ciphertext), decipher.final()]);
            },
          };
    const label = mode === 'hsm' ? 'Managed HSM, AES_256' : 'vault, RSA_2048 + emulated context';
    const rows: Row[] = [];
    for (const callers of CONCURRENCY) {
      const m = await measure(
        {
          'bare encrypt': bare.encrypt,
          'bare decrypt': bare.decrypt,
          'driver encrypt': () => provider.encrypt(ref, plaintext, { context }, { signal }),
          'driver decrypt': () => provider.decrypt(ref, sealed.ciphertext, { context }, { signal }),
          'keyport encrypt': () => keyport.encrypt(key.uri, plaintext, { context }),
          'keyport decrypt': () => keyport.decrypt(key.uri, sealed.ciphertext, { context }),
        },
        callers,
      );
      const round = (v: number) => Math.round(v * 1000) / 1000;
      for (const path of ['keyport', 'driver'] as const) {
        for (const op of ['encrypt', 'decrypt'] as const) {
          const ours = m[`${path} ${op}`];
          const base = m[`bare ${op}`];
          if (ours === undefined || base === undefined) continue;
          rows.push({
            name: `${path === 'keyport' ? 'Keyport' : 'driver'} ${op} (${label}), ${callers} caller${callers > 1 ? 's' : ''}`,
            unit: 'ms/call',
            value: round(ours.best),
            baseline: `bare @azure/keyvault-keys ${op}, same work`,
            baselineValue: round(base.best),
            ratio: round(ours.best / base.best),
            spread: {
              median: round(ours.median),
              max: round(ours.max),
              baselineMedian: round(base.median),
              baselineMax: round(base.max),
            },
            cpu: {
              unit: 'ms/call',
              value: round(ours.cpu),
              baselineValue: round(base.cpu),
              ratio: round(ours.cpu / base.cpu),
            },
            concurrency: callers,
            suite: null,
            frameLength: null,
            node: process.version,
          });
        }
      }
    }
    return rows;
  } finally {
    await keyport.close();
    await server.stop();
  }
}

it('measures the adapter (driver and Keyport path) against the bare Azure SDK doing the same work', async () => {
  const results = [...(await benchMode('vault')), ...(await benchMode('hsm'))];
  writeBenchResults('azure-keyvault', results);
  console.table(
    results.map(({ spread, cpu, node: _n, baseline: _b, unit: _u, ...r }) => ({
      ...r,
      median: spread.median,
      baselineMedian: spread.baselineMedian,
      cpu: cpu.value,
      baselineCpu: cpu.baselineValue,
      cpuRatio: cpu.ratio,
    })),
  );
  expect(results).toHaveLength(16);
});
