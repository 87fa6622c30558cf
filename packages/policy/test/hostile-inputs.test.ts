/**
 * Inputs that once made a verdict lie or reached the terminal raw: a policy built in code with a
 * misspelt or NaN limit (the rule passed every key), a rotation period a provider reports as
 * negative, zero or NaN (within any limit), and a key named with an escape sequence in the fix
 * lines `keyport policy fix` prints.
 */
import type { Capabilities, Grant, KeyInfo } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import {
  type CheckResult,
  checkPolicy,
  collectInventory,
  describeFix,
  type FixClient,
  type Inventory,
  type InventoryClient,
  type InventoryKey,
  type Policy,
  PolicyError,
  parsePolicyText,
  planFixes,
  toHtml,
  toSarif,
  UNKNOWN,
} from '../src/index.js';

const NOW = '2030-01-01T00:00:00.000Z';

/** Pending deletion in one day, rotation off, a grant living six years, no owner label. */
const exposed: InventoryKey = {
  uri: 'local:///ks#exposed',
  provider: 'local',
  algorithm: 'AES_256',
  keyBits: 256,
  purpose: 'encrypt_decrypt',
  protection: 'software',
  state: 'enabled',
  createdAt: '2029-06-01T00:00:00.000Z',
  lastRotatedAt: '2029-06-01T00:00:00.000Z',
  rotation: { enabled: false, periodDays: null, nextRotationAt: null },
  versions: 1,
  pendingDeletionAt: null,
  grants: {
    count: 1,
    earliestExpiry: '2035-06-01T00:00:00.000Z',
    latestExpiry: '2035-06-01T00:00:00.000Z',
    items: [
      {
        id: 'g1',
        grantee: 'app',
        operations: ['decrypt'],
        createdAt: '2029-06-01T00:00:00.000Z',
        expiresAt: '2035-06-01T00:00:00.000Z',
        constrained: true,
      },
    ],
  },
  labels: { team: 'payments' },
  origin: 'provider',
  lastUsedAt: UNKNOWN,
  errors: [],
};

const inventory: Inventory = {
  generatedAt: NOW,
  sources: [{ source: 'local', keys: 2 }],
  auditLogSince: UNKNOWN,
  keys: [
    exposed,
    {
      ...exposed,
      uri: 'local:///ks#leaving',
      state: 'pending_deletion',
      pendingDeletionAt: '2030-01-02T00:00:00.000Z',
    },
  ],
};

/** A policy as a caller builds it in code, past the type checker (from JSON, a config loader...). */
const built = (rule: Record<string, unknown>): Policy => ({ version: 1, rules: [rule] }) as unknown as Policy;

function policyErrorOf(f: () => unknown): PolicyError {
  try {
    f();
  } catch (e) {
    if (e instanceof PolicyError) return e;
    throw e;
  }
  throw new Error('expected a PolicyError, the call returned');
}

describe('a policy built in code is checked like a policy file', () => {
  const bad: [string, Record<string, unknown>, string][] = [
    [
      'a misspelt limit',
      { id: 'window', type: 'min-pending-deletion-window', severity: 'high', mindays: 7 },
      'rules[0].minDays',
    ],
    [
      'a NaN limit',
      { id: 'grants', type: 'max-grant-lifetime', severity: 'high', maxDays: Number.NaN },
      'rules[0].maxDays',
    ],
    [
      'an infinite limit',
      { id: 'rotation', type: 'max-rotation-period', severity: 'high', maxDays: Number.POSITIVE_INFINITY },
      'rules[0].maxDays',
    ],
    [
      'a limit given as a string',
      { id: 'unused', type: 'max-unused-days', severity: 'high', maxDays: '90' },
      'rules[0].maxDays',
    ],
    [
      'a misspelt option',
      { id: 'owner', type: 'owner-label', severity: 'high', lable: 'team' },
      'rules[0].lable',
    ],
    [
      'a misspelt match',
      { id: 'owner', type: 'owner-label', severity: 'high', match: { provider: ['aws-kms'] } },
      'rules[0].match.provider',
    ],
    ['an unknown severity', { id: 'owner', type: 'owner-label', severity: 'urgent' }, 'rules[0].severity'],
  ];

  it.each(bad)('checkPolicy refuses %s, naming the field, instead of passing keys', (_, rule, path) => {
    const e = policyErrorOf(() => checkPolicy(inventory, built(rule)));
    expect(e.code).toBe('InvalidArgument');
    expect(e.path).toBe(path);
  });

  it('spelt right, the same rules find the violations the misspelt ones passed', () => {
    const r = checkPolicy(
      inventory,
      built({ id: 'window', type: 'min-pending-deletion-window', severity: 'high', minDays: 7 }),
    );
    expect(r.findings.map((f) => `${f.keyUri} ${f.status}`)).toEqual(['local:///ks#leaving violation']);
    const g = checkPolicy(
      inventory,
      built({ id: 'grants', type: 'max-grant-lifetime', severity: 'high', maxDays: 90 }),
    );
    expect(g.findings.map((f) => `${f.grantId} ${f.status}`)).toEqual(['g1 violation']);
    // A policy object without ids gets the file format's default (the rule type), as a file does.
    const d = checkPolicy(inventory, built({ type: 'owner-label', severity: 'low' }));
    expect(d.findings.map((f) => f.ruleId)).toEqual(['owner-label']);
  });

  it('planFixes does not plan a rotation period from an unchecked limit', () => {
    // The check of the right policy, planned with a misspelt one: the fix planned for the key
    // whose rotation is off set "rotation every undefined days", which keeps rotation off (a
    // policy without a period turns it off) and was then reported as fixed.
    const right = parsePolicyText(
      '{"version":1,"rules":[{"id":"rotation","type":"max-rotation-period","severity":"high","maxDays":90}]}',
    );
    const result: CheckResult = checkPolicy(inventory, right);
    expect(result.summary.violations).toBe(1);
    const fixClient: FixClient = {
      capabilities: () => ({ autoRotation: true }) as Capabilities,
      setRotationPolicy: async () => {
        throw new Error('not applied in this test');
      },
    };
    const misspelt = built({ id: 'rotation', type: 'max-rotation-period', severity: 'high', maxdays: 90 });
    expect(policyErrorOf(() => planFixes(inventory, misspelt, result, fixClient)).path).toBe(
      'rules[0].maxDays',
    );
    expect(planFixes(inventory, right, result, fixClient).map((f) => f.action)).toEqual([
      { kind: 'set-rotation-period', periodDays: 90 },
    ]);
  });

  it('the reports refuse a policy the check would refuse', async () => {
    const right = parsePolicyText(
      'version: 1\nrules:\n  - { id: owner, type: owner-label, severity: low }\n',
    );
    const result = checkPolicy(inventory, right);
    const urgent = built({ id: 'owner', type: 'owner-label', severity: 'urgent' });
    expect(policyErrorOf(() => toSarif(result, urgent)).path).toBe('rules[0].severity');
    await expect(toHtml(inventory, urgent, result)).rejects.toMatchObject({
      name: 'PolicyError',
      path: 'rules[0].severity',
    });
    // The rule's line in the file is still found through the parsed object.
    const sarif = toSarif(
      result,
      parsePolicyText('version: 1\nrules:\n\n  - { id: owner, type: owner-label, severity: low }\n'),
    );
    expect(JSON.stringify(sarif)).toContain('"startLine":4');
  });
});

/** An inventory client answering one listed key with the given rotation period (no grants). */
function providerSaying(periodDays: unknown): InventoryClient {
  const key = {
    uri: 'local:///ks#odd',
    spec: 'AES_256',
    usage: 'encrypt_decrypt',
    state: 'enabled',
    createdAt: new Date('2029-12-01T00:00:00.000Z'),
    versions: [{ version: '1', createdAt: new Date('2029-12-01T00:00:00.000Z') }],
    primaryVersion: '1',
    rotation: { periodDays },
  } as unknown as KeyInfo;
  return {
    capabilities: () => ({ autoRotation: true, rotation: 'versioned', grants: 'none' }) as Capabilities,
    async *listKeys() {
      yield key;
    },
    describeKey: async () => key,
    async *listGrants(): AsyncIterable<Grant> {},
  } as unknown as InventoryClient;
}

describe('a rotation period a provider reports as no period', () => {
  const ROTATION = parsePolicyText(
    'version: 1\nrules:\n  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 90 }\n',
  );

  it.each([
    ['-5', -5],
    ['0', 0],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a string', '30'],
  ])(
    '%s days: the schedule is unknown (errors say why) and the rule answers unknown, not pass',
    async (_, period) => {
      const inv = await collectInventory(providerSaying(period), {
        sources: ['local'],
        now: () => new Date(NOW),
      });
      const k = inv.keys[0] as InventoryKey;
      expect(k.rotation).toEqual({ enabled: UNKNOWN, periodDays: UNKNOWN, nextRotationAt: UNKNOWN });
      expect(k.errors).toEqual([
        {
          field: 'rotation',
          code: 'Internal',
          message: 'the provider reported a rotation period that is not a positive number of days',
        },
      ]);
      const r = checkPolicy(inv, ROTATION);
      expect(r.findings.map((f) => f.status)).toEqual(['unknown']);
      expect(r.summary.passed).toBe(0);
    },
  );

  it('a positive period, a fraction of a day included (hourly transit rotation), is still a schedule', async () => {
    for (const period of [30, 1 / 24]) {
      const inv = await collectInventory(providerSaying(period), {
        sources: ['local'],
        now: () => new Date(NOW),
      });
      expect((inv.keys[0] as InventoryKey).rotation.periodDays).toBe(period);
      expect(checkPolicy(inv, ROTATION).findings).toEqual([]);
    }
  });
});

describe('the fix lines printed to a terminal', () => {
  it("escape a key URI carrying an escape sequence (a third-party driver's listing)", () => {
    // The built-in drivers cannot name a key so (the local keystore refuses such names, PKCS#11
    // labels are percent-encoded, cloud names are restricted); a third-party driver's URI is its own.
    const uri = 'acme:k\u001b]0;owned\u0007\u001b[2J\u202e';
    const inv: Inventory = {
      generatedAt: NOW,
      sources: [{ source: 'acme', keys: 1 }],
      auditLogSince: UNKNOWN,
      keys: [{ ...exposed, uri, provider: 'acme', labels: {} }],
    };
    const policy = parsePolicyText(
      'version: 1\nrules:\n  - { id: owner, type: owner-label, severity: low }\n',
    );
    const fixClient: FixClient = {
      capabilities: () => ({ autoRotation: false }) as Capabilities,
      setRotationPolicy: async () => {
        throw new Error('not applied in this test');
      },
    };
    const fixes = planFixes(inv, policy, checkPolicy(inv, policy), fixClient);
    expect(fixes.map((f) => f.keyUri)).toEqual([uri]);
    const line = describeFix(fixes[0] as (typeof fixes)[number]);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: asserting their absence
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    expect(line).toMatch(/^acme:k\\u001b\]0;owned\\u0007\\u001b\[2J\\u202e: manual \(rule owner\)/);
  });
});
