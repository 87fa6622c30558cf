/**
 * Inventory and policy on Azure Key Vault, against keyport's Key Vault test server as the harness
 * started it (target `azure-keyvault`: HTTPS with a CA this process trusts, the admin token).
 * Key Vault reports versions with dates and the rotation policy, but neither grants (access is
 * Azure RBAC, outside the key data plane) nor a protection level keyport's neutral model carries
 * (standard/premium and RSA vs RSA-HSM vary per key): those rules must answer unknown, never pass.
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { AzureKeyVaultProvider } from '@keyport/azure-keyvault';
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

function provider(): AzureKeyVaultProvider {
  const url = process.env.KEYPORT_AZUREKV_URL;
  const ca = process.env.KEYPORT_AZUREKV_CA;
  const token = process.env.KEYPORT_AZUREKV_TOKEN;
  if (!url || !ca || !token) {
    throw new Error(
      'target azure-keyvault is not running: run "pnpm emulators up azure-keyvault" (KEYPORT_AZUREKV_URL, KEYPORT_AZUREKV_CA or KEYPORT_AZUREKV_TOKEN is not set)',
    );
  }
  return new AzureKeyVaultProvider({
    vaultUrl: url,
    credential: { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }) },
    // The 401 challenge names vault.azure.net while the server is 127.0.0.1 (test setting only).
    clientOptions: { agent: new Agent({ ca: readFileSync(ca) }), disableChallengeResourceVerification: true },
    pollIntervalMs: 5,
  });
}

const POLICY = parsePolicyText(`
version: 1
rules:
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 365, match: { purposes: [encrypt_decrypt] } }
  - { id: owner, type: owner-label, severity: low }
  - { id: rsa-size, type: min-key-size, severity: high, minBits: { RSA: 3072 } }
  - { id: no-p256, type: forbidden-algorithms, severity: medium, algorithms: [EC_P256] }
  - { id: pci-hsm, type: required-protection, severity: critical, protection: [hsm], match: { labels: { classification: pci } } }
  - { id: grant-context, type: grant-context-constraint, severity: medium, match: { labels: { classification: pci } } }
  - { id: deletion-window, type: min-pending-deletion-window, severity: high, minDays: 30 }
`);

describe('inventory and policy on Azure Key Vault (keyport test server)', () => {
  it('versions, rotation policy and tags as Key Vault reports them; each rule broken and satisfied', {
    timeout: 180_000,
  }, async () => {
    const { kp, logPath, auditKey } = await auditedClient([provider()]);
    const pci = await kp.createKey('azurekeyvault', {
      name: unique('pci'),
      spec: 'RSA_3072',
      labels: { owner: 'payments', classification: 'pci' },
      rotation: { periodDays: 90 },
    });
    await kp.rotateKey(pci.uri);
    const norotate = await kp.createKey('azurekeyvault', {
      name: unique('norotate'),
      spec: 'RSA_4096',
      labels: { owner: 'payments' },
    });
    const slow = await kp.createKey('azurekeyvault', {
      name: unique('slow'),
      spec: 'RSA_3072',
      labels: { owner: 'payments' },
      rotation: { periodDays: 400 },
    });
    const small = await kp.createKey('azurekeyvault', {
      name: unique('small'),
      spec: 'RSA_2048',
      usage: 'sign_verify',
    });
    const p256 = await kp.createKey('azurekeyvault', {
      name: unique('p256'),
      spec: 'EC_P256',
      usage: 'sign_verify',
      labels: { owner: 'pki' },
    });
    const deleted = await kp.createKey('azurekeyvault', {
      name: unique('deleted'),
      spec: 'RSA_3072',
      labels: { owner: 'payments' },
    });
    const gone = await kp.scheduleKeyDeletion(deleted.uri, { days: 7 });
    expect(gone.state).toBe('pending_deletion');

    const names = {
      pci: pci.uri,
      norotate: norotate.uri,
      slow: slow.uri,
      small: small.uri,
      p256: p256.uri,
      deleted: deleted.uri,
    };
    const ours = new Set(Object.values(names));
    // The server is shared by the whole run: only this test's keys are read in detail.
    await kp.encrypt(pci.uri, new Uint8Array(16), { context: { app: 'policy' } });
    const inv = await collectInventory(kp, {
      sources: ['azurekeyvault'],
      filter: (k) => ours.has(k.uri),
      auditLog: { path: logPath, key: auditKey },
    });
    // last use from the audit log, matched to the URIs the listing reports: no used key is left unmatched
    expect(inv.keys.filter((k) => k.lastUsedAt !== null).map((k) => k.uri)).toEqual([pci.uri]);
    expect(inv.auditUnmatched).toEqual([]);
    // Key Vault keeps soft-deleted keys out of its key listing; the driver lists them after the
    // live ones (from /deletedkeys), pending deletion, so the deletion rules see them.
    expect(inv.sources).toEqual([{ source: 'azurekeyvault', keys: 6 }]);
    const byUri = (uri: string) => inv.keys.find((k) => k.uri === uri) as InventoryKey;

    const p = byUri(pci.uri);
    expect(p).toMatchObject({
      provider: 'azurekeyvault',
      algorithm: 'RSA_3072',
      keyBits: 3072,
      purpose: 'encrypt_decrypt',
      state: 'enabled',
      protection: 'software', // an RSA key (not RSA-HSM): a standard vault's software protection
      versions: 2,
      rotation: { enabled: true, periodDays: 90 },
      pendingDeletionAt: null,
      grants: { count: UNKNOWN, items: UNKNOWN },
      errors: [],
    });
    expect({ ...p.labels }).toEqual({ owner: 'payments', classification: 'pci' });
    // the rotation made a second version: the material is as old as that version, not the key
    expect(Date.parse(String(p.lastRotatedAt))).toBeGreaterThanOrEqual(Date.parse(String(p.createdAt)));
    expect(Date.now() - Date.parse(String(p.lastRotatedAt))).toBeLessThan(3_600_000);
    expect(byUri(norotate.uri)).toMatchObject({
      versions: 1,
      rotation: { enabled: false, periodDays: null },
    });
    expect(byUri(slow.uri).rotation).toMatchObject({ enabled: true, periodDays: 400 });
    expect(byUri(small.uri)).toMatchObject({ algorithm: 'RSA_2048', purpose: 'sign_verify' });
    expect(byUri(deleted.uri)).toMatchObject({ state: 'pending_deletion', algorithm: 'RSA_3072' });
    expect(Date.parse(String(byUri(deleted.uri).pendingDeletionAt))).toBe(gone.deletionDate?.getTime());

    const result = checkPolicy(inv, POLICY);
    expect(outcomesOf(result.findings, names)).toEqual([
      'grant-context pci unknown',
      'no-p256 p256 violation',
      'owner small violation',
      'pci-hsm pci violation',
      'rotation norotate violation',
      'rotation slow violation',
      'rsa-size small violation',
    ]);
    // An operator's statement fills in only what the provider does not report: the key's own
    // type (RSA, not RSA-HSM) wins over a claim of HSM protection.
    const stated = await collectInventory(kp, {
      sources: ['azurekeyvault'],
      filter: (k) => k.uri === pci.uri,
      protection: { azurekeyvault: 'hsm' },
    });
    expect(outcomesOf(checkPolicy(stated, POLICY).findings, names)).toEqual([
      'grant-context pci unknown',
      'pci-hsm pci violation',
    ]);

    // Fixes: the rotation policy through the audited client; the owner label by hand.
    const fixes = planFixes(inv, POLICY, result, kp);
    expect(fixes.map((f) => `${f.ruleId} ${f.action.kind}`).sort()).toEqual([
      'owner manual',
      'rotation set-rotation-period',
      'rotation set-rotation-period',
    ]);
    const applied = await applyFixes(kp, fixes);
    expect(applied.filter((o) => o.error !== undefined)).toEqual([]);
    const after = await collectInventory(kp, {
      sources: ['azurekeyvault'],
      filter: (k) => k.uri === norotate.uri || k.uri === slow.uri,
    });
    expect(after.keys.map((k) => k.rotation.periodDays)).toEqual([365, 365]);
    expect(outcomesOf(checkPolicy(after, POLICY).findings, names)).toEqual([]);
  });
});
