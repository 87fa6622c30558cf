/**
 * Against keyport's Cloud KMS test server: requests the adapter
 * used to answer by silently doing less than asked (material expiry dropped, a rotation date that
 * turned automatic rotation off) and a README promise about imported versions.
 */
import { randomBytes } from 'node:crypto';
import { wrapForImport } from '@keyport/conformance';
import { describe, expect, it } from 'vitest';
import { kmsSuite, resourceOf } from './support/suite.js';

const RING = 'projects/keyport-review/locations/global/keyRings/review';
const suite = kmsSuite(RING);
const { name } = suite;

/** Imports fresh AES material into an import-only key through a new import job. */
async function importInto(uri: string, extra: { expiresAt?: Date } = {}) {
  const params = await suite.kp.getImportParameters(uri, { algorithm: 'RSA_AES_KEY_WRAP_SHA_256' });
  const wrapped = wrapForImport('RSA_AES_KEY_WRAP_SHA_256', params.wrappingPublicKey, randomBytes(32));
  return suite.kp.importKeyMaterial(uri, {
    algorithm: 'RSA_AES_KEY_WRAP_SHA_256',
    wrappedMaterial: wrapped,
    ...(params.importToken !== undefined ? { importToken: params.importToken } : {}),
    ...extra,
  });
}

async function versionsOf(uri: string) {
  const [versions] = await (await suite.provider.client()).listCryptoKeyVersions({ parent: resourceOf(uri) });
  return versions;
}

describe('import', () => {
  it('refuses a material expiry Cloud KMS cannot honour, importing nothing', async () => {
    const key = await suite.kp.createKey('gcp-kms', {
      name: name('expiry'),
      spec: 'AES_256',
      external: true,
    });
    const expiresAt = new Date(Date.now() + 86_400_000);
    await expect(importInto(key.uri, { expiresAt })).rejects.toMatchObject({
      code: 'Unsupported',
      capability: 'importExpiry',
    });
    expect(await versionsOf(key.uri)).toHaveLength(0);
  });

  it('makes a later imported version primary, as the README says', async () => {
    const key = await suite.kp.createKey('gcp-kms', {
      name: name('reimport'),
      spec: 'AES_256',
      external: true,
    });
    expect((await importInto(key.uri)).primaryVersion).toBe('1');
    const again = await importInto(key.uri);
    expect(again.primaryVersion).toBe('2');
    const sealed = await suite.kp.encrypt(key.uri, randomBytes(8));
    expect(sealed.keyVersion).toBe('2');
  });
});

describe('rotation policy', () => {
  it('a nextRotationAt without periodDays is refused, never turning rotation off', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('rot'), spec: 'AES_256' });
    await suite.kp.setRotationPolicy(key.uri, { periodDays: 30 });
    const nextRotationAt = new Date(Date.now() + 2 * 86_400_000);
    await expect(suite.kp.setRotationPolicy(key.uri, { nextRotationAt })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    expect((await suite.kp.describeKey(key.uri)).rotation?.periodDays).toBe(30);
    // Cleared only when asked with {}.
    expect((await suite.kp.setRotationPolicy(key.uri, {})).rotation).toBeUndefined();
  });

  it('createKey with a nextRotationAt but no periodDays is refused, not created without it', async () => {
    const id = name('rotc');
    const nextRotationAt = new Date(Date.now() + 2 * 86_400_000);
    await expect(
      suite.kp.createKey('gcp-kms', { name: id, spec: 'AES_256', rotation: { nextRotationAt } }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(suite.kp.describeKey(`gcp-kms://${RING}/cryptoKeys/${id}`)).rejects.toMatchObject({
      code: 'NotFound',
    });
  });
});
