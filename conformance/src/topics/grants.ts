/**
 * Grants allow exactly what they say — these operations, under these context constraints — and
 * nothing once they expire or are revoked. Needs the grantee fixture, in either form: a
 * principal that exists before the grant, or a credential the grant itself mints (Vault).
 */
import { randomBytes } from 'node:crypto';
import type { EncryptionContext, Grant, KeyInfo, Keyport, UnsupportedError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { specsFor } from '../capability-plan.js';
import { bytesEqual, collect, expectError } from '../expect-error.js';
import type { SuiteState } from '../suite-state.js';
import { SYMMETRIC_SPEC, type Topic } from './registrar.js';

/** Real-time waits past a grant's expiry allow this much for the provider to notice (ms). */
const EXPIRY_MARGIN_MS = 500;

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

/** A decrypt grant under `constraints`, and the client acting under it. */
async function constrainedDecryptor(
  s: SuiteState,
  key: KeyInfo,
  hint: string,
  constraints: Grant['constraints'],
): Promise<Keyport> {
  const grantee = await s.grantee(hint);
  const grant = await s.client.createGrant(key.uri, {
    grantee: grantee.name,
    operations: ['decrypt'],
    ...(constraints !== undefined ? { constraints } : {}),
  });
  return grantee.clientFor(grant);
}

export function registerGrantTests(t: Topic): void {
  const { plan, timeoutMs } = t;
  if (!plan.exercised.has('grants') || plan.missingFixtures.some((m) => m.capability === 'grants')) return;
  const specs = specsFor(plan, 'encrypt_decrypt');
  const spec = specs.includes(SYMMETRIC_SPEC) ? SYMMETRIC_SPEC : specs[0];
  if (spec === undefined) return;
  const ctx = spec === SYMMETRIC_SPEC && plan.exercised.has('context') ? { tenant: 'acme' } : {};
  const newKey = (hint: string) => t.state().createKey(spec, { usage: 'encrypt_decrypt', hint });
  const credential = plan.granteeForm === 'credential';

  describe('grants', () => {
    it(
      credential
        ? 'a credential granted on another key is refused on this one (AccessDenied)'
        : 'a principal without a grant is refused (AccessDenied)',
      async () => {
        const s = t.state();
        const key = await newKey('grant-none');
        const client = await s.stranger('nobody', key);
        await expectError(client.encrypt(key.uri, randomBytes(16), { context: ctx }), 'AccessDenied');
        const sealed = await sealFor(s, key, ctx);
        await expectError(client.decrypt(key.uri, sealed.ciphertext, { context: ctx }), 'AccessDenied');
      },
      timeoutMs,
    );

    it(
      'an encrypt grant allows its grantee encrypt and nothing else, and lets no other principal in; it is listed, and revoking it ends it',
      async () => {
        const s = t.state();
        const key = await newKey('grant-encrypt');
        const grantee = await s.grantee('encryptor');
        const grant = await s.client.createGrant(key.uri, {
          grantee: grantee.name,
          operations: ['encrypt'],
          name: 'enc',
        });
        expect(grant).toMatchObject({ grantee: grantee.name, operations: ['encrypt'] });
        const client = await grantee.clientFor(grant);

        const plaintext = randomBytes(32);
        const { ciphertext } = await client.encrypt(key.uri, plaintext, { context: ctx });
        // The grant is the grantee's alone: while it is live, a principal it does not name is still refused.
        const bystander = await s.stranger('bystander', key);
        await expectError(bystander.encrypt(key.uri, plaintext, { context: ctx }), 'AccessDenied');
        expect(
          bytesEqual((await s.client.decrypt(key.uri, ciphertext, { context: ctx })).plaintext, plaintext),
        ).toBe(true);
        await expectError(client.decrypt(key.uri, ciphertext, { context: ctx }), 'AccessDenied');
        await expectError(client.disableKey(key.uri), 'AccessDenied');
        // Emulated data keys are an encrypt of random bytes, which an encrypt grant allows.
        if (plan.exercised.has('dataKeys') && s.capabilities.dataKeys === 'native')
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
      registerConstraintTests(t, newKey);
    }

    if (plan.exercised.has('grantExpiry')) {
      it(
        'an expired grant allows nothing',
        async () => {
          const s = t.state();
          const key = await newKey('grant-expiry');
          const grantee = await s.grantee('expiring');
          const clock = s.fixtures.clock;
          const lifetime = clock === undefined ? (s.fixtures.grantExpiryMs ?? 1500) : 60_000;
          const expiresAt = new Date((clock?.now() ?? new Date()).getTime() + lifetime);
          const grant = await s.client.createGrant(key.uri, {
            grantee: grantee.name,
            operations: ['encrypt'],
            expiresAt,
          });
          const client = await grantee.clientFor(grant);
          await client.encrypt(key.uri, randomBytes(8), { context: ctx });
          if (clock === undefined) {
            const remaining = Math.max(0, expiresAt.getTime() - Date.now());
            await new Promise((resolve) => setTimeout(resolve, remaining + EXPIRY_MARGIN_MS));
          } else await clock.advance(lifetime + 1000);
          await expectError(client.encrypt(key.uri, randomBytes(8), { context: ctx }), 'AccessDenied');
        },
        timeoutMs,
      );
    }
  });
}

/** contextEquals / contextSubset: each kind the provider enforces allows exactly what it says; the others are refused. */
function registerConstraintTests(t: Topic, newKey: (hint: string) => Promise<KeyInfo>): void {
  const { plan, timeoutMs } = t;
  const equal = { tenant: 'acme' };
  const wider = { tenant: 'acme', dept: 'ops' };
  const other = { tenant: 'globex' };
  const unrelated = { dept: 'ops' };
  const sealAll = async (s: SuiteState, key: KeyInfo) => ({
    equal: await sealFor(s, key, equal),
    wider: await sealFor(s, key, wider),
    other: await sealFor(s, key, other),
    unrelated: await sealFor(s, key, unrelated),
  });

  if (plan.grantConstraintKinds.includes('contextEquals')) {
    it(
      'a contextEquals grant allows exactly that context, and only its operations',
      async () => {
        const s = t.state();
        const key = await newKey('grant-equals');
        const exact = await constrainedDecryptor(s, key, 'exact', { contextEquals: equal });
        const sealed = await sealAll(s, key);
        await opens(exact, key, sealed.equal, equal);
        for (const [context, { ciphertext }] of [
          [wider, sealed.wider],
          [other, sealed.other],
          [unrelated, sealed.unrelated],
        ] as const) {
          await expectError(exact.decrypt(key.uri, ciphertext, { context }), 'AccessDenied');
        }
        await expectError(exact.encrypt(key.uri, randomBytes(8), { context: equal }), 'AccessDenied');
      },
      timeoutMs,
    );
  }

  if (plan.grantConstraintKinds.includes('contextSubset')) {
    it(
      'a contextSubset grant allows any context containing its pairs, and only its operations',
      async () => {
        const s = t.state();
        const key = await newKey('grant-subset');
        const subset = await constrainedDecryptor(s, key, 'subset', { contextSubset: equal });
        const sealed = await sealAll(s, key);
        await opens(subset, key, sealed.equal, equal);
        await opens(subset, key, sealed.wider, wider);
        await expectError(
          subset.decrypt(key.uri, sealed.other.ciphertext, { context: other }),
          'AccessDenied',
        );
        await expectError(
          subset.decrypt(key.uri, sealed.unrelated.ciphertext, { context: unrelated }),
          'AccessDenied',
        );
        await expectError(subset.encrypt(key.uri, randomBytes(8), { context: equal }), 'AccessDenied');
      },
      timeoutMs,
    );
  }

  for (const kind of (['contextEquals', 'contextSubset'] as const).filter(
    (k) => !plan.grantConstraintKinds.includes(k),
  )) {
    it(
      `${kind}: a grant with it throws UnsupportedError (the provider enforces ${plan.grantConstraintKinds.join(', ')} only)`,
      async () => {
        const s = t.state();
        const key = await newKey(`grant-${kind}-refused`);
        const before = (await collect(s.client.listGrants(key.uri))).length;
        const error = await expectError(
          s.client.createGrant(key.uri, {
            grantee: s.granteeName(kind),
            operations: ['decrypt'],
            constraints: { [kind]: equal },
          }),
          'Unsupported',
        );
        expect((error as UnsupportedError).capability).toMatch(/^grantConstraints/);
        // Refused means nothing was granted, not a grant without its constraint.
        expect(await collect(s.client.listGrants(key.uri))).toHaveLength(before);
      },
      timeoutMs,
    );
  }
}
