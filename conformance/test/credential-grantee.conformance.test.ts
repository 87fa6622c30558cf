/**
 * The credential form of the grantee fixture, on the local provider made to grant the way Vault
 * does (support/minting-grants.ts): each grant mints the grantee's credential, and only
 * contextEquals is enforced — so the suite must test contextEquals and check that contextSubset
 * is refused with UnsupportedError. local.conformance.test.ts covers everything else.
 */
import { LOCAL_CAPABILITIES } from '@keyport/local';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type ConformanceFixtures,
  describeProviderConformance,
  planConformance,
  uniqueKeyNames,
} from '../src/index.js';
import { tempKeystore } from './support/local-keystore.js';
import { mintingGrants } from './support/minting-grants.js';

const keystore = tempKeystore('credential');
afterAll(() => keystore.remove());

const notHere = { kind: 'not-emulated', reason: 'local.conformance.test.ts proves it' } as const;
const fixtures: ConformanceFixtures = {
  keyName: uniqueKeyNames('cred'),
  missingKeyUri: () => keystore.missingKeyUri(),
  keySpecs: ['AES_256'],
  proofs: {
    default: notHere,
    keys: { kind: 'real-provider', name: '@keyport/local (minting grants)' },
    encrypt: { kind: 'real-provider', name: '@keyport/local (minting grants)' },
    context: { kind: 'real-provider', name: '@keyport/local (minting grants)' },
    grants: { kind: 'real-provider', name: '@keyport/local (minting grants)' },
    grantExpiry: { kind: 'real-provider', name: '@keyport/local (minting grants)' },
    grantConstraints: { kind: 'real-provider', name: '@keyport/local (minting grants)' },
  },
  grantee: {
    kind: 'credential',
    providerForGrant: async (grant) => {
      if (grant.token === undefined) throw new Error('the grant carries no credential');
      return keystore.open(grant.token);
    },
  },
  grantConstraintKinds: ['contextEquals'],
  clock: { now: keystore.now, advance: keystore.advance },
};
const summaries: string[] = [];

describeProviderConformance({
  name: 'local, minting grants',
  provider: {
    capabilities: LOCAL_CAPABILITIES,
    open: async () => mintingGrants(await keystore.open('owner')),
  },
  fixtures,
  log: (text) => summaries.push(text),
});

describe('the credential-grantee plan', () => {
  it('knows the form and the constraint kinds it tests', () => {
    const plan = planConformance(LOCAL_CAPABILITIES, fixtures);
    expect(plan.granteeForm).toBe('credential');
    expect(plan.grantConstraintKinds).toEqual(['contextEquals']);
    expect(plan.missingFixtures).toEqual([]);
  });

  it('tests both constraint kinds by default, and refuses a fixture enforcing none', () => {
    const { grantConstraintKinds: _, ...rest } = fixtures;
    expect(planConformance(LOCAL_CAPABILITIES, rest).grantConstraintKinds).toEqual([
      'contextEquals',
      'contextSubset',
    ]);
    const none = planConformance(LOCAL_CAPABILITIES, { ...rest, grantConstraintKinds: [] });
    expect(none.missingFixtures).toEqual([
      { capability: 'grantConstraints', fixture: 'grantConstraintKinds (at least one)' },
    ]);
  });

  it('a principal grantee fixture without a kind is the principal form', () => {
    const plan = planConformance(LOCAL_CAPABILITIES, {
      ...fixtures,
      grantee: { newPrincipal: (h) => h, providerFor: () => keystore.open('unused') },
    });
    expect(plan.granteeForm).toBe('principal');
  });
});

afterAll(() => {
  // The suite's own afterAll has run by now and printed through `log`.
  expect(summaries.join('\n')).toContain(
    'grantConstraints   yes (contextEquals only; contextSubset refused with UnsupportedError) — proven by',
  );
});
