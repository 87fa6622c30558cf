/**
 * The REST transport (the client's fallback mode) against drongo, a third-party Cloud KMS mock:
 * key rings created on demand, crypto keys with labels, listing with paging, Encrypt/Decrypt with
 * AAD and the CRC32C fields checked both ways, and REST errors mapped. drongo's ciphertext is a
 * reversible encoding, so what is proven here is the wire protocol, not confidentiality.
 */
import { randomBytes } from 'node:crypto';
import { Keyport } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GcpKmsProvider } from '../src/index.js';
import { drongoProvider } from './support/targets.js';

const RING = `projects/keyport-rest/locations/global/keyRings/rest-${Date.now().toString(36)}`;
let provider: GcpKmsProvider;
let kp: Keyport;

beforeAll(() => {
  provider = drongoProvider({ keyRing: RING });
  kp = new Keyport({ providers: [provider], retry: { maxAttempts: 1 } });
});
afterAll(async () => {
  await kp.close();
});

describe('gcp-kms over REST (drongo)', () => {
  it('creates the key ring on demand and a labelled key, then describes and lists it with paging', async () => {
    const made = await Promise.all(
      ['a', 'b', 'c'].map((id) =>
        kp.createKey('gcp-kms', { name: `rest-${id}`, spec: 'AES_256', labels: { via: 'rest' } }),
      ),
    );
    expect(made[0]).toMatchObject({
      uri: `gcp-kms://${RING}/cryptoKeys/rest-a`,
      state: 'enabled',
      labels: { via: 'rest' },
    });
    expect((await kp.describeKey(made[1]?.uri ?? '')).labels).toEqual({ via: 'rest' });
    const listed: string[] = [];
    for await (const k of kp.listKeys('gcp-kms', { pageSize: 2 })) listed.push(k.uri);
    expect(listed.sort()).toEqual(made.map((k) => k.uri).sort());
  });

  it('encrypts and decrypts with the context as AAD, CRC32C verified, and names the version', async () => {
    const key = await kp.createKey('gcp-kms', { name: 'rest-crypto', spec: 'AES_256' });
    const plaintext = randomBytes(300);
    const context = { tenant: 'acme', purpose: 'rest' };
    const sealed = await kp.encrypt(key.uri, plaintext, { context });
    expect(sealed.keyVersion).toBe('1');
    const opened = await kp.decrypt(key.uri, sealed.ciphertext, {
      context: { purpose: 'rest', tenant: 'acme' },
    });
    expect(Buffer.from(opened.plaintext).equals(plaintext)).toBe(true);
    expect(opened.keyVersion).toBe('1');
  });

  it('a different context does not decrypt (REST 400 → InvalidCiphertext)', async () => {
    const key = await kp.createKey('gcp-kms', { name: 'rest-aad', spec: 'AES_256' });
    const { ciphertext } = await kp.encrypt(key.uri, randomBytes(32), { context: { tenant: 'acme' } });
    await expect(kp.decrypt(key.uri, ciphertext, { context: { tenant: 'globex' } })).rejects.toMatchObject({
      code: 'InvalidCiphertext',
      retryable: false,
    });
  });

  it('maps REST errors: a missing key is NotFound, a duplicate AlreadyExists', async () => {
    const missing = `gcp-kms://${RING}/cryptoKeys/missing`;
    await expect(kp.encrypt(missing, randomBytes(8))).rejects.toMatchObject({
      code: 'NotFound',
      keyUri: missing,
    });
    await kp.createKey('gcp-kms', { name: 'rest-dup', spec: 'AES_256' });
    await expect(kp.createKey('gcp-kms', { name: 'rest-dup', spec: 'AES_256' })).rejects.toMatchObject({
      code: 'AlreadyExists',
    });
  });
});
