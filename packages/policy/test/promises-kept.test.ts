/**
 * Promises of the README that the code once broke: fixes only add protection, provider text is
 * escaped, duplicate fields and changing objects are refused, last use is read only from the
 * verified log, and what cannot be read is unknown, never a pass.
 */

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { JsonlAuditSink, loadOrCreateAuditKey } from '@keyport/core';
import { describe, expect, it, vi } from 'vitest';
import {
  checkPolicy,
  collectInventory,
  type FixClient,
  type Inventory,
  type InventoryKey,
  inventoryTable,
  PolicyError,
  parsePolicyText,
  planFixes,
  readAuditLastUse,
  UNKNOWN,
  validatePolicy,
} from '../src/index.js';
import { client, FakeClock, localProvider, tempDir } from './support/targets.js';

/** Runs right after core's verifyAuditLog answers: the window in which a second read would have seen another log. */
const afterVerify = vi.hoisted(() => ({ run: undefined as (() => Promise<void>) | undefined }));
vi.mock('@keyport/core', async (importOriginal) => {
  const core = await importOriginal<typeof import('@keyport/core')>();
  return {
    ...core,
    verifyAuditLog: async (...args: Parameters<typeof core.verifyAuditLog>) => {
      const verified = await core.verifyAuditLog(...args);
      await afterVerify.run?.();
      return verified;
    },
  };
});

const base: InventoryKey = {
  uri: 'local:///ks#k',
  provider: 'local',
  algorithm: 'AES_256',
  keyBits: 256,
  purpose: 'encrypt_decrypt',
  protection: 'software',
  state: 'enabled',
  createdAt: '2028-01-01T00:00:00.000Z',
  lastRotatedAt: '2028-01-01T00:00:00.000Z',
  rotation: { enabled: true, periodDays: 30, nextRotationAt: UNKNOWN },
  versions: 1,
  pendingDeletionAt: null,
  grants: { count: 0, earliestExpiry: null, latestExpiry: null, items: [] },
  labels: {},
  origin: 'provider',
  lastUsedAt: UNKNOWN,
  errors: [],
};

const inventoryOf = (
  keys: InventoryKey[],
  sources: Inventory['sources'] = [{ source: 'local', keys: keys.length }],
): Inventory => ({
  generatedAt: '2030-01-01T00:00:00.000Z',
  sources,
  auditLogSince: UNKNOWN,
  keys,
});

/** A client whose every provider rotates automatically; fixes are only planned, never applied. */
const rotating: FixClient = {
  capabilities: () => ({ autoRotation: true }) as ReturnType<FixClient['capabilities']>,
  setRotationPolicy: async () => {
    throw new Error('not applied in this test');
  },
};

const ROTATION = parsePolicyText(
  'version: 1\nrules:\n  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 365 }',
);

const errorOf = (f: () => unknown): PolicyError => {
  try {
    f();
  } catch (e) {
    if (e instanceof PolicyError) return e;
    throw e;
  }
  throw new Error('expected a PolicyError');
};

describe('fixes only add protection', () => {
  it('a key rotating every 30 days whose material is old is not "fixed" to rotate every 365 days', () => {
    const inv = inventoryOf([base]);
    const result = checkPolicy(inv, ROTATION);
    expect(result.findings.map((f) => f.message)).toEqual(['key material is 731 days old (limit 365)']);
    const fixes = planFixes(inv, ROTATION, result, rotating);
    // Setting the period to the limit would lengthen the schedule 12-fold: the only fix is a rotation now.
    expect(fixes.map((f) => f.action.kind)).toEqual(['manual']);
    expect(fixes[0]?.action).toMatchObject({ reason: expect.stringMatching(/rotate/) });
  });

  it('a key whose schedule is not known is not given one that may be longer', () => {
    const key: InventoryKey = {
      ...base,
      rotation: { enabled: UNKNOWN, periodDays: UNKNOWN, nextRotationAt: UNKNOWN },
    };
    const inv = inventoryOf([key]);
    const result = checkPolicy(inv, ROTATION);
    expect(result.findings.map((f) => f.status)).toEqual(['violation']);
    expect(planFixes(inv, ROTATION, result, rotating).map((f) => f.action.kind)).toEqual(['manual']);
  });

  it('schedules that are off or too long are still fixed to the limit', () => {
    const off: InventoryKey = {
      ...base,
      uri: 'local:///ks#off',
      rotation: { enabled: false, periodDays: null, nextRotationAt: null },
    };
    const long: InventoryKey = {
      ...base,
      uri: 'local:///ks#long',
      lastRotatedAt: '2029-12-01T00:00:00.000Z',
      rotation: { enabled: true, periodDays: 400, nextRotationAt: UNKNOWN },
    };
    const inv = inventoryOf([off, long]);
    const fixes = planFixes(inv, ROTATION, checkPolicy(inv, ROTATION), rotating);
    expect(fixes.map((f) => [f.keyUri, f.action])).toEqual([
      ['local:///ks#off', { kind: 'set-rotation-period', periodDays: 365 }],
      ['local:///ks#long', { kind: 'set-rotation-period', periodDays: 365 }],
    ]);
  });

  it('an AWS asymmetric key listed from a named instance is manual, as from the default one', () => {
    const key: InventoryKey = {
      ...base,
      uri: 'aws-kms+prod://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      provider: 'prod',
      algorithm: 'RSA_3072',
      keyBits: 3072,
      lastRotatedAt: UNKNOWN,
      rotation: { enabled: false, periodDays: null, nextRotationAt: null },
    };
    const inv = inventoryOf([key], [{ source: 'prod', keys: 1 }]);
    const fixes = planFixes(inv, ROTATION, checkPolicy(inv, ROTATION), rotating);
    expect(fixes.map((f) => f.action)).toEqual([
      { kind: 'manual', reason: expect.stringMatching(/AWS KMS rotates only symmetric keys/) },
    ]);
  });
});

describe('hostile provider data in the terminal', () => {
  it("a source's listing error is escaped in the inventory table like any provider text", () => {
    const inv = inventoryOf(
      [base],
      [
        { source: 'local', keys: 1 },
        {
          source: 'evil',
          keys: 0,
          error: {
            field: 'listKeys',
            code: 'Unavailable',
            message: 'down\u001b]0;owned\u0007\u001b[2J\u202etxt.exe\u2028x',
          },
        },
      ],
    );
    const table = inventoryTable(inv);
    expect(table).not.toMatch(
      // biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point
      /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/,
    );
    expect(table).toContain(
      'evil: listing failed (Unavailable): down\\u001b]0;owned\\u0007\\u001b[2J\\u202etxt.exe\\u2028x',
    );
  });
});

describe('duplicate keys', () => {
  it('keys that differ only in their YAML type but name the same field are duplicates', () => {
    for (const pair of [
      '{ 1: a, "1": b }',
      '{ true: a, "true": b }',
      '{ ~: a, "": b }',
      '{ 1.0: a, "1": b }',
    ]) {
      const text = `version: 1\nrules:\n  - { type: owner-label, severity: low, match: { labels: ${pair} } }`;
      expect(errorOf(() => parsePolicyText(text)).message, pair).toMatch(/DUPLICATE_KEY/);
    }
    // Distinct names are still distinct.
    const ok = parsePolicyText(
      'version: 1\nrules:\n  - { type: owner-label, severity: low, match: { labels: { 1: a, "2": b } } }',
    );
    expect({ ...ok.rules[0]?.match?.labels }).toEqual({ 1: 'a', 2: 'b' });
  });
});

describe('the policy object checked is the policy object used', () => {
  it('a getter answering a valid value to the check and another one after is refused', () => {
    // However many reads the check makes, the value used is the value checked.
    for (let validReads = 1; validReads <= 8; validReads++) {
      let reads = 0;
      const rule = { type: 'max-rotation-period', severity: 'high' } as Record<string, unknown>;
      Object.defineProperty(rule, 'maxDays', {
        enumerable: true,
        get: () => (reads++ < validReads ? 365 : Number.NaN),
      });
      let policy: ReturnType<typeof validatePolicy> | undefined;
      try {
        policy = validatePolicy({ version: 1, rules: [rule] });
      } catch (e) {
        expect(e).toBeInstanceOf(PolicyError);
      }
      if (policy !== undefined) expect((policy.rules[0] as { maxDays: number }).maxDays).toBe(365);
    }
  });
});

describe('a cyclic policy object', () => {
  it('is a PolicyError, not a stack overflow', () => {
    const rule: Record<string, unknown> = { type: 'owner-label', severity: 'low' };
    rule.self = rule;
    expect(errorOf(() => validatePolicy({ version: 1, rules: [rule] })).message).toMatch(/nested deeper/);
  });
});

describe('last use through a named instance', () => {
  it('a key used under its URI without the instance selector is unknown, not accused of being unused', async () => {
    const dir = await tempDir();
    const logPath = join(dir, 'audit.jsonl');
    const { key } = await loadOrCreateAuditKey(join(dir, 'audit.key'));
    const clock = new FakeClock(new Date(Date.now() - 200 * 86_400_000).toISOString());
    const local = await localProvider(clock);
    const created = await client({ providers: { team: local } }).createKey('team', {
      name: 'busy',
      spec: 'AES_256',
    });
    expect(created.uri).toMatch(/^local\+team:/);
    clock.current = new Date();
    const sink = await JsonlAuditSink.open(logPath, { hmacKey: key });
    const kp = client({ providers: { team: local }, audit: [sink] });
    // The only instance of the scheme: the application names the key without the selector.
    await kp.encrypt(created.uri.replace(/^local\+team:/, 'local:'), new Uint8Array(8));
    const inv = await collectInventory(kp, { sources: ['team'], auditLog: { path: logPath, key } });
    const policy = parsePolicyText(
      '{"version":1,"rules":[{"type":"max-unused-days","severity":"medium","maxDays":90}]}',
    );
    const r = checkPolicy(inv, policy, { now: new Date(Date.now() + 100 * 86_400_000) });
    expect(r.findings.map((f) => f.status)).toEqual(['unknown']);
    expect(r.findings[0]?.message).toMatch(/not in the inventory/);
  });
});

describe('the audit log read is the audit log verified', () => {
  it('a log swapped for a forged one right after it verified is never read: the verified records are what count', async () => {
    const dir = await tempDir();
    const logPath = join(dir, 'audit.jsonl');
    const { key } = await loadOrCreateAuditKey(join(dir, 'audit.key'));
    const sink = await JsonlAuditSink.open(logPath, { hmacKey: key });
    const kp = client({ providers: [await localProvider()], audit: [sink] });
    const used = await kp.createKey('local', { name: 'used', spec: 'AES_256' });
    const idle = await kp.createKey('local', { name: 'idle', spec: 'AES_256' });
    await kp.encrypt(used.uri, new Uint8Array(8));
    const genuine = await readFile(logPath, 'utf8');
    expect((await readAuditLastUse({ path: logPath, key })).lastUse.has(used.uri)).toBe(true);
    // Same number of lines, the used key's events moved to the idle one: the MACs no longer hold.
    const forged = genuine.split('#used"').join('#idle"');
    afterVerify.run = () => writeFile(logPath, forged);
    try {
      // The events are taken in the verification's own pass: the forged file, written after it,
      // is not read at all (it was read again, and refused, before).
      const { lastUse } = await readAuditLastUse({ path: logPath, key });
      expect([...lastUse.keys()]).toEqual([used.uri]);
      expect(await readFile(logPath, 'utf8')).toBe(forged);
    } finally {
      afterVerify.run = undefined;
    }
    expect(idle.uri).toMatch(/#idle$/);
  });
});

describe('only the records the verification covered are read', () => {
  it('a use appended between the verification and the reading is not taken unverified', async () => {
    const dir = await tempDir();
    const logPath = join(dir, 'audit.jsonl');
    const { key } = await loadOrCreateAuditKey(join(dir, 'audit.key'));
    const sink = await JsonlAuditSink.open(logPath, { hmacKey: key });
    const kp = client({ providers: [await localProvider()], audit: [sink] });
    const used = await kp.createKey('local', { name: 'used', spec: 'AES_256' });
    const late = await kp.createKey('local', { name: 'late', spec: 'AES_256' });
    await kp.encrypt(used.uri, new Uint8Array(8));
    // A genuine record, written by the audited client, but after the verification answered.
    afterVerify.run = async () => {
      await kp.encrypt(late.uri, new Uint8Array(8));
    };
    try {
      const { lastUse } = await readAuditLastUse({ path: logPath, key });
      expect([...lastUse.keys()]).toEqual([used.uri]);
    } finally {
      afterVerify.run = undefined;
    }
    // Read again, the appended record is verified and counted.
    expect((await readAuditLastUse({ path: logPath, key })).lastUse.has(late.uri)).toBe(true);
  });
});

describe('a key size the package cannot read is unknown, never a pass', () => {
  it("a third-party driver's RSA_1024 (no size known) is unknown under an RSA minimum", () => {
    // The listing is not held to core's KeySpec: keyBitsOf has no entry, keyBits is undefined.
    const weak = {
      ...base,
      uri: 'acme:///k1',
      provider: 'acme',
      algorithm: 'RSA_1024',
      keyBits: undefined,
    } as unknown as InventoryKey;
    const other = { ...weak, uri: 'acme:///k2', algorithm: 'ED25519' } as unknown as InventoryKey;
    const policy = parsePolicyText(
      'version: 1\nrules:\n  - { type: min-key-size, severity: high, minBits: { RSA: 3072 } }',
    );
    const r = checkPolicy(inventoryOf([weak, other], [{ source: 'acme', keys: 2 }]), policy);
    expect(r.findings.map((f) => [f.keyUri, f.status])).toEqual([['acme:///k1', 'unknown']]);
  });
});

describe('an owner of invisible characters only', () => {
  it('is no owner: zero-width space, word joiner, BOM and Hangul fillers are blank', () => {
    const policy = parsePolicyText('version: 1\nrules:\n  - { id: owner, type: owner-label, severity: low }');
    for (const owner of ['\u200B', '\u2060\u200B', '\uFEFF ', '\u3164', 'team\u200B']) {
      const statuses = checkPolicy(inventoryOf([{ ...base, labels: { owner } }]), policy).findings.map(
        (f) => f.status,
      );
      expect(statuses, JSON.stringify(owner)).toEqual(owner.startsWith('team') ? [] : ['violation']);
    }
  });
});
