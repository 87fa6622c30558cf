import type { Capabilities } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { type ConformanceFixtures, planConformance } from '../src/index.js';

const full: Capabilities = {
  keySpecs: {
    AES_256: ['encrypt_decrypt'],
    RSA_2048: ['encrypt_decrypt', 'sign_verify'],
    EC_P256: ['sign_verify'],
  },
  context: 'native',
  dataKeys: 'native',
  listKeys: true,
  rotation: 'versioned',
  autoRotation: true,
  enableDisable: true,
  scheduledDeletion: 'native',
  destroyVersion: true,
  grants: 'native',
  grantExpiry: 'native',
  grantConstraints: true,
  import: ['RSAES_OAEP_SHA_256'],
  signingAlgorithms: ['RSASSA_PSS_SHA_256', 'ECDSA_SHA_256'],
};
const grantee = { newPrincipal: (h: string) => h, providerFor: () => Promise.reject(new Error('unused')) };
const fixtures: Pick<ConformanceFixtures, 'proofs' | 'grantee' | 'keySpecs'> = {
  proofs: { default: { kind: 'third-party-emulator', name: 'moto 5.2.5' } },
  grantee,
};

describe('planConformance', () => {
  it('exercises every capability a full provider declares, with its specs and algorithms', () => {
    const plan = planConformance(full, fixtures);
    expect(plan.unsupported).toEqual(['mac']);
    expect(plan.exercised.has('grants')).toBe(true);
    expect(plan.specs.map((s) => s.spec)).toEqual(['AES_256', 'RSA_2048', 'EC_P256']);
    expect(plan.signingAlgorithms).toEqual([
      { spec: 'RSA_2048', algorithm: 'RSASSA_PSS_SHA_256' },
      { spec: 'EC_P256', algorithm: 'ECDSA_SHA_256' },
    ]);
    expect(plan.undeclaredSigningAlgorithms).toEqual([
      { spec: 'RSA_2048', algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' },
    ]);
    expect(plan.undeclaredSpecs).toEqual(['RSA_3072', 'RSA_4096', 'EC_P384', 'HMAC_256']);
    expect(plan.undeclaredImportAlgorithms).toEqual([
      'RSAES_OAEP_SHA_1',
      'RSA_AES_KEY_WRAP_SHA_256',
      'RSA_AES_KEY_WRAP_SHA_1',
    ]);
    expect(plan.missingFixtures).toEqual([]);
  });

  it("a provider declaring grants 'none' gets the UnsupportedError checks, and no grant tests", () => {
    const plan = planConformance({ ...full, grants: 'none' }, fixtures);
    expect(plan.unsupported).toEqual(expect.arrayContaining(['grants', 'grantExpiry', 'grantConstraints']));
    expect(plan.exercised.has('grants')).toBe(false);
    expect(plan.exercised.has('grantExpiry')).toBe(false);
  });

  it('capabilities proven by nobody are declared but not exercised, with the reason', () => {
    const plan = planConformance(full, {
      ...fixtures,
      proofs: {
        default: { kind: 'third-party-emulator', name: 'local-kms' },
        grants: { kind: 'not-emulated', reason: 'local-kms has no grants' },
      },
    });
    expect(plan.exercised.has('grants')).toBe(false);
    expect(plan.unsupported).not.toContain('grants');
    expect(plan.notEmulated).toEqual([{ capability: 'grants', reason: 'local-kms has no grants' }]);
  });

  it('grants claimed proven without a grantee fixture is reported as a missing fixture', () => {
    const plan = planConformance(full, { proofs: fixtures.proofs });
    expect(plan.missingFixtures).toEqual([{ capability: 'grants', fixture: 'grantee' }]);
  });

  it('exercises only the fixture key specs the provider declares', () => {
    const plan = planConformance(full, { ...fixtures, keySpecs: ['AES_256', 'HMAC_256'] });
    expect(plan.specs).toEqual([{ spec: 'AES_256', usages: ['encrypt_decrypt'] }]);
    expect(plan.undeclaredSpecs).toContain('HMAC_256');
    expect(plan.signingAlgorithms).toEqual([]);
  });

  it('context and import count as unavailable when nothing can encrypt or nothing is importable', () => {
    const plan = planConformance({ ...full, keySpecs: { EC_P256: ['sign_verify'] }, import: [] }, fixtures);
    expect(plan.unsupported).toEqual(expect.arrayContaining(['encrypt', 'context', 'import']));
    expect(plan.undeclaredImportAlgorithms).toEqual([]);
  });
});
