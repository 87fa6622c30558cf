/**
 * BYOK: a key created without material takes material wrapped under the provider's import
 * public key, and then works — with the material the caller holds.
 */
import {
  constants,
  createCipheriv,
  createPublicKey,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import type { ImportWrappingAlgorithm } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { specsFor } from '../capability-plan.js';
import { bytesEqual, expectError } from '../expect-error.js';
import { SYMMETRIC_SPEC, type Topic } from './registrar.js';

/** RFC 5649 default initial value for AES key wrap with padding. */
const KWP_IV = Buffer.from('a65959a6', 'hex');

/** Wraps `material` for import the way AWS KMS and Cloud KMS document each algorithm. */
export function wrapForImport(
  algorithm: ImportWrappingAlgorithm,
  wrappingPublicKeyDer: Uint8Array,
  material: Uint8Array,
): Uint8Array {
  const key = createPublicKey({ key: Buffer.from(wrappingPublicKeyDer), format: 'der', type: 'spki' });
  const oaep = (hash: 'sha1' | 'sha256', data: Uint8Array) =>
    publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, data);
  switch (algorithm) {
    case 'RSAES_OAEP_SHA_256':
      return oaep('sha256', material);
    case 'RSAES_OAEP_SHA_1':
      return oaep('sha1', material);
    case 'RSA_AES_KEY_WRAP_SHA_256':
    case 'RSA_AES_KEY_WRAP_SHA_1': {
      // An ephemeral AES key wrapped with RSA-OAEP, followed by the material under AES-KWP.
      const ephemeral = randomBytes(32);
      const kwp = createCipheriv('id-aes256-wrap-pad', ephemeral, KWP_IV);
      const wrapped = Buffer.concat([kwp.update(material), kwp.final()]);
      const hash = algorithm === 'RSA_AES_KEY_WRAP_SHA_256' ? 'sha256' : 'sha1';
      return Buffer.concat([oaep(hash, ephemeral), wrapped]);
    }
  }
}

export function registerImportTests(t: Topic): void {
  const { plan, timeoutMs } = t;
  if (!plan.exercised.has('import') || !specsFor(plan, 'encrypt_decrypt').includes(SYMMETRIC_SPEC)) return;
  const context = plan.exercised.has('context') ? { purpose: 'byok' } : {};

  describe('import (BYOK)', () => {
    it(
      'imported material encrypts and decrypts, and the key refuses use before import',
      async () => {
        const s = t.state();
        for (const algorithm of s.capabilities.import) {
          const key = await s.createKey(SYMMETRIC_SPEC, {
            usage: 'encrypt_decrypt',
            external: true,
            hint: 'import',
          });
          expect(key.state).toBe('pending_import');
          await expectError(s.client.encrypt(key.uri, randomBytes(16), { context }), 'KeyStateConflict');

          const params = await s.client.getImportParameters(key.uri, { algorithm });
          expect(params.algorithm).toBe(algorithm);
          const material = randomBytes(32);
          const imported = await s.client.importKeyMaterial(key.uri, {
            algorithm,
            wrappedMaterial: wrapForImport(algorithm, params.wrappingPublicKey, material),
            ...(params.importToken !== undefined ? { importToken: params.importToken } : {}),
          });
          expect(imported.state).toBe('enabled');
          expect((await s.client.describeKey(key.uri)).origin).toBe('external');

          const plaintext = randomBytes(64);
          const { ciphertext } = await s.client.encrypt(key.uri, plaintext, { context });
          expect(
            bytesEqual((await s.client.decrypt(key.uri, ciphertext, { context })).plaintext, plaintext),
          ).toBe(true);
          const open = s.fixtures.openWithImportedMaterial;
          if (open !== undefined)
            expect(bytesEqual(await open(material, ciphertext, context), plaintext)).toBe(true);
        }
      },
      timeoutMs,
    );

    it(
      'material wrapped under another public key is refused and the key stays pending import',
      async () => {
        const s = t.state();
        const algorithm = s.capabilities.import[0];
        if (algorithm === undefined) throw new Error('conformance: import declared without algorithms');
        const key = await s.createKey(SYMMETRIC_SPEC, {
          usage: 'encrypt_decrypt',
          external: true,
          hint: 'import-bad',
        });
        const params = await s.client.getImportParameters(key.uri, { algorithm });
        const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({
          type: 'spki',
          format: 'der',
        });
        await expectError(
          s.client.importKeyMaterial(key.uri, {
            algorithm,
            wrappedMaterial: wrapForImport(algorithm, stranger, randomBytes(32)),
            ...(params.importToken !== undefined ? { importToken: params.importToken } : {}),
          }),
          ['InvalidArgument', 'InvalidCiphertext'],
        );
        expect((await s.client.describeKey(key.uri)).state).toBe('pending_import');
      },
      timeoutMs,
    );

    it(
      'a key with provider-generated material refuses import',
      async () => {
        const s = t.state();
        const key = await s.createKey(SYMMETRIC_SPEC, { usage: 'encrypt_decrypt', hint: 'import-generated' });
        const algorithm = s.capabilities.import[0] ?? 'RSAES_OAEP_SHA_256';
        await expectError(s.client.getImportParameters(key.uri, { algorithm }), [
          'KeyStateConflict',
          'InvalidArgument',
        ]);
      },
      timeoutMs,
    );
  });
}
