/**
 * Adapter overhead against keyport's Key Vault server (started here, in both modes), in one run:
 * AzureKeyVaultProvider encrypt/decrypt against the bare CryptographyClient call doing the same
 * vault request (vault: wrapKey/unwrapKey RSA-OAEP-256, which the adapter adds AES-GCM to for the
 * context; Managed HSM: A256GCM with AAD). Calls are interleaved, the order rotating each round,
 * so every contender sees the same noise; the median single-call latency is reported. Writes
 * <repo>/bench-results/azure-keyvault.json as [{ name, unit, value, baseline, baselineValue, ratio }].
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CryptographyClient } from '@azure/keyvault-keys';
import { encodeContext, parseBoundBody, splitGcmBody } from '@keyport/core';
import { startAzureKeyVaultServer } from '@keyport/test-servers';
import { expect, it } from 'vitest';
import { AzureKeyVaultProvider, readCiphertextFrame } from '../src/index.js';
import { clientOptions, staticToken } from '../test/support/server.js';

const quick = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';
const CALLS = quick ? 60 : 400;
const WARMUP = 40;
const context = { purpose: 'bench', tenant: 't-1' };
const aad = encodeContext(context);
const plaintext = new Uint8Array(32).fill(7); // a data key: what a KMS encrypts in practice
const signal = new AbortController().signal;

interface Result {
  name: string;
  unit: string;
  value: number;
  baseline: string;
  baselineValue: number;
  ratio: number;
}

type Case = () => Promise<unknown>;

async function measure(cases: Record<string, Case>): Promise<Record<string, number>> {
  const names = Object.keys(cases);
  for (let i = 0; i < WARMUP; i++) for (const n of names) await cases[n]?.();
  const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < CALLS; i++) {
    const shift = i % names.length;
    for (const n of [...names.slice(shift), ...names.slice(0, shift)]) {
      const t = performance.now();
      await cases[n]?.();
      samples[n]?.push(performance.now() - t);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
  return Object.fromEntries(names.map((n) => [n, median(samples[n] ?? [])]));
}

async function benchMode(mode: 'vault' | 'hsm'): Promise<Result[]> {
  const server = await startAzureKeyVaultServer({ mode });
  const credential = staticToken('keyport-test-admin');
  const options = { ...clientOptions(server.caFile), retryOptions: { maxRetries: 0 } };
  const provider = new AzureKeyVaultProvider({
    vaultUrl: server.url,
    credential,
    clientOptions: clientOptions(server.caFile),
    vaultKind: mode === 'hsm' ? 'managedHsm' : 'vault',
  });
  try {
    const spec = mode === 'hsm' ? 'AES_256' : 'RSA_2048';
    const key = await provider.createKey({ name: `bench-${mode}`, spec }, { signal });
    const ref = { uri: key.uri };
    const keyId = `${server.url}/keys/bench-${mode}`;
    const sealed = await provider.encrypt(ref, plaintext, { context }, { signal });
    const frame = readCiphertextFrame(sealed.ciphertext);
    const parsed =
      mode === 'hsm' ? { ...splitGcmBody(frame.body), wrappedKey: undefined } : parseBoundBody(frame.body);
    const bareLatest = new CryptographyClient(keyId, credential, options);
    const bareVersion = new CryptographyClient(`${keyId}/${frame.keyVersion}`, credential, options);
    const bare: Record<'encrypt' | 'decrypt', Case> =
      mode === 'hsm'
        ? {
            encrypt: () =>
              bareLatest.encrypt(
                { algorithm: 'A256GCM', plaintext, additionalAuthenticatedData: aad },
                { abortSignal: signal },
              ),
            decrypt: () =>
              bareVersion.decrypt(
                {
                  algorithm: 'A256GCM',
                  ciphertext: parsed.ciphertext,
                  iv: parsed.iv,
                  authenticationTag: parsed.tag,
                  additionalAuthenticatedData: aad,
                },
                { abortSignal: signal },
              ),
          }
        : {
            encrypt: () => bareLatest.wrapKey('RSA-OAEP-256', plaintext, { abortSignal: signal }),
            decrypt: () =>
              bareVersion.unwrapKey('RSA-OAEP-256', parsed.wrappedKey ?? plaintext, { abortSignal: signal }),
          };
    const medians = await measure({
      'bare encrypt': bare.encrypt,
      'bare decrypt': bare.decrypt,
      'adapter encrypt': () => provider.encrypt(ref, plaintext, { context }, { signal }),
      'adapter decrypt': () => provider.decrypt(ref, sealed.ciphertext, { context }, { signal }),
    });
    const round = (v: number) => Math.round(v * 1000) / 1000;
    const baselineName =
      mode === 'hsm'
        ? {
            encrypt: 'CryptographyClient.encrypt(A256GCM, aad)',
            decrypt: 'CryptographyClient.decrypt(A256GCM, aad)',
          }
        : {
            encrypt: 'CryptographyClient.wrapKey(RSA-OAEP-256)',
            decrypt: 'CryptographyClient.unwrapKey(RSA-OAEP-256)',
          };
    return (['encrypt', 'decrypt'] as const).map((op) => {
      const value = medians[`adapter ${op}`] ?? Number.NaN;
      const baselineValue = medians[`bare ${op}`] ?? Number.NaN;
      return {
        name: `adapter ${op} (${mode === 'hsm' ? 'Managed HSM, AES_256' : 'vault, RSA_2048 + emulated context'})`,
        unit: 'ms/call',
        value: round(value),
        baseline: `bare ${baselineName[op]}`,
        baselineValue: round(baselineValue),
        ratio: round(value / baselineValue),
      };
    });
  } finally {
    await provider.close();
    await server.stop();
  }
}

it('measures adapter encrypt/decrypt against the bare Azure SDK call', async () => {
  const results = [...(await benchMode('vault')), ...(await benchMode('hsm'))];
  const dir = join(new URL('../../..', import.meta.url).pathname, 'bench-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'azure-keyvault.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.table(results);
  expect(results).toHaveLength(4);
});
