/**
 * Ciphertexts sealed by @keyport/pkcs11's own AES-GCM format (0x01 | u32 version | IV | body |
 * tag, AAD = core's context encoding) before any shared keyport frame existed. They must decrypt
 * forever: the fixture was written by that code (keyport 0.1.0, material bytes (i*37+11) & 0xff)
 * under known key material, which each run imports
 * into a fresh token key (BYOK) before decrypting. (The module's RSA-OAEP formats, 0x02 SHA-1 and
 * 0x03 SHA-256, need an RSA private key keyport cannot import; they are not covered here.)
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { wrapForImport } from '@keyport/conformance';
import { createKeyport, type Keyport } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openProvider, uniqueName } from './support.js';

const file = join(dirname(fileURLToPath(import.meta.url)), 'fixtures/format-v1.json');

interface Fixture {
  readonly material: string;
  readonly plaintext: string;
  readonly context: Record<string, string>;
  readonly ciphertexts: { readonly context: boolean; readonly hex: string }[];
}

/** A token key holding `material`, imported through keyport's BYOK path. */
async function keyWith(keys: Keyport, material: Buffer): Promise<string> {
  const key = await keys.createKey('pkcs11', {
    name: uniqueName('fixture'),
    spec: 'AES_256',
    external: true,
  });
  const algorithm = keys.capabilities('pkcs11').import[0];
  if (algorithm === undefined) throw new Error('the module offers no import wrapping');
  const params = await keys.getImportParameters(key.uri, { algorithm });
  await keys.importKeyMaterial(key.uri, {
    algorithm,
    wrappedMaterial: wrapForImport(algorithm, params.wrappingPublicKey, material),
    ...(params.importToken !== undefined ? { importToken: params.importToken } : {}),
  });
  return key.uri;
}

describe('pkcs11 ciphertexts of the first format', () => {
  let keys: Keyport;
  beforeAll(async () => {
    keys = createKeyport({ providers: [await openProvider()] });
  });
  afterAll(() => keys.close());

  it('every fixture decrypts under the imported material; a changed context does not', async () => {
    const fixture = JSON.parse(readFileSync(file, 'utf8')) as Fixture;
    const uri = await keyWith(keys, Buffer.from(fixture.material, 'hex'));
    expect(fixture.ciphertexts.map((c) => c.hex.slice(0, 2))).toEqual(['01', '01']);
    for (const c of fixture.ciphertexts) {
      const ciphertext = Buffer.from(c.hex, 'hex');
      const opened = await keys.decrypt(uri, ciphertext, c.context ? { context: fixture.context } : {});
      expect(Buffer.from(opened.plaintext).toString('utf8')).toBe(fixture.plaintext);
      await expect(keys.decrypt(uri, ciphertext, { context: { tenant: 'other' } })).rejects.toMatchObject({
        code: 'InvalidCiphertext',
      });
    }
  });
});
