/**
 * Ciphertexts sealed by @keyport/azure-keyvault's own format ("KV" | mode | version | wrapped
 * content key | IV | body | tag; RSA-OAEP-256 hybrid, AAD = core's context encoding) before any
 * shared keyport frame existed. They must stay readable forever: the fixture was written by that
 * code under an imported RSA key whose private half is in the fixture. A vault assigns a new
 * version id on every import, so no vault can be made to hold that version again; the test opens
 * the fixtures the way the format is documented — the adapter's parser, the RSA key, node:crypto.
 */
import { constants, createDecipheriv, createPrivateKey, type JsonWebKey, privateDecrypt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeContext, FRAME_MECHANISMS, parseBoundBody } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { readCiphertextFrame } from '../src/index.js';

const fixture = JSON.parse(
  readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'fixtures/format-v1.json'), 'utf8'),
) as {
  privateJwk: JsonWebKey;
  plaintext: string;
  context: Record<string, string>;
  ciphertexts: { context: boolean; hex: string }[];
};

function open(bytes: Uint8Array, context: Record<string, string> | undefined): string {
  const frame = readCiphertextFrame(bytes);
  expect(frame.mechanism).toBe(FRAME_MECHANISMS.WRAPPED_KEY_AES_256_GCM);
  const parsed = parseBoundBody(frame.body);
  const contentKey = privateDecrypt(
    {
      key: createPrivateKey({ key: fixture.privateJwk, format: 'jwk' }),
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256',
    },
    Buffer.from(parsed.wrappedKey),
  );
  const decipher = createDecipheriv('aes-256-gcm', contentKey, parsed.iv);
  decipher.setAAD(encodeContext(context));
  decipher.setAuthTag(parsed.tag);
  return Buffer.concat([decipher.update(parsed.ciphertext), decipher.final()]).toString('utf8');
}

describe('azure-keyvault ciphertexts of the first format', () => {
  it('every fixture parses and opens to its plaintext; a changed context does not', () => {
    for (const c of fixture.ciphertexts) {
      const bytes = Buffer.from(c.hex, 'hex');
      expect(bytes.subarray(0, 3)).toEqual(Buffer.from([0x4b, 0x56, 0x01]));
      expect(open(bytes, c.context ? fixture.context : undefined)).toBe(fixture.plaintext);
      expect(() => open(bytes, { tenant: 'other' })).toThrow();
    }
  });
});
