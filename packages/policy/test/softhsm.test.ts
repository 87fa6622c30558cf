import { isolateSofthsmToken, requireTarget } from '@keyport/conformance/harness';
import { Pkcs11Provider } from '@keyport/pkcs11';
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
import { auditedClient, outcomesOf, unique } from './support/targets.js';

async function provider(): Promise<Pkcs11Provider> {
  isolateSofthsmToken();
  const env = requireTarget('softhsm');
  return Pkcs11Provider.open({
    modulePath: env.KEYPORT_SOFTHSM_MODULE,
    token: { label: env.KEYPORT_SOFTHSM_TOKEN },
    pin: { env: 'KEYPORT_SOFTHSM_PIN' },
  });
}

const POLICY = parsePolicyText(`
version: 1
rules:
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 365, match: { purposes: [encrypt_decrypt] } }
  - { id: owner, type: owner-label, severity: low }
  - { id: rsa-size, type: min-key-size, severity: high, minBits: { RSA: 3072, EC: 384 } }
  - { id: no-p256, type: forbidden-algorithms, severity: medium, algorithms: [EC_P256] }
  - { id: hsm, type: required-protection, severity: critical, protection: [hsm] }
  - { id: grant-life, type: max-grant-lifetime, severity: high, maxDays: 90, match: { labels: { classification: pci } } }
`);

describe('inventory and policy on PKCS#11 (SoftHSM2)', () => {
  it('versions, dates and labels from the token; HSM protection; each rule broken and satisfied', {
    timeout: 180_000,
  }, async () => {
    const { kp, logPath, auditKey } = await auditedClient([await provider()]);
    const aes = await kp.createKey('pkcs11', {
      name: unique('aes'),
      spec: 'AES_256',
      labels: { owner: 'payments', classification: 'pci' },
    });
    const rotated = await kp.rotateKey(aes.uri);
    expect(rotated.primaryVersion).toBe('2');
    const small = await kp.createKey('pkcs11', { name: unique('small'), spec: 'RSA_2048' });
    const p256 = await kp.createKey('pkcs11', {
      name: unique('p256'),
      spec: 'EC_P256',
      usage: 'sign_verify',
      labels: { owner: 'pki' },
    });
    const p384 = await kp.createKey('pkcs11', {
      name: unique('p384'),
      spec: 'EC_P384',
      usage: 'sign_verify',
      labels: { owner: 'pki' },
    });
    const names = { aes: aes.uri, small: small.uri, p256: p256.uri, p384: p384.uri };

    await kp.encrypt(aes.uri, new Uint8Array(16), { context: { app: 'policy' } });
    const inv = await collectInventory(kp, {
      sources: ['pkcs11'],
      auditLog: { path: logPath, key: auditKey },
    });
    // last use from the audit log, matched to the URIs the listing reports
    expect(inv.auditUnmatched).toEqual([]);
    expect(inv.keys.filter((k) => k.lastUsedAt !== null).map((k) => k.uri)).toEqual([aes.uri]);
    // the token is this process's own: exactly the seeded keys
    expect(inv.sources).toEqual([{ source: 'pkcs11', keys: 4 }]);
    expect(inv.keys.map((k) => k.uri).sort()).toEqual(Object.values(names).sort());
    const byUri = (uri: string) => inv.keys.find((k) => k.uri === uri) as InventoryKey;
    const a = byUri(aes.uri);
    expect(a).toMatchObject({
      provider: 'pkcs11',
      algorithm: 'AES_256',
      purpose: 'encrypt_decrypt',
      state: 'enabled',
      protection: 'hsm',
      versions: 2,
      rotation: { enabled: false, periodDays: null },
      pendingDeletionAt: null,
      grants: { count: UNKNOWN, items: UNKNOWN },
      origin: 'provider',
      errors: [],
    });
    expect({ ...a.labels }).toEqual({ owner: 'payments', classification: 'pci' });
    expect(Date.parse(String(a.lastRotatedAt))).toBeGreaterThanOrEqual(Date.parse(String(a.createdAt)));
    expect(byUri(small.uri)).toMatchObject({ algorithm: 'RSA_2048', keyBits: 2048, versions: 1 });
    expect(byUri(p384.uri)).toMatchObject({ algorithm: 'EC_P384', keyBits: 384, purpose: 'sign_verify' });

    const result = checkPolicy(inv, POLICY);
    expect(outcomesOf(result.findings, names)).toEqual([
      'grant-life aes unknown',
      'no-p256 p256 violation',
      'owner small violation',
      // no automatic rotation on a PKCS#11 token: a crypto-period needs a person
      'rotation aes violation',
      'rotation small violation',
      'rsa-size p256 violation',
      'rsa-size small violation',
    ]);
    expect(result.findings.find((f) => f.ruleId === 'rotation')?.message).toMatch(
      /automatic rotation is off/,
    );
    // Material older than the limit is reported as such: 400 days on, both keys' material is too old.
    const later = checkPolicy(inv, POLICY, { now: new Date(Date.now() + 400 * 86_400_000) });
    expect(later.findings.filter((f) => f.ruleId === 'rotation').map((f) => f.message)).toEqual([
      expect.stringMatching(/key material is 4\d\d days old/),
      expect.stringMatching(/key material is 4\d\d days old/),
    ]);

    // Nothing to apply automatically: the fixes say what to do by hand, and applying changes nothing.
    const fixes = planFixes(inv, POLICY, result, kp);
    expect(fixes.map((f) => `${f.ruleId} ${f.action.kind}`).sort()).toEqual([
      'owner manual',
      'rotation manual',
      'rotation manual',
    ]);
    const outcomes = await applyFixes(kp, fixes);
    expect(outcomes.every((o) => !o.applied && o.error === undefined)).toBe(true);
    const again = await collectInventory(kp, {
      sources: ['pkcs11'],
      auditLog: { path: logPath, key: auditKey },
    });
    expect(again.keys).toEqual(inv.keys);
  });
});
