/**
 * No PKCS#11 call starts on the module while a token write runs on a worker thread (a key
 * generation or an import's unwrap): SoftHSM2 2.6.1 answers CKR_GENERAL_ERROR now and then when
 * it does (objects.ts). Every pkcs11js function of the shared module is wrapped to record calls
 * made while a token-writing asynchronous call is in flight.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pkcs11Provider } from '../src/index.js';
import { openProvider, signal, uniqueName, withWrappedP11 } from './support.js';

const TOKEN_WRITES = new Set(['C_GenerateKeyAsync', 'C_GenerateKeyPairAsync', 'C_UnwrapKeyAsync']);

/** Runs `fn` with every pkcs11js function recorded; the names of calls made during token writes. */
async function callsDuringTokenWrites(provider: Pkcs11Provider, fn: () => Promise<unknown>) {
  const p11 = provider.p11 as unknown as Record<string, unknown>;
  const names = Object.keys(p11).filter((n) => n.startsWith('C_') && typeof p11[n] === 'function');
  let writing = 0;
  let writes = 0;
  const overlapping: string[] = [];
  await withWrappedP11(
    provider,
    names,
    (name, original) =>
      function (this: unknown, ...args: unknown[]) {
        if (writing > 0) overlapping.push(name);
        if (!TOKEN_WRITES.has(name)) return original.apply(this, args);
        writing++;
        writes++;
        const done = () => {
          writing--;
        };
        const result = original.apply(this, args) as Promise<unknown>;
        result.then(done, done);
        return result;
      },
    fn,
  );
  return { overlapping, writes };
}

describe('token writes on a worker thread run alone', () => {
  let provider: Pkcs11Provider;
  let keyUri: string;
  beforeAll(async () => {
    provider = await openProvider({ maxSessions: 4 });
    keyUri = (await provider.createKey({ name: uniqueName('writes'), spec: 'AES_256' }, { signal: signal() }))
      .uri;
  });
  afterAll(() => provider.close());

  it('concurrent createKey, rotateKey, describeKey, listKeys and crypto never overlap a generation', async () => {
    const o = { signal: signal() };
    const { overlapping, writes } = await callsDuringTokenWrites(provider, async () => {
      const created = await Promise.all([
        ...['AES_256', 'AES_256', 'HMAC_256', 'EC_P256', 'AES_256'].map((spec) =>
          provider.createKey({ name: uniqueName('w'), spec: spec as 'AES_256' }, o),
        ),
        provider.rotateKey({ uri: keyUri }, o),
        provider.describeKey({ uri: keyUri }, o),
        (async () => {
          const listed = [];
          for await (const k of provider.listKeys(o)) listed.push(k);
          return listed;
        })(),
        ...Array.from({ length: 6 }, async () => {
          const sealed = await provider.encrypt({ uri: keyUri }, randomBytes(32), {}, o);
          return provider.decrypt({ uri: keyUri }, sealed.ciphertext, {}, o);
        }),
      ]);
      expect(created).toHaveLength(14);
    });
    expect(writes).toBeGreaterThanOrEqual(6);
    expect(overlapping).toEqual([]);
  });
});
