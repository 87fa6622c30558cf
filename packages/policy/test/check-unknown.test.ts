/**
 * Unknown is never compliant: every rule over a key whose fields the provider could not report,
 * and over a source whose listing failed, gives an `unknown` finding. Also AWS KMS on moto, where
 * versions are not reported (the date of the material in use is, from ListKeyRotations).
 */
import { describe, expect, it } from 'vitest';
import {
  checkPolicy,
  collectInventory,
  type Inventory,
  type InventoryGrant,
  type InventoryKey,
  parsePolicyText,
  UNKNOWN,
} from '../src/index.js';
import { client, motoProvider, unique } from './support/targets.js';

const EVERY_RULE = parsePolicyText(`
version: 1
rules:
  - { type: max-rotation-period, severity: high, maxDays: 365 }
  - { type: required-protection, severity: critical, protection: [hsm] }
  - { type: max-grant-lifetime, severity: high, maxDays: 30 }
  - { type: grant-context-constraint, severity: medium }
  - { type: max-unused-days, severity: low, maxDays: 90 }
`);

const blind: InventoryKey = {
  uri: 'gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k',
  provider: 'gcp-kms',
  algorithm: 'AES_256',
  keyBits: 256,
  purpose: 'encrypt_decrypt',
  protection: UNKNOWN,
  state: 'enabled',
  createdAt: UNKNOWN,
  lastRotatedAt: UNKNOWN,
  rotation: { enabled: UNKNOWN, periodDays: UNKNOWN, nextRotationAt: UNKNOWN },
  versions: UNKNOWN,
  pendingDeletionAt: null,
  grants: { count: UNKNOWN, earliestExpiry: UNKNOWN, latestExpiry: UNKNOWN, items: UNKNOWN },
  labels: {},
  origin: UNKNOWN,
  lastUsedAt: UNKNOWN,
  errors: [],
};

describe('unknown fields', () => {
  it('every rule reading an unknown field answers unknown, none passes', () => {
    const inv: Inventory = {
      generatedAt: '2030-01-01T00:00:00.000Z',
      sources: [{ source: 'gcp-kms', keys: 1 }],
      auditLogSince: UNKNOWN,
      keys: [blind],
    };
    const r = checkPolicy(inv, EVERY_RULE);
    expect(r.findings.map((f) => `${f.ruleId} ${f.status}`)).toEqual([
      'max-rotation-period unknown',
      'required-protection unknown',
      'max-grant-lifetime unknown',
      'grant-context-constraint unknown',
      'max-unused-days unknown',
    ]);
    expect(r.summary.passed).toBe(0);
  });

  it('a grant whose creation time is unknown: unknown unless even its remaining life breaks the limit', () => {
    const grant = {
      id: 'g',
      grantee: 'x',
      operations: ['encrypt'],
      createdAt: UNKNOWN,
      constrained: true,
    } as const;
    const key: InventoryKey = {
      ...blind,
      grants: {
        count: 2,
        earliestExpiry: UNKNOWN,
        latestExpiry: UNKNOWN,
        items: [
          { ...grant, id: 'short', expiresAt: '2030-01-10T00:00:00.000Z' },
          { ...grant, id: 'long', expiresAt: '2030-06-01T00:00:00.000Z' },
        ],
      },
    };
    const inv: Inventory = {
      generatedAt: '2030-01-01T00:00:00.000Z',
      sources: [],
      auditLogSince: UNKNOWN,
      keys: [key],
    };
    const r = checkPolicy(
      inv,
      parsePolicyText('{"version":1,"rules":[{"type":"max-grant-lifetime","severity":"high","maxDays":30}]}'),
    );
    expect(r.findings.map((f) => `${f.grantId} ${f.status}`)).toEqual(['short unknown', 'long violation']);
  });

  it('a grant under a condition keyport does not model: its expiry unknown, not "never expires"', () => {
    const grant = {
      grantee: 'user:a@example.com',
      operations: ['encrypt'],
      createdAt: '2030-01-01T00:00:00.000Z',
      constrained: false,
      expiresAt: null,
    } as const;
    const key: InventoryKey = {
      ...blind,
      grants: {
        count: 2,
        earliestExpiry: null,
        latestExpiry: null,
        items: [
          // An IAM condition edited outside keyport: it may well end the grant.
          {
            ...grant,
            id: 'edited',
            unmodeledConditions: ['request.time < timestamp("2030-01-05T00:00:00Z")'],
          },
          { ...grant, id: 'open' },
        ],
      },
    };
    const inv: Inventory = {
      generatedAt: '2030-01-02T00:00:00.000Z',
      sources: [],
      auditLogSince: UNKNOWN,
      keys: [key],
    };
    const r = checkPolicy(
      inv,
      parsePolicyText('{"version":1,"rules":[{"type":"max-grant-lifetime","severity":"high","maxDays":30}]}'),
    );
    expect(r.findings.map((f) => `${f.grantId} ${f.status}`)).toEqual(['edited unknown', 'open violation']);
    expect(r.findings[0]?.message).toMatch(/condition keyport does not model/);
  });

  it('a date that is no date (an inventory read back from JSON, or built in code) is unknown, never a pass', () => {
    // Each rule below passed these keys: every comparison with NaN is false. ("Dec 2099 maybe"
    // is even a date to V8's lenient Date.parse; the inventory's dates are ISO-8601.)
    const dated: InventoryKey = {
      ...blind,
      protection: 'software',
      createdAt: '2020-01-01T00:00:00.000Z',
      lastRotatedAt: '2019-13-45',
      rotation: { enabled: true, periodDays: 90, nextRotationAt: null },
      grants: {
        count: 1,
        earliestExpiry: 'Dec 2099 maybe',
        latestExpiry: 'Dec 2099 maybe',
        items: [
          {
            id: 'g',
            grantee: 'x',
            operations: ['encrypt'],
            createdAt: '2029-12-31T00:00:00.000Z',
            expiresAt: 'Dec 2099 maybe',
            constrained: true,
          },
        ],
      },
      lastUsedAt: 'yesterday',
    };
    const deleting: InventoryKey = {
      ...blind,
      uri: `${blind.uri}-deleting`,
      state: 'pending_deletion',
      pendingDeletionAt: 'tomorrow',
    };
    const inv: Inventory = {
      generatedAt: '2030-01-01T00:00:00.000Z',
      sources: [{ source: 'gcp-kms', keys: 2 }],
      auditLogSince: '2020-01-01T00:00:00.000Z',
      auditUnmatched: [],
      keys: [dated, deleting],
    };
    const policy = parsePolicyText(`
version: 1
rules:
  - { type: max-rotation-period, severity: high, maxDays: 365 }
  - { type: max-grant-lifetime, severity: high, maxDays: 30 }
  - { type: min-pending-deletion-window, severity: high, minDays: 7 }
  - { type: max-unused-days, severity: low, maxDays: 90 }
`);
    const r = checkPolicy(inv, policy);
    expect(r.findings.map((f) => `${f.ruleId} ${f.status}: ${f.message}`)).toEqual([
      'max-rotation-period unknown: rotates every 90 days, but when its current material was made is not reported (the key is 3653 days old; limit 365)',
      'max-grant-lifetime unknown: grant g: its expiry is not a date, lifetime unknown',
      'min-pending-deletion-window unknown: pending deletion, but the deletion date is not reported',
      'max-unused-days unknown: the last use recorded is not a date',
    ]);
    expect(r.summary.passed).toBe(0);
    // The same keys with ISO dates are judged.
    const iso = checkPolicy(
      {
        ...inv,
        keys: [
          {
            ...dated,
            lastRotatedAt: '2020-01-01T00:00:00.000Z',
            grants: {
              ...dated.grants,
              items: [
                {
                  ...(dated.grants.items as InventoryGrant[])[0],
                  expiresAt: '2099-12-01T00:00:00Z',
                } as InventoryGrant,
              ],
            },
            lastUsedAt: '2029-12-31T00:00:00+01:00',
          },
          { ...deleting, pendingDeletionAt: '+002030-01-02T00:00:00.000Z' },
        ],
      },
      policy,
    );
    expect(iso.findings.map((f) => `${f.ruleId} ${f.status}`)).toEqual([
      'max-rotation-period violation',
      'max-grant-lifetime violation',
      'min-pending-deletion-window violation',
    ]);
    // The inventory's own time is what ages are measured against: one that is no date is refused.
    expect(() => checkPolicy({ ...inv, generatedAt: 'now' }, policy)).toThrow(
      expect.objectContaining({
        code: 'InvalidArgument',
        message: expect.stringMatching(/^inventory\.generatedAt: /),
      }),
    );
    expect(
      checkPolicy({ ...inv, generatedAt: 'now' }, policy, { now: new Date(inv.generatedAt) }).findings,
    ).toHaveLength(4);
  });

  it('a source that could not be listed gives one unknown finding per rule', () => {
    const inv: Inventory = {
      generatedAt: '2030-01-01T00:00:00.000Z',
      sources: [
        { source: 'aws-kms', keys: 0, error: { field: 'listKeys', code: 'Unavailable', message: 'down' } },
      ],
      auditLogSince: UNKNOWN,
      keys: [],
    };
    const r = checkPolicy(inv, EVERY_RULE);
    expect(r.findings).toHaveLength(5);
    expect(
      r.findings.every((f) => f.status === 'unknown' && f.provider === 'aws-kms' && f.keyUri === undefined),
    ).toBe(true);
  });
});

describe('checkPolicy on seeded AWS KMS keys (moto)', () => {
  it('violations where AWS reports them, passes where it does, nothing made up', {
    timeout: 180_000,
  }, async () => {
    const kp = client({ providers: [motoProvider()] });
    const tag = unique('case');
    const labels = { case: tag };
    const rotating = await kp.createKey('aws-kms', {
      name: unique('rot'),
      spec: 'AES_256',
      labels: { ...labels, owner: 'o' },
      rotation: { periodDays: 365 },
    });
    const still = await kp.createKey('aws-kms', { name: unique('still'), spec: 'AES_256', labels });
    await kp.createGrant(rotating.uri, {
      grantee: 'arn:aws:iam::123456789012:role/a',
      operations: ['encrypt'],
      constraints: { contextEquals: { a: '1' } },
    });
    await kp.createGrant(still.uri, { grantee: 'arn:aws:iam::123456789012:role/b', operations: ['decrypt'] });
    const policy = parsePolicyText(
      JSON.stringify({
        version: 1,
        rules: [
          { id: 'rotation', type: 'max-rotation-period', severity: 'high', maxDays: 365, match: { labels } },
          {
            id: 'hsm',
            type: 'required-protection',
            severity: 'critical',
            protection: ['hsm'],
            match: { labels },
          },
          { id: 'context', type: 'grant-context-constraint', severity: 'medium', match: { labels } },
          { id: 'owner', type: 'owner-label', severity: 'low', match: { labels } },
        ],
      }),
    );
    const ours = new Set([rotating.uri, still.uri]);
    const r = checkPolicy(
      await collectInventory(kp, {
        sources: ['aws-kms'],
        filter: (k) => ours.has(k.uri),
        filterUnmodeled: (k) => ours.has(k.uri),
      }),
      policy,
    );
    const which = (uri: string | undefined) =>
      uri === rotating.uri ? 'rotating' : uri === still.uri ? 'still' : uri;
    expect(r.findings.map((f) => `${f.ruleId} ${which(f.keyUri)} ${f.status}`).sort()).toEqual([
      'context still violation',
      'owner still violation',
      'rotation still violation',
    ]);
    // "rotating" passes all four rules; "still" passes only the protection rule
    expect(r.summary.passed).toBe(5);
  });
});
