/**
 * A rule whose `match.providers` names a source the inventory has none of checks no key there: a
 * misspelt name made the rule vacuous and the result compliant, and only the CLI said so (from
 * its configuration). The result says so to every caller, as a note, not a finding.
 */
import { describe, expect, it } from 'vitest';
import { checkPolicy, type Inventory, type InventoryKey, parsePolicyText, UNKNOWN } from '../src/index.js';

const key: InventoryKey = {
  uri: 'aws-kms+prod://arn:aws:kms:us-east-1:111122223333:key/k',
  provider: 'aws-kms+prod',
  algorithm: 'AES_256',
  keyBits: 256,
  purpose: 'encrypt_decrypt',
  protection: 'hsm',
  state: 'enabled',
  createdAt: '2029-12-01T00:00:00.000Z',
  lastRotatedAt: '2029-12-01T00:00:00.000Z',
  rotation: { enabled: true, periodDays: 365, nextRotationAt: UNKNOWN },
  versions: UNKNOWN,
  pendingDeletionAt: null,
  grants: { count: 0, earliestExpiry: null, latestExpiry: null, items: [] },
  labels: {},
  origin: 'provider',
  lastUsedAt: UNKNOWN,
  errors: [],
};

const inventory: Inventory = {
  generatedAt: '2030-01-01T00:00:00.000Z',
  sources: [
    { source: 'aws-kms+prod', keys: 1 },
    { source: 'local', keys: 0 },
  ],
  auditLogSince: UNKNOWN,
  keys: [key],
};

describe('a rule matching a provider the inventory does not have', () => {
  it('is named in the result with the providers it missed; the findings are unchanged', () => {
    const r = checkPolicy(
      inventory,
      parsePolicyText(`
version: 1
rules:
  - { id: owner, type: owner-label, severity: low, match: { providers: [aws-kms+dr] } }
  - { id: hsm, type: required-protection, severity: high, protection: [hsm], match: { providers: [local, aws-kms+prod, gcp-kms] } }
  - { id: everywhere, type: owner-label, severity: low }
`),
    );
    expect(r.unmatchedProviders).toEqual([
      { ruleId: 'owner', providers: ['aws-kms+dr'] },
      { ruleId: 'hsm', providers: ['gcp-kms'] },
    ]);
    expect(r.findings.map((f) => f.ruleId)).toEqual(['everywhere']);
  });

  it('is absent when every named provider is in the inventory (an empty source included)', () => {
    const r = checkPolicy(
      inventory,
      parsePolicyText(
        'version: 1\nrules:\n  - { id: owner, type: owner-label, severity: low, match: { providers: [local, aws-kms+prod] } }\n',
      ),
    );
    expect('unmatchedProviders' in r).toBe(false);
  });
});
