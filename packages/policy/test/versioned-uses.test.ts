/**
 * Last use from uses of a pinned version. An application verifying an old signature, or decrypting
 * under the version that encrypted, calls the key by a versioned URI, and the audit log records the
 * URI as called. Each scheme spells the version its own way (Key Vault: a path segment; PKCS#11:
 * an `x-version` attribute; Vault and the keystore: `?version=`; Cloud KMS: `/cryptoKeyVersions/`):
 * every one must count as a use of the key, not as an unknown name that leaves the key "never used".
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { AzureKeyVaultProvider } from '@keyport/azure-keyvault';
import { isolateSofthsmToken, requireTarget } from '@keyport/conformance/harness';
import { type Keyport, withKeyVersion } from '@keyport/core';
import { Pkcs11Provider } from '@keyport/pkcs11';
import { describe, expect, it } from 'vitest';
import { checkPolicy, collectInventory, parsePolicyText, readAuditLastUse } from '../src/index.js';
import { auditedClient, localProvider, unique } from './support/targets.js';

function azure(): AzureKeyVaultProvider {
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

async function softhsm(): Promise<Pkcs11Provider> {
  isolateSofthsmToken();
  const env = requireTarget('softhsm');
  return Pkcs11Provider.open({
    modulePath: env.KEYPORT_SOFTHSM_MODULE,
    token: { label: env.KEYPORT_SOFTHSM_TOKEN },
    pin: { env: 'KEYPORT_SOFTHSM_PIN' },
  });
}

/** A one-day limit, checked two days on: each key is judged, none left "unknown" as a possible alias. */
const UNUSED = parsePolicyText(`
version: 1
rules:
  - { id: unused, type: max-unused-days, severity: medium, maxDays: 1 }
`);

/** A key used only through its pinned version, and one never used: the inventory must tell them apart. */
async function usedByVersion(kp: Keyport, source: string, logPath: string, auditKey: Uint8Array) {
  const used = await kp.createKey(source, { name: unique('signer'), spec: 'EC_P256', usage: 'sign_verify' });
  const idle = await kp.createKey(source, { name: unique('idle'), spec: 'EC_P256', usage: 'sign_verify' });
  const version = used.primaryVersion;
  expect(version).toBeDefined();
  const pinned = withKeyVersion(used.uri, version);
  expect(pinned).not.toBe(used.uri);
  const signature = await kp.sign(pinned, new Uint8Array(32).fill(7));
  expect(signature.keyVersion).toBe(version);

  const log = await readAuditLastUse({ path: logPath, key: auditKey });
  expect([...log.lastUse.keys()]).toEqual([used.uri]);

  const ours = new Set([used.uri, idle.uri]);
  const inv = await collectInventory(kp, {
    sources: [source],
    filter: (k) => ours.has(k.uri),
    auditLog: { path: logPath, key: auditKey },
  });
  expect(inv.auditUnmatched).toEqual([]);
  const lastUsed = Object.fromEntries(inv.keys.map((k) => [k.uri, k.lastUsedAt]));
  expect(typeof lastUsed[used.uri]).toBe('string');
  expect(lastUsed[idle.uri]).toBeNull();
  const result = checkPolicy(inv, UNUSED, { now: new Date(Date.parse(inv.generatedAt) + 2 * 86_400_000) });
  const outcome = Object.fromEntries(result.findings.map((f) => [f.keyUri, `${f.status}: ${f.message}`]));
  expect(outcome).toEqual({
    [used.uri]: expect.stringMatching(/^violation: last used 2 days ago/),
    [idle.uri]: expect.stringMatching(/^violation: not used in the 2 days the audit log covers/),
  });
}

describe('last use from uses of a pinned key version', () => {
  it('Key Vault: a use of keys/<name>/<version> is a use of keys/<name>', { timeout: 120_000 }, async () => {
    const { kp, logPath, auditKey } = await auditedClient([azure()]);
    await usedByVersion(kp, 'azurekeyvault', logPath, auditKey);
  });

  it('PKCS#11: a use with x-version=<n> is a use of the key', { timeout: 120_000 }, async () => {
    const { kp, logPath, auditKey } = await auditedClient([await softhsm()]);
    await usedByVersion(kp, 'pkcs11', logPath, auditKey);
  });

  it('local keystore: a use with ?version=<n> is a use of the key', async () => {
    const { kp, logPath, auditKey } = await auditedClient([await localProvider()]);
    await usedByVersion(kp, 'local', logPath, auditKey);
  });
});
