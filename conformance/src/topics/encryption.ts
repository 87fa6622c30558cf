/** Encrypt/decrypt round trips, context binding, wrong keys, tampering, and data keys. */
import { randomBytes } from 'node:crypto';
import type { KeySpec } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { specsFor } from '../capability-plan.js';
import {
  bytesEqual,
  expectConcealed,
  expectError,
  expectNoLeak,
  flipBit,
  garbageCiphertext,
} from '../expect-error.js';
import { SYMMETRIC_SPEC, type Topic } from './registrar.js';

/** RSA-OAEP-SHA-256 under a 2048-bit key fits 190 bytes; stay well inside every spec's limit. */
const plaintextFor = (spec: KeySpec): Uint8Array => randomBytes(spec === SYMMETRIC_SPEC ? 1024 : 32);

export function registerEncryptionTests(t: Topic): void {
  const { plan, timeoutMs } = t;
  if (!plan.exercised.has('encrypt')) return;
  const withContext = plan.exercised.has('context');

  for (const spec of specsFor(plan, 'encrypt_decrypt')) {
    // Context binding is declared for symmetric keys; asymmetric ciphertexts are tested without one.
    const context =
      spec === SYMMETRIC_SPEC && withContext ? { tenant: 'acme', purpose: 'conformance' } : undefined;
    const options = context === undefined ? {} : { context };

    describe(`encrypt/decrypt: ${spec}`, () => {
      it(
        `round-trips${context === undefined ? '' : ' with an encryption context'} and names the key version`,
        async () => {
          const s = t.state();
          const key = await s.sharedKey(spec, 'encrypt_decrypt');
          const plaintext = plaintextFor(spec);
          const sealed = await s.client.encrypt(key.uri, plaintext, options);
          expectConcealed(sealed.ciphertext, plaintext);
          const opened = await s.client.decrypt(key.uri, sealed.ciphertext, options);
          expect(bytesEqual(opened.plaintext, plaintext)).toBe(true);
          expect(opened.keyVersion).toBe(sealed.keyVersion);
          if (key.primaryVersion !== undefined) expect(sealed.keyVersion).toBe(key.primaryVersion);
        },
        timeoutMs,
      );

      it(
        'encrypting the same plaintext twice gives different ciphertexts',
        async () => {
          const s = t.state();
          const key = await s.sharedKey(spec, 'encrypt_decrypt');
          const plaintext = plaintextFor(spec);
          const a = await s.client.encrypt(key.uri, plaintext, options);
          const b = await s.client.encrypt(key.uri, plaintext, options);
          expect(bytesEqual(a.ciphertext, b.ciphertext)).toBe(false);
        },
        timeoutMs,
      );

      it(
        'a ciphertext does not open under another key of the same spec (InvalidCiphertext)',
        async () => {
          const s = t.state();
          const key = await s.sharedKey(spec, 'encrypt_decrypt');
          const other = await s.createKey(spec, { usage: 'encrypt_decrypt', hint: 'wrong-key' });
          const { ciphertext } = await s.client.encrypt(key.uri, plaintextFor(spec), options);
          await expectError(s.client.decrypt(other.uri, ciphertext, options), 'InvalidCiphertext');
        },
        timeoutMs,
      );

      it(
        'a tampered or truncated ciphertext fails (InvalidCiphertext)',
        async () => {
          const s = t.state();
          const key = await s.sharedKey(spec, 'encrypt_decrypt');
          const { ciphertext } = await s.client.encrypt(key.uri, plaintextFor(spec), options);
          for (const at of [0, Math.floor(ciphertext.length / 2), -1]) {
            await expectError(
              s.client.decrypt(key.uri, flipBit(ciphertext, at), options),
              'InvalidCiphertext',
            );
          }
          await expectError(
            s.client.decrypt(key.uri, ciphertext.subarray(0, ciphertext.length - 1), options),
            'InvalidCiphertext',
          );
          await expectError(
            s.client.decrypt(key.uri, garbageCiphertext(ciphertext.length), options),
            'InvalidCiphertext',
          );
        },
        timeoutMs,
      );
    });
  }

  if (withContext && specsFor(plan, 'encrypt_decrypt').includes(SYMMETRIC_SPEC)) {
    describe('encryption context', () => {
      const context = { tenant: 'acme', record: 'r-7731' };
      it(
        'the same pairs in another order open the ciphertext',
        async () => {
          const s = t.state();
          const key = await s.sharedKey(SYMMETRIC_SPEC, 'encrypt_decrypt');
          const plaintext = randomBytes(48);
          const { ciphertext } = await s.client.encrypt(key.uri, plaintext, { context });
          const reordered = { record: 'r-7731', tenant: 'acme' };
          const opened = await s.client.decrypt(key.uri, ciphertext, { context: reordered });
          expect(bytesEqual(opened.plaintext, plaintext)).toBe(true);
        },
        timeoutMs,
      );

      it(
        'a changed, missing, extra or dropped pair fails (InvalidCiphertext) without leaking values',
        async () => {
          const s = t.state();
          const key = await s.sharedKey(SYMMETRIC_SPEC, 'encrypt_decrypt');
          const secretValue = 'secret-context-value-5be2';
          const plaintext = randomBytes(48);
          const bound = { ...context, marker: secretValue };
          const { ciphertext } = await s.client.encrypt(key.uri, plaintext, { context: bound });
          const wrong = [
            { ...bound, tenant: 'globex' },
            { ...bound, extra: 'pair' },
            { tenant: 'acme', record: 'r-7731' },
            {},
          ];
          for (const attempt of wrong) {
            const error = await expectError(
              s.client.decrypt(key.uri, ciphertext, { context: attempt }),
              'InvalidCiphertext',
            );
            expectNoLeak(error, [secretValue, 'globex']);
          }
          const error = await expectError(s.client.decrypt(key.uri, ciphertext), 'InvalidCiphertext');
          expectNoLeak(error, [secretValue]);
        },
        timeoutMs,
      );
    });
  }

  if (plan.exercised.has('dataKeys') && specsFor(plan, 'encrypt_decrypt').includes(SYMMETRIC_SPEC)) {
    const options = withContext ? { context: { purpose: 'data-key' } } : {};
    describe('data keys', () => {
      it(
        'the plaintext data key decrypts from its wrapped form; each call gives a new key',
        async () => {
          const s = t.state();
          const key = await s.sharedKey(SYMMETRIC_SPEC, 'encrypt_decrypt');
          const a = await s.client.generateDataKey(key.uri, options);
          expect(a.plaintext.length).toBe(32);
          expectConcealed(a.wrapped, a.plaintext, 'the wrapped data key');
          const opened = await s.client.decrypt(key.uri, a.wrapped, options);
          expect(bytesEqual(opened.plaintext, a.plaintext)).toBe(true);
          expect(opened.keyVersion).toBe(a.keyVersion);
          const b = await s.client.generateDataKey(key.uri, { ...options, bytes: 16 });
          expect(b.plaintext.length).toBe(16);
          expect(
            bytesEqual((await s.client.decrypt(key.uri, b.wrapped, options)).plaintext, b.plaintext),
          ).toBe(true);
          const c = await s.client.generateDataKey(key.uri, options);
          expect(bytesEqual(c.plaintext, a.plaintext)).toBe(false);
        },
        timeoutMs,
      );

      it(
        'a tampered wrapped key, or one opened with another context, fails (InvalidCiphertext)',
        async () => {
          const s = t.state();
          const key = await s.sharedKey(SYMMETRIC_SPEC, 'encrypt_decrypt');
          const { wrapped } = await s.client.generateDataKey(key.uri, options);
          await expectError(s.client.decrypt(key.uri, flipBit(wrapped, -1), options), 'InvalidCiphertext');
          if (withContext) {
            await expectError(
              s.client.decrypt(key.uri, wrapped, { context: { purpose: 'other' } }),
              'InvalidCiphertext',
            );
          }
        },
        timeoutMs,
      );

      it(
        'refuses a data key length outside the allowed range (InvalidArgument)',
        async () => {
          const s = t.state();
          const key = await s.sharedKey(SYMMETRIC_SPEC, 'encrypt_decrypt');
          await expectError(s.client.generateDataKey(key.uri, { ...options, bytes: 0 }), 'InvalidArgument');
          await expectError(
            s.client.generateDataKey(key.uri, { ...options, bytes: 4096 }),
            'InvalidArgument',
          );
        },
        timeoutMs,
      );
    });
  }
}
