import { describe, expect, it } from 'vitest';
import {
  applyFixes,
  checkPolicy,
  collectInventory,
  type InventoryKey,
  parsePolicyText,
  planFixes,
  UNKNOWN,
} from '../src/index.js';
import { auditedClient, localKmsProvider, outcomesOf, unique } from './support/targets.js';

const POLICY = parsePolicyText(`
version: 1
rules:
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 365, match: { purposes: [encrypt_decrypt], algorithms: [AES_256] } }
  - { id: owner, type: owner-label, severity: low }
  - { id: rsa-size, type: min-key-size, severity: high, minBits: { RSA: 3072 } }
  - { id: no-p256, type: forbidden-algorithms, severity: medium, algorithms: [EC_P256] }
  - { id: hsm, type: required-protection, severity: critical, protection: [hsm] }
  - { id: grant-life, type: max-grant-lifetime, severity: high, maxDays: 90, match: { labels: { grants: checked } } }
  - { id: grant-context, type: grant-context-constraint, severity: medium, match: { labels: { grants: checked } } }
  - { id: deletion-window, type: min-pending-deletion-window, severity: high, minDays: 10 }
`);

const DAY_MS = 86_400_000;

describe('inventory and policy on AWS KMS (local-kms)', () => {
  it('seeded keys break and satisfy each rule; grants unknown (not emulated); deletion dates measured', {
    timeout: 180_000,
  }, async () => {
    const { kp, logPath, auditKey } = await auditedClient([localKmsProvider()]);

    const good = await kp.createKey('aws-kms', {
      name: unique('good'),
      spec: 'AES_256',
      labels: { owner: 'payments', grants: 'checked' },
      rotation: { periodDays: 365 }, // local-kms answers 365 whatever period was set
    });
    const norotate = await kp.createKey('aws-kms', {
      name: unique('norotate'),
      spec: 'AES_256',
      labels: { owner: 'payments' },
    });
    const small = await kp.createKey('aws-kms', {
      name: unique('small'),
      spec: 'RSA_2048',
      usage: 'sign_verify',
    });
    const big = await kp.createKey('aws-kms', {
      name: unique('big'),
      spec: 'RSA_3072',
      usage: 'sign_verify',
      labels: { owner: 'pki' },
    });
    const p256 = await kp.createKey('aws-kms', {
      name: unique('p256'),
      spec: 'EC_P256',
      usage: 'sign_verify',
      labels: { owner: 'pki' },
    });
    const hasty = await kp.createKey('aws-kms', { name: unique('hasty'), spec: 'AES_256' });
    const patient = await kp.createKey('aws-kms', { name: unique('patient'), spec: 'AES_256' });
    await kp.scheduleKeyDeletion(hasty.uri, { days: 7 });
    await kp.scheduleKeyDeletion(patient.uri, { days: 30 });
    await kp.encrypt(good.uri, new Uint8Array(16));

    const names = {
      good: good.uri,
      norotate: norotate.uri,
      small: small.uri,
      big: big.uri,
      p256: p256.uri,
      hasty: hasty.uri,
      patient: patient.uri,
    };
    const ours = new Set(Object.values(names));
    // local-kms is shared by the whole run: only this test's keys are read in detail.
    const inv = await collectInventory(kp, {
      sources: ['aws-kms'],
      filter: (k) => ours.has(k.uri),
      filterUnmodeled: (k) => ours.has(k.uri),
      auditLog: { path: logPath, key: auditKey },
    });
    expect(inv.sources).toEqual([{ source: 'aws-kms', keys: 7 }]);
    const byName = (uri: string) => inv.keys.find((k) => k.uri === uri) as InventoryKey;

    const g = byName(good.uri);
    expect(g).toMatchObject({
      provider: 'aws-kms',
      protection: 'hsm',
      algorithm: 'AES_256',
      keyBits: 256,
      purpose: 'encrypt_decrypt',
      state: 'enabled',
      rotation: { enabled: true, periodDays: 365 },
      // AWS rotation is transparent: no version list, so no count; and local-kms has no
      // ListKeyRotations (501), so no date of the material in use either
      versions: UNKNOWN,
      lastRotatedAt: UNKNOWN,
      pendingDeletionAt: null,
      grants: { count: UNKNOWN, items: UNKNOWN },
    });
    expect({ ...g.labels }).toEqual({ owner: 'payments', grants: 'checked' });
    expect(Date.now() - Date.parse(g.createdAt)).toBeLessThan(DAY_MS);
    // the grant listing failed, and the inventory says why instead of reporting zero grants
    expect(g.errors.map((e) => e.field)).toEqual(['grants']);
    expect(byName(norotate.uri).rotation).toMatchObject({ enabled: false, periodDays: null });
    expect(byName(small.uri)).toMatchObject({ algorithm: 'RSA_2048', keyBits: 2048, purpose: 'sign_verify' });

    // pending deletion: the date AWS reports, 7 and 30 days out
    const h = byName(hasty.uri);
    expect(h.state).toBe('pending_deletion');
    const daysLeft = (k: InventoryKey) => (Date.parse(String(k.pendingDeletionAt)) - Date.now()) / DAY_MS;
    expect(daysLeft(h)).toBeGreaterThan(6);
    expect(daysLeft(h)).toBeLessThan(8);
    expect(daysLeft(byName(patient.uri))).toBeGreaterThan(29);

    // last use from the audit log, matched to the URIs the listing reports
    expect(g.lastUsedAt).not.toBe(UNKNOWN);
    expect(g.lastUsedAt).not.toBeNull();
    expect(byName(norotate.uri).lastUsedAt).toBeNull();
    expect(inv.auditUnmatched).toEqual([]);

    const result = checkPolicy(inv, POLICY);
    expect(outcomesOf(result.findings, names)).toEqual([
      'deletion-window hasty violation',
      'grant-context good unknown',
      'grant-life good unknown',
      'no-p256 p256 violation',
      'owner small violation',
      'rotation norotate violation',
      'rsa-size small violation',
    ]);
    // the fix for the rotation violation is the audited setRotationPolicy, nothing else
    const fixes = planFixes(inv, POLICY, result, kp);
    expect(fixes.map((f) => `${f.ruleId} ${f.action.kind}`).sort()).toEqual([
      'owner manual',
      'rotation set-rotation-period',
    ]);
    const applied = await applyFixes(kp, fixes);
    expect(applied.map((o) => `${o.ruleId} ${o.applied} ${o.error?.code ?? '-'}`).sort()).toEqual([
      'owner false -',
      'rotation true -',
    ]);
    const after = await collectInventory(kp, {
      sources: ['aws-kms'],
      filter: (k) => k.uri === norotate.uri,
      filterUnmodeled: () => false,
    });
    expect(after.keys[0]?.rotation).toMatchObject({ enabled: true, periodDays: 365 });
    expect(outcomesOf(checkPolicy(after, POLICY).findings, names)).toEqual([]);
  });
});
