/** Error codes for each failure, AbortSignal and timeout, and parallel calls. */
import { randomBytes } from 'node:crypto';
import { driverName } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { expectError, garbageCiphertext } from '../expect-error.js';
import { lifecycleProbe, lifecycleSpec, type Topic } from './registrar.js';

export function registerResilienceTests(t: Topic): void {
  const { plan, timeoutMs } = t;
  const chosen = lifecycleSpec(plan);
  if (chosen === undefined) return;
  const encrypting = chosen.usage === 'encrypt_decrypt';

  describe('error codes', () => {
    it(
      'using a key that does not exist fails with NotFound, naming provider and key',
      async () => {
        const s = t.state();
        const uri = s.fixtures.missingKeyUri();
        const probe = lifecycleProbe(t, chosen);
        const error = await expectError(
          probe.use({ uri, spec: chosen.spec, usage: chosen.usage, state: 'enabled', labels: {} }),
          'NotFound',
        );
        expect(error.keyUri).toBe(uri);
        expect(error.provider).toBe(driverName(s.instrumented.provider));
        expect(error.retryable).toBe(false);
      },
      timeoutMs,
    );

    if (plan.exercised.has('grants') && plan.missingFixtures.length === 0) {
      it(
        'a principal without rights is refused with AccessDenied, not retryable',
        async () => {
          const s = t.state();
          const key = await s.sharedKey(chosen.spec, chosen.usage);
          const client = await s.stranger('stranger', key);
          const error = await expectError(client.describeKey(key.uri), 'AccessDenied');
          // Retrying a refusal only repeats it (and, on a cloud KMS, bills and throttles the caller).
          expect(error.retryable).toBe(false);
        },
        timeoutMs,
      );
    }

    if (plan.exercised.has('enableDisable')) {
      it(
        'a disabled key fails with KeyStateConflict, not retryable',
        async () => {
          const s = t.state();
          const key = await s.createKey(chosen.spec, { usage: chosen.usage, hint: 'error-disabled' });
          await s.client.disableKey(key.uri);
          const error = await expectError(lifecycleProbe(t, chosen).use(key), 'KeyStateConflict');
          expect(error.retryable).toBe(false);
        },
        timeoutMs,
      );
    }

    if (encrypting) {
      it(
        'random bytes presented as a ciphertext fail with InvalidCiphertext',
        async () => {
          const s = t.state();
          const key = await s.sharedKey(chosen.spec, chosen.usage);
          const error = await expectError(
            s.client.decrypt(key.uri, garbageCiphertext(96)),
            'InvalidCiphertext',
          );
          expect(error.retryable).toBe(false);
        },
        timeoutMs,
      );
    }
  });

  describe('abort and timeout', () => {
    it(
      'an already-aborted signal fails with Aborted before reaching the provider',
      async () => {
        const s = t.state();
        const key = await s.sharedKey(chosen.spec, chosen.usage);
        const before = s.instrumented.calls.length;
        const signal = AbortSignal.abort();
        await expectError(s.client.describeKey(key.uri, { signal }), 'Aborted');
        if (encrypting) await expectError(s.client.encrypt(key.uri, randomBytes(8), { signal }), 'Aborted');
        expect(s.instrumented.calls.length).toBe(before);
      },
      timeoutMs,
    );

    it(
      'aborting an operation in flight fails it with Aborted and aborts the provider call’s signal',
      async () => {
        const s = t.state();
        const key = await s.sharedKey(chosen.spec, chosen.usage);
        const held = s.instrumented.holdNext('describeKey');
        const controller = new AbortController();
        const pending = s.client.describeKey(key.uri, { signal: controller.signal });
        setTimeout(() => controller.abort(), 20);
        await expectError(pending, 'Aborted');
        expect((await held).aborted).toBe(true);
      },
      timeoutMs,
    );

    it(
      'an operation that outlives timeoutMs fails with Timeout; one that does not, succeeds',
      async () => {
        const s = t.state();
        const key = await s.sharedKey(chosen.spec, chosen.usage);
        const held = s.instrumented.holdNext('describeKey');
        await expectError(s.client.describeKey(key.uri, { timeoutMs: 50 }), 'Timeout');
        expect((await held).aborted).toBe(true);
        const described = await s.client.describeKey(key.uri, {
          timeoutMs: 20_000,
          signal: new AbortController().signal,
        });
        expect(described.uri).toBe(key.uri);
      },
      timeoutMs,
    );
  });

  describe('concurrency', () => {
    it(
      'parallel operations on one key all succeed and each reopens',
      async () => {
        const s = t.state();
        const n = s.fixtures.concurrency ?? 32;
        const key = await s.sharedKey(chosen.spec, chosen.usage);
        const probe = lifecycleProbe(t, chosen);
        const artefacts = await Promise.all(Array.from({ length: n }, () => probe.use(key)));
        const versions = await Promise.all(artefacts.map((a) => a.reopen()));
        expect(versions).toHaveLength(n);
        expect(versions.every((v, i) => v === artefacts[i]?.keyVersion)).toBe(true);
      },
      timeoutMs,
    );
  });
}
