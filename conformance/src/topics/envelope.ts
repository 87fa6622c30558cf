/**
 * Envelope seal/open through the provider: @keyport/envelope's KMS recipients call the provider
 * (via the same Keyport client) to make and unwrap the data key.
 */
import { randomBytes } from 'node:crypto';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { describe, expect, it } from 'vitest';
import { specsFor } from '../capability-plan.js';
import { bytesEqual, expectError, flipBit } from '../expect-error.js';
import { SYMMETRIC_SPEC, type Topic } from './registrar.js';

export function registerEnvelopeTests(t: Topic): void {
  const { plan, timeoutMs } = t;
  if (!plan.exercised.has('encrypt') || !specsFor(plan, 'encrypt_decrypt').includes(SYMMETRIC_SPEC)) return;
  const context = { purpose: 'envelope', tenant: 'acme' };
  // Without provider data keys, keyport draws the data key and the provider only wraps it.
  const dataKeySource = plan.exercised.has('dataKeys') ? ('first-recipient' as const) : ('local' as const);

  describe('envelope seal/open', () => {
    it(
      'seals to two keys of this provider; either one opens the message',
      async () => {
        const s = t.state();
        const a = await s.sharedKey(SYMMETRIC_SPEC, 'encrypt_decrypt');
        const b = await s.createKey(SYMMETRIC_SPEC, { usage: 'encrypt_decrypt', hint: 'envelope-second' });
        const plaintext = randomBytes(10_000);
        const message = await sealEnvelope(plaintext, {
          recipients: [a.uri, b.uri],
          context,
          keys: s.client,
          frameLength: 4096,
          dataKeySource,
        });
        for (const uri of [a.uri, b.uri]) {
          const opened = await openEnvelope(message, {
            trust: [uri],
            keys: s.client,
            requiredContext: context,
          });
          expect(bytesEqual(opened.plaintext, plaintext)).toBe(true);
        }
      },
      timeoutMs,
    );

    it(
      'a tampered message, an untrusted key or a missing context pair does not open',
      async () => {
        const s = t.state();
        const key = await s.sharedKey(SYMMETRIC_SPEC, 'encrypt_decrypt');
        const stranger = await s.createKey(SYMMETRIC_SPEC, {
          usage: 'encrypt_decrypt',
          hint: 'envelope-stranger',
        });
        const message = await sealEnvelope(randomBytes(3000), {
          recipients: [key.uri],
          context,
          keys: s.client,
          dataKeySource,
        });
        const trust = { trust: [key.uri], keys: s.client };
        await expectError(openEnvelope(flipBit(message, -40), trust), ['Integrity', 'InvalidCiphertext']);
        await expectError(
          openEnvelope(message, { trust: [stranger.uri], keys: s.client }),
          'InvalidCiphertext',
        );
        await expectError(
          openEnvelope(message, { ...trust, requiredContext: { ...context, tenant: 'globex' } }),
          'InvalidCiphertext',
        );
      },
      timeoutMs,
    );
  });
}
