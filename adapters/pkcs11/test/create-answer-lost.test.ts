/**
 * A createKey whose answer is lost after the token made the key — the attempt's deadline fired
 * while the key was being generated (the generation itself goes on: a PKCS#11 call cannot be
 * stopped), or a step after the generation failed — is repeated by core (keys are named, so a
 * repeat cannot make a second key). The repeat must answer with the key the first attempt made,
 * finished, not AlreadyExists for the caller's own new key; a key someone else made under the
 * name (another provider instance, another process) stays AlreadyExists.
 */
import { randomBytes } from 'node:crypto';
import { Keyport, type KeyportError } from '@keyport/core';
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pkcs11Provider } from '../src/index.js';
import { findObjects } from '../src/objects.js';
import { type Handle, P } from '../src/p11.js';
import { openProvider, signal, uniqueName, withWrappedP11 } from './support.js';

const retry = { maxAttempts: 3, baseDelayMs: 0 };

/** How many objects of class `cls` carry the label `name`. */
function objectsOf(provider: Pkcs11Provider, name: string, cls: number): Promise<number> {
  return provider.pool
    .run(signal(), async (session: Handle) =>
      findObjects(
        provider.p11,
        session,
        [
          { type: P.CKA_LABEL, value: name },
          { type: P.CKA_CLASS, value: cls },
        ],
        1000,
      ),
    )
    .then((found) => found.length);
}

/** The key works: a round trip through it. */
async function roundTrip(keyport: Keyport, uri: string): Promise<void> {
  const plaintext = randomBytes(16);
  const sealed = await keyport.encrypt(uri, plaintext);
  expect(Buffer.from((await keyport.decrypt(uri, sealed.ciphertext)).plaintext)).toEqual(plaintext);
}

/** A failure of the device, as the module reports it: Unavailable, retryable. */
const deviceError = (method: string) =>
  new pkcs11js.Pkcs11Error('CKR_DEVICE_ERROR', pkcs11js.CKR_DEVICE_ERROR, method);

/** Runs `fn` with the first call of each named pkcs11js function failing with CKR_DEVICE_ERROR; the names that failed. */
function failingOnce(provider: Pkcs11Provider, names: readonly string[], fn: () => Promise<unknown>) {
  const failed = new Set<string>();
  return withWrappedP11(
    provider,
    names,
    (name, original) =>
      function (this: unknown, ...args: unknown[]) {
        if (failed.has(name)) return original.apply(this, args);
        failed.add(name);
        throw deviceError(name);
      },
    fn,
  ).then(() => failed);
}

describe('createKey whose first attempt was cut off by its deadline during the generation', () => {
  let provider: Pkcs11Provider;
  let keyport: Keyport;
  const attempts: AbortSignal[] = [];
  beforeAll(async () => {
    provider = await openProvider();
    const create = provider.createKey.bind(provider);
    provider.createKey = (req, o) => {
      attempts.push(o.signal);
      return create(req, o);
    };
    keyport = new Keyport({ providers: [provider], retry: { ...retry, attemptTimeoutMs: 1500 } });
  });
  afterAll(() => keyport.close());

  it('the repeat answers with the key the first attempt made (one key on the token, usable)', async () => {
    const name = uniqueName('cut-off');
    let held = true;
    let info: Awaited<ReturnType<Keyport['createKey']>> | undefined;
    await withWrappedP11(
      provider,
      ['C_GenerateKeyAsync'],
      (_, original) =>
        function (this: unknown, ...args: unknown[]) {
          if (!held) return original.apply(this, args);
          held = false;
          // The token works until the attempt's deadline has fired, then finishes the key.
          const first = attempts.at(-1) as AbortSignal;
          return new Promise((resolve, reject) => {
            const generate = () => (original.apply(this, args) as Promise<unknown>).then(resolve, reject);
            if (first.aborted) generate();
            else first.addEventListener('abort', generate, { once: true });
          });
        },
      async () => {
        info = await keyport.createKey('pkcs11', { name, spec: 'AES_256', labels: { team: 'a' } });
      },
    );
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(info).toMatchObject({
      uri: provider.uriFor(name),
      spec: 'AES_256',
      state: 'enabled',
      primaryVersion: '1',
      labels: { team: 'a' },
    });
    await roundTrip(keyport, (info as { uri: string }).uri);
    expect(await objectsOf(provider, name, P.CKO_SECRET_KEY)).toBe(1);
    expect(await objectsOf(provider, name, P.CKO_DATA)).toBe(1);
  });
});

describe('createKey whose answer is lost after the token made the key', () => {
  let provider: Pkcs11Provider;
  let other: Pkcs11Provider;
  let keyport: Keyport;
  beforeAll(async () => {
    provider = await openProvider();
    other = await openProvider();
    keyport = new Keyport({ providers: [provider], retry });
  });
  afterAll(async () => {
    await keyport.close();
    await other.close();
  });

  it('reading the new key failed (the device, retryable): the repeat answers with the key', async () => {
    const name = uniqueName('read-failed');
    let info: Awaited<ReturnType<Keyport['createKey']>> | undefined;
    // keyInfo's read of the usage attribute is the first C_GetAttributeValue of a create.
    const failed = await failingOnce(provider, ['C_GetAttributeValue'], async () => {
      info = await keyport.createKey('pkcs11', { name, spec: 'EC_P256' });
    });
    expect([...failed]).toEqual(['C_GetAttributeValue']);
    expect(info).toMatchObject({
      spec: 'EC_P256',
      usage: 'sign_verify',
      state: 'enabled',
      primaryVersion: '1',
    });
    const signed = await keyport.sign((info as { uri: string }).uri, Buffer.from('m'), {
      algorithm: 'ECDSA_SHA_256',
    });
    expect(signed.signature.length).toBeGreaterThan(0);
    expect(await objectsOf(provider, name, P.CKO_PRIVATE_KEY)).toBe(1);
    expect(await objectsOf(provider, name, P.CKO_DATA)).toBe(1);
  });

  it('interrupted half-way (metadata write and the clean-up failed): the repeat finishes one whole key', async () => {
    const name = uniqueName('half-made');
    let info: Awaited<ReturnType<Keyport['createKey']>> | undefined;
    // The generated key is left on the token without its metadata: never usable through
    // keyport, and it must not stay behind nor be answered as a key.
    const failed = await failingOnce(provider, ['C_CreateObject', 'C_DestroyObject'], async () => {
      info = await keyport.createKey('pkcs11', { name, spec: 'AES_256' });
    });
    expect([...failed].sort()).toEqual(['C_CreateObject', 'C_DestroyObject']);
    expect(info).toMatchObject({ spec: 'AES_256', state: 'enabled', primaryVersion: '1' });
    await roundTrip(keyport, (info as { uri: string }).uri);
    expect(await objectsOf(provider, name, P.CKO_SECRET_KEY)).toBe(1);
    expect(await objectsOf(provider, name, P.CKO_DATA)).toBe(1);
  });

  it('a create of the name with another request, after a lost answer, is AlreadyExists', async () => {
    const name = uniqueName('other-request');
    await failingOnce(provider, ['C_GetAttributeValue'], () =>
      expect(provider.createKey({ name, spec: 'AES_256' }, { signal: signal() })).rejects.toBeInstanceOf(
        pkcs11js.Pkcs11Error,
      ),
    );
    await expect(provider.createKey({ name, spec: 'HMAC_256' }, { signal: signal() })).rejects.toMatchObject({
      code: 'AlreadyExists',
    });
    // The same request is still the lost one's repeat.
    const info = await provider.createKey({ name, spec: 'AES_256' }, { signal: signal() });
    expect(info).toMatchObject({ spec: 'AES_256', primaryVersion: '1' });
    // Answered once: the same request again is a new create.
    await expect(provider.createKey({ name, spec: 'AES_256' }, { signal: signal() })).rejects.toMatchObject({
      code: 'AlreadyExists',
    });
  });

  it('a key made under the name by another provider instance is still AlreadyExists', async () => {
    const name = uniqueName('taken');
    await other.createKey({ name, spec: 'AES_256' }, { signal: signal() });
    await expect(keyport.createKey('pkcs11', { name, spec: 'AES_256' })).rejects.toMatchObject({
      code: 'AlreadyExists',
    });
    // Also when the other instance's own answer was lost: its record is its own.
    const lost = uniqueName('taken-lost');
    await failingOnce(other, ['C_GetAttributeValue'], () =>
      expect(other.createKey({ name: lost, spec: 'AES_256' }, { signal: signal() })).rejects.toBeInstanceOf(
        pkcs11js.Pkcs11Error,
      ),
    );
    await expect(keyport.createKey('pkcs11', { name: lost, spec: 'AES_256' })).rejects.toMatchObject({
      code: 'AlreadyExists',
    });
  });

  it('two provider instances racing one name, answers lost: exactly one succeeds', async () => {
    const otherKeyport = new Keyport({ providers: [await openProvider()], retry });
    try {
      for (let round = 0; round < 3; round++) {
        const name = uniqueName('race');
        // The module is shared: one of the two creates loses its first answer.
        const outcomes = await failingOnce(provider, ['C_GetAttributeValue'], () =>
          Promise.allSettled([
            keyport.createKey('pkcs11', { name, spec: 'AES_256' }),
            otherKeyport.createKey('pkcs11', { name, spec: 'AES_256' }),
          ]).then((settled) => {
            const won = settled.filter((s) => s.status === 'fulfilled');
            const lost = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as KeyportError] : []));
            expect(won).toHaveLength(1);
            expect(lost.map((e) => e.code)).toEqual(['AlreadyExists']);
          }),
        );
        expect(outcomes.size).toBe(1);
        expect(await objectsOf(provider, name, P.CKO_SECRET_KEY)).toBe(1);
      }
    } finally {
      await otherKeyport.close();
    }
  });
});
