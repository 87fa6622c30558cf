/**
 * A date a provider reports that is no date (`new Date(NaN)`, a string from a third-party
 * driver) makes that one field of that one key unknown, with the reason in the key's `errors`:
 * it once threw from toISOString and failed the listing of every key of the source.
 */
import type { Capabilities, Grant, KeyInfo } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import {
  checkPolicy,
  collectInventory,
  type InventoryClient,
  type InventoryKey,
  parsePolicyText,
  UNKNOWN,
} from '../src/index.js';

const NOW = '2030-01-01T00:00:00.000Z';
const BAD = new Date(Number.NaN);
const GOOD = new Date('2029-12-01T00:00:00.000Z');
const DATE_ERROR = 'the provider reported a date that is not a valid date';

const key = (name: string, fields: Partial<Record<keyof KeyInfo, unknown>> = {}): KeyInfo =>
  ({
    uri: `acme:${name}`,
    spec: 'AES_256',
    usage: 'encrypt_decrypt',
    state: 'enabled',
    labels: { owner: 'o' },
    createdAt: GOOD,
    primaryVersion: '1',
    versions: [{ version: '1', state: 'enabled', createdAt: GOOD }],
    rotation: { periodDays: 30 },
    ...fields,
  }) as unknown as KeyInfo;

function provider(keys: readonly KeyInfo[], grants: Record<string, readonly Grant[]> = {}): InventoryClient {
  return {
    capabilities: () => ({ autoRotation: true, rotation: 'versioned', grants: 'native' }) as Capabilities,
    async *listKeys() {
      yield* keys;
    },
    describeKey: async (uri: string) => keys.find((k) => k.uri === uri),
    async *listGrants(uri: string): AsyncIterable<Grant> {
      yield* grants[uri] ?? [];
    },
  } as unknown as InventoryClient;
}

const grant = (id: string, fields: Partial<Record<keyof Grant, unknown>>): Grant =>
  ({ id, keyUri: 'acme:x', grantee: 'app', operations: ['encrypt'], ...fields }) as unknown as Grant;

describe('a date that is no date', () => {
  it("is unknown for that field of that key; the source's other keys and fields stand", async () => {
    const inv = await collectInventory(
      provider([
        key('a-created', { createdAt: BAD }),
        key('b-version', { versions: [{ version: '1', state: 'enabled', createdAt: BAD }] }),
        key('c-next', { rotation: { periodDays: 30, nextRotationAt: BAD } }),
        key('d-pending', { state: 'pending_deletion', deletionDate: BAD }),
        key('e-string', { createdAt: '2029-12-01' }),
        key('f-fine'),
      ]),
      { sources: ['acme'], now: () => new Date(NOW) },
    );
    expect(inv.sources).toEqual([{ source: 'acme', keys: 6 }]);
    const by = (name: string) => inv.keys.find((k) => k.uri === `acme:${name}`) as InventoryKey;
    expect(by('a-created')).toMatchObject({
      createdAt: UNKNOWN,
      lastRotatedAt: GOOD.toISOString(),
      errors: [{ field: 'createdAt', code: 'Internal', message: DATE_ERROR }],
    });
    expect(by('b-version')).toMatchObject({
      createdAt: GOOD.toISOString(),
      lastRotatedAt: UNKNOWN,
      errors: [{ field: 'lastRotatedAt', code: 'Internal', message: DATE_ERROR }],
    });
    expect(by('c-next')).toMatchObject({
      rotation: { enabled: true, periodDays: 30, nextRotationAt: UNKNOWN },
      errors: [{ field: 'rotation', code: 'Internal', message: DATE_ERROR }],
    });
    expect(by('d-pending')).toMatchObject({
      pendingDeletionAt: UNKNOWN,
      errors: [{ field: 'pendingDeletionAt', code: 'Internal', message: DATE_ERROR }],
    });
    expect(by('e-string')).toMatchObject({ createdAt: UNKNOWN, errors: [{ field: 'createdAt' }] });
    expect(by('f-fine')).toMatchObject({ createdAt: GOOD.toISOString(), errors: [] });

    // every key is still checked; a rule that needs the missing date answers unknown
    const r = checkPolicy(
      inv,
      parsePolicyText(`
version: 1
rules:
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 60 }
  - { id: window, type: min-pending-deletion-window, severity: high, minDays: 7 }
`),
    );
    expect(r.findings.map((f) => `${f.ruleId} ${f.keyUri} ${f.status}`)).toEqual([
      'window acme:d-pending unknown',
    ]);
    // rotation: the five keys not pending deletion (b-version passes on its creation, 31 days ago)
    expect(r.summary).toMatchObject({ evaluated: 6, passed: 5 });
  });

  it('a grant expiry that is no date makes the grants of that key unknown, never "never expires"', async () => {
    const inv = await collectInventory(
      provider([key('x'), key('y')], {
        'acme:x': [grant('g1', { expiresAt: BAD }), grant('g2', { createdAt: BAD, expiresAt: GOOD })],
        'acme:y': [grant('g3', { createdAt: BAD, expiresAt: GOOD })],
      }),
      { sources: ['acme'], now: () => new Date(NOW) },
    );
    expect(inv.sources).toEqual([{ source: 'acme', keys: 2 }]);
    const [x, y] = inv.keys as [InventoryKey, InventoryKey];
    expect(x.grants.items).toBe(UNKNOWN);
    expect(x.errors.map((e) => e.field)).toContain('grants');
    // a creation date that is no date: that grant's creation is unknown, its expiry still read
    expect(y.grants.items).toEqual([
      expect.objectContaining({ id: 'g3', createdAt: UNKNOWN, expiresAt: GOOD.toISOString() }),
    ]);
    expect(y.errors).toEqual([{ field: 'grants', code: 'Internal', message: DATE_ERROR }]);
    const r = checkPolicy(
      inv,
      parsePolicyText(
        'version: 1\nrules:\n  - { id: life, type: max-grant-lifetime, severity: high, maxDays: 90 }\n',
      ),
    );
    expect(r.findings.map((f) => `${f.keyUri} ${f.grantId ?? '-'} ${f.status}`)).toEqual([
      'acme:x - unknown',
      'acme:y g3 unknown',
    ]);
  });
});

describe('a date after the time of the check', () => {
  const FUTURE = new Date('2099-01-01T00:00:00.000Z');
  const SKEWED = new Date(Date.parse(NOW) + 3_600_000); // an hour ahead: ordinary clock skew
  const OLD = new Date('2020-01-01T00:00:00.000Z');
  const versions = (createdAt: Date) => [{ version: '1', state: 'enabled', createdAt }];

  it('makes the age it gives unknown, never young enough to pass every limit', async () => {
    const inv = await collectInventory(
      provider([
        key('rotated-in-2099', { createdAt: OLD, versions: versions(FUTURE) }),
        key('created-in-2099', { createdAt: FUTURE, versions: versions(FUTURE) }),
        key('skewed', { createdAt: OLD, versions: versions(SKEWED) }),
      ]),
      { sources: ['acme'], now: () => new Date(NOW) },
    );
    const rules = `
version: 1
rules:
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 60 }
  - { id: unused, type: max-unused-days, severity: high, maxDays: 30 }
`;
    // The audit log (as a reader of it would fill in) claims a use in 2099 for every key.
    const withUse = {
      ...inv,
      auditLogSince: OLD.toISOString(),
      keys: inv.keys.map((k) => ({
        ...k,
        lastUsedAt: k.uri.endsWith('skewed') ? SKEWED.toISOString() : FUTURE.toISOString(),
      })),
    };
    const r = checkPolicy(withUse, parsePolicyText(rules));
    expect(r.findings.map((f) => `${f.ruleId} ${f.keyUri} ${f.status}`).sort()).toEqual([
      'rotation acme:created-in-2099 unknown',
      'rotation acme:rotated-in-2099 unknown',
      'unused acme:created-in-2099 unknown',
      'unused acme:rotated-in-2099 unknown',
    ]);
    const rotated = r.findings.find((f) => f.ruleId === 'rotation' && f.keyUri === 'acme:rotated-in-2099');
    expect(rotated?.message).toMatch(/after the check's time: its age is unknown/);
    // within a day of the check's time it is believed (clocks disagree by minutes)
    expect(r.summary).toMatchObject({ evaluated: 6, passed: 2 });
  });
});
