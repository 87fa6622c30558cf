/**
 * Grants allow exactly what they say — these operations, under these context constraints — and
 * nothing once they expire or are revoked. Needs the grantee fixture (a client acting as another
 * principal).
 */
import { randomBytes } from 'node:crypto';
import type { EncryptionContext, Grant, KeyInfo, Keyport } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { specsFor } from '../capability-plan.js';
import { bytesEqual, collect, expectError } from '../expect-error.js';
import type { SuiteState } from '../suite-state.js';
import { SYMMETRIC_SPEC, type Topic } from './registrar.js';

async function sealFor(s: SuiteState, key: KeyInfo, context: EncryptionContext) {
  const plaintext = randomBytes(32);
  const { ciphertext } = await s.client.encrypt(key.uri, plaintext, { context });
  return { plaintext, ciphertext };
}

async function opens(
  grantee: Keyport,
  key: KeyInfo,
  sealed: { plaintext: Uint8Array; ciphertext: Uint8Array },
  context: EncryptionContext,
) {
  const { plaintext } = await grantee.decrypt(key.uri, sealed.ciphertext, { context });
  expect(bytesEqual(plaintext, sealed.plaintext)).toBe(true);
}

export function registerGrantTests(t: Topic): void {
  const { plan, timeoutMs } = t;
  if (!plan.exercised.has('grants') || plan.missingFixtures.some((m) => m.capability === 'grants')) return;
  const specs = specsFor(plan, 'encrypt_decrypt');
  const spec = specs.includes(SYMMETRIC_SPEC) ? SYMMETRIC_SPEC : specs[0];
  if (spec === undefined) return;
  const ctx = spec === SYMMETRIC_SPEC && plan.exercised.has('context') ? { tenant: 'acme' } : {};
  const newKey = (hint: string) => t.state().createKey(spec, { usage: 'encrypt_decrypt', hint });

  describe('grants', () => {
    it(
      'a principal without a grant is refused (AccessDenied)',
      async () => {
        const s = t.state();
        const key = await newKey('grant-none');
        const { client } = await s.asGrantee('nobody');
        await expectError(client.encrypt(key.uri, randomBytes(16), { context: ctx }), 'AccessDenied');
        const sealed = await sealFor(s, key, ctx);
        await expectError(client.decrypt(key.uri, sealed.ciphertext, { context: ctx }), 'AccessDenied');
      },
      timeoutMs,
    );

    it(
      'an encrypt grant allows encrypt and nothing else; it is listed, and revoking it ends it',
      async () => {
        const s = t.state();
        const key = await newKey('grant-encrypt');
        const { principal, client } = await s.asGrantee('encryptor');
        const grant = await s.client.createGrant(key.uri, {
          grantee: principal,
          operations: ['encrypt'],
          name: 'enc',
        });
        expect(grant).toMatchObject({ grantee: principal, operations: ['encrypt'] });

        const plaintext = randomBytes(32);
        const { ciphertext } = await client.encrypt(key.uri, plaintext, { context: ctx });
        expect(
          bytesEqual((await s.client.decrypt(key.uri, ciphertext, { context: ctx })).plaintext, plaintext),
        ).toBe(true);
        await expectError(client.decrypt(key.uri, ciphertext, { context: ctx }), 'AccessDenied');
        await expectError(client.disableKey(key.uri), 'AccessDenied');
        if (plan.exercised.has('dataKeys'))
          await expectError(client.generateDataKey(key.uri, { context: ctx }), 'AccessDenied');

        const listed = await collect(s.client.listGrants(key.uri));
        expect(listed.map((g: Grant) => g.id)).toContain(grant.id);
        await s.client.revokeGrant(key.uri, grant.id);
        await expectError(client.encrypt(key.uri, plaintext, { context: ctx }), 'AccessDenied');
        expect((await collect(s.client.listGrants(key.uri))).map((g) => g.id)).not.toContain(grant.id);
      },
      timeoutMs,
    );

    it(
      'revoking a grant that does not exist fails with NotFound',
      async () => {
        const s = t.state();
        const key = await newKey('grant-revoke-missing');
        await expectError(s.client.revokeGrant(key.uri, 'no-such-grant-0000'), 'NotFound');
      },
      timeoutMs,
    );

    if (plan.exercised.has('grantConstraints') && spec === SYMMETRIC_SPEC && plan.exercised.has('context')) {
      it(
        'contextEquals allows exactly that context; contextSubset allows any context containing its pairs',
        async () => {
          const s = t.state();
          const key = await newKey('grant-constraints');
          const exact = await s.asGrantee('exact');
          const subset = await s.asGrantee('subset');
          await s.client.createGrant(key.uri, {
            grantee: exact.principal,
            operations: ['decrypt'],
            constraints: { contextEquals: { tenant: 'acme' } },
          });
          await s.client.createGrant(key.uri, {
            grantee: subset.principal,
            operations: ['decrypt'],
            constraints: { contextSubset: { tenant: 'acme' } },
          });
          const equal = { tenant: 'acme' };
          const wider = { tenant: 'acme', dept: 'ops' };
          const other = { tenant: 'globex' };
          const unrelated = { dept: 'ops' };
          const sealed = {
            equal: await sealFor(s, key, equal),
            wider: await sealFor(s, key, wider),
            other: await sealFor(s, key, other),
            unrelated: await sealFor(s, key, unrelated),
          };
          await opens(exact.client, key, sealed.equal, equal);
          await expectError(
            exact.client.decrypt(key.uri, sealed.wider.ciphertext, { context: wider }),
            'AccessDenied',
          );
          await expectError(
            exact.client.decrypt(key.uri, sealed.other.ciphertext, { context: other }),
            'AccessDenied',
          );
          await opens(subset.client, key, sealed.equal, equal);
          await opens(subset.client, key, sealed.wider, wider);
          await expectError(
            subset.client.decrypt(key.uri, sealed.other.ciphertext, { context: other }),
            'AccessDenied',
          );
          await expectError(
            subset.client.decrypt(key.uri, sealed.unrelated.ciphertext, { context: unrelated }),
            'AccessDenied',
          );
          await expectError(
            subset.client.encrypt(key.uri, randomBytes(8), { context: equal }),
            'AccessDenied',
          );
        },
        timeoutMs,
      );
    }

    if (plan.exercised.has('grantExpiry')) {
      it(
        'an expired grant allows nothing',
        async () => {
          const s = t.state();
          const key = await newKey('grant-expiry');
          const { principal, client } = await s.asGrantee('expiring');
          const clock = s.fixtures.clock;
          const lifetime = clock === undefined ? (s.fixtures.grantExpiryMs ?? 1500) : 60_000;
          const now = clock?.now() ?? new Date();
          await s.client.createGrant(key.uri, {
            grantee: principal,
            operations: ['encrypt'],
            expiresAt: new Date(now.getTime() + lifetime),
          });
          await client.encrypt(key.uri, randomBytes(8), { context: ctx });
          if (clock === undefined) await new Promise((resolve) => setTimeout(resolve, lifetime + 250));
          else await clock.advance(lifetime + 1000);
          await expectError(client.encrypt(key.uri, randomBytes(8), { context: ctx }), 'AccessDenied');
        },
        timeoutMs,
      );
    }
  });
}
