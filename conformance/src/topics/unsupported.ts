/**
 * Every capability declared unavailable throws UnsupportedError — never a silent no-op. For the
 * operations core guards, it must throw before the provider is called at all.
 */
import { randomBytes } from 'node:crypto';
import {
  KEY_USAGES,
  type KeyOperations,
  type NeutralOperation as Operation,
  type UnsupportedError,
  USAGES_BY_SPEC,
} from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { CORE_CHECKED_OPERATIONS, specsFor } from '../capability-plan.js';
import { collect, expectError } from '../expect-error.js';
import type { SuiteState } from '../suite-state.js';
import { SYMMETRIC_SPEC, type Topic } from './registrar.js';

/** One call of `op` through the client with plausible arguments; core must refuse it. */
function callOperation(client: KeyOperations, scheme: string, uri: string, op: Operation): Promise<unknown> {
  const data = randomBytes(16);
  switch (op) {
    case 'createKey':
      return client.createKey(scheme, { name: 'unsupported', spec: SYMMETRIC_SPEC });
    case 'describeKey':
      return client.describeKey(uri);
    case 'listKeys':
      return collect(client.listKeys(scheme));
    case 'rotateKey':
      return client.rotateKey(uri);
    case 'setRotationPolicy':
      return client.setRotationPolicy(uri, { periodDays: 30 });
    case 'enableKey':
      return client.enableKey(uri);
    case 'disableKey':
      return client.disableKey(uri);
    case 'scheduleKeyDeletion':
      return client.scheduleKeyDeletion(uri, { days: 7 });
    case 'cancelKeyDeletion':
      return client.cancelKeyDeletion(uri);
    case 'destroyKeyVersion':
      return client.destroyKeyVersion({ uri, version: '1' });
    case 'encrypt':
      return client.encrypt(uri, data);
    case 'decrypt':
      return client.decrypt(uri, data);
    case 'generateDataKey':
      return client.generateDataKey(uri);
    case 'sign':
      return client.sign(uri, data);
    case 'verify':
      return client.verify(uri, data, data, { algorithm: 'ECDSA_SHA_256' });
    case 'mac':
      return client.mac(uri, data);
    case 'verifyMac':
      return client.verifyMac(uri, data, data);
    case 'getPublicKey':
      return client.getPublicKey(uri);
    case 'createGrant':
      return client.createGrant(uri, { grantee: 'someone', operations: ['encrypt'] });
    case 'listGrants':
      return collect(client.listGrants(uri));
    case 'revokeGrant':
      return client.revokeGrant(uri, 'grant');
    case 'getImportParameters':
      return client.getImportParameters(uri, {});
    case 'importKeyMaterial':
      return client.importKeyMaterial(uri, { algorithm: 'RSAES_OAEP_SHA_256', wrappedMaterial: data });
  }
}

export function registerUnsupportedTests(t: Topic): void {
  const { plan, timeoutMs } = t;
  const encryptSpecs = specsFor(plan, 'encrypt_decrypt');
  const symmetric = encryptSpecs.includes(SYMMETRIC_SPEC);

  describe('declared unavailable → UnsupportedError', () => {
    for (const capability of plan.unsupported) {
      for (const op of CORE_CHECKED_OPERATIONS[capability] ?? []) {
        it(
          `${capability}: ${op} throws UnsupportedError before calling the provider`,
          async () => {
            const s = t.state();
            const before = s.instrumented.calls.length;
            // A key that does not exist: a provider call would answer NotFound, core must answer first.
            const error = await expectError(
              callOperation(s.client, s.scheme, s.fixtures.missingKeyUri(), op),
              'Unsupported',
            );
            expect((error as UnsupportedError).capability).toBe(capability);
            expect(s.instrumented.calls.slice(before)).not.toContain(op);
          },
          timeoutMs,
        );
      }
    }

    if (plan.unsupported.includes('context') && symmetric) {
      it(
        'context: encrypting with an encryption context throws UnsupportedError (never silently ignored)',
        async () => {
          const s = t.state();
          const key = await s.sharedKey(SYMMETRIC_SPEC, 'encrypt_decrypt');
          await expectError(
            s.client.encrypt(key.uri, randomBytes(8), { context: { a: 'b' } }),
            'Unsupported',
          );
        },
        timeoutMs,
      );
    }

    const grantsAvailable = !plan.unsupported.includes('grants') && encryptSpecs[0] !== undefined;
    // Grants can be listed only where the grant tests run (the target proves grants).
    const grantsListed = plan.exercised.has('grants');
    const countGrants = async (s: SuiteState, uri: string): Promise<number | undefined> =>
      grantsListed ? (await collect(s.client.listGrants(uri))).length : undefined;
    if (grantsAvailable && plan.unsupported.includes('grantExpiry')) {
      it(
        'grantExpiry: a grant with expiresAt throws UnsupportedError and grants nothing',
        async () => {
          const s = t.state();
          const key = await s.sharedKey(encryptSpecs[0] ?? SYMMETRIC_SPEC, 'encrypt_decrypt');
          const grantee = s.granteeName('expiry');
          const expiresAt = new Date(Date.now() + 3_600_000);
          const before = await countGrants(s, key.uri);
          await expectError(
            s.client.createGrant(key.uri, { grantee, operations: ['encrypt'], expiresAt }),
            'Unsupported',
          );
          // Refused means nothing was granted, not a grant that never expires.
          expect(await countGrants(s, key.uri)).toBe(before);
        },
        timeoutMs,
      );
    }
    if (grantsAvailable && plan.unsupported.includes('grantConstraints')) {
      it(
        'grantConstraints: a grant with context constraints throws UnsupportedError and grants nothing',
        async () => {
          const s = t.state();
          const key = await s.sharedKey(encryptSpecs[0] ?? SYMMETRIC_SPEC, 'encrypt_decrypt');
          const grantee = s.granteeName('constraints');
          const constraints = { contextEquals: { tenant: 'acme' } };
          const before = await countGrants(s, key.uri);
          await expectError(
            s.client.createGrant(key.uri, { grantee, operations: ['decrypt'], constraints }),
            'Unsupported',
          );
          // Refused means nothing was granted, not a grant without its constraint.
          expect(await countGrants(s, key.uri)).toBe(before);
        },
        timeoutMs,
      );
    }

    for (const spec of plan.undeclaredSpecs) {
      it(
        `keys: creating an undeclared ${spec} key throws UnsupportedError`,
        async () => {
          const s = t.state();
          await expectError(
            s.client.createKey(s.scheme, { name: s.fixtures.keyName(`undeclared-${spec}`), spec }),
            'Unsupported',
          );
        },
        timeoutMs,
      );
    }

    for (const { spec, usages } of plan.specs) {
      for (const usage of KEY_USAGES.filter((u) => USAGES_BY_SPEC[spec].includes(u) && !usages.includes(u))) {
        it(
          `keys: a ${spec} key for undeclared usage ${usage} throws UnsupportedError`,
          async () => {
            const s = t.state();
            await expectError(s.createKey(spec, { usage, hint: `undeclared-${usage}` }), 'Unsupported');
          },
          timeoutMs,
        );
      }
    }

    for (const { spec, algorithm } of plan.undeclaredSigningAlgorithms) {
      it(
        `sign: undeclared ${algorithm} on a ${spec} key throws UnsupportedError`,
        async () => {
          const s = t.state();
          const key = await s.sharedKey(spec, 'sign_verify');
          await expectError(s.client.sign(key.uri, randomBytes(32), { algorithm }), 'Unsupported');
        },
        timeoutMs,
      );
    }

    if (plan.undeclaredImportAlgorithms.length > 0 && symmetric) {
      it(
        `import: undeclared wrapping algorithms (${plan.undeclaredImportAlgorithms.join(', ')}) throw UnsupportedError`,
        async () => {
          const s = t.state();
          const key = await s.createKey(SYMMETRIC_SPEC, {
            usage: 'encrypt_decrypt',
            external: true,
            hint: 'import-alg',
          });
          for (const algorithm of plan.undeclaredImportAlgorithms) {
            await expectError(s.client.getImportParameters(key.uri, { algorithm }), 'Unsupported');
          }
        },
        timeoutMs,
      );
    }
  });
}
