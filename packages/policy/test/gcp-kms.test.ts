/**
 * Inventory and policy on Google Cloud KMS, against keyport's wire-level Cloud KMS server as the
 * harness started it (target `gcp-kms`, gRPC): a provider whose protection level varies per key,
 * so keyport reports it as unknown — and the protection rule answers unknown, never pass — unless
 * the operator states it. The listing carries only a symmetric key's primary version, so the
 * inventory describes each key for its version list: version count and last rotation date.
 */
import { credentials } from '@grpc/grpc-js';
import { requireTarget } from '@keyport/conformance/harness';
import { GcpKmsProvider } from '@keyport/gcp-kms';
import { OAuth2Client } from 'google-auth-library';
import { describe, expect, it } from 'vitest';
import { checkPolicy, collectInventory, type InventoryKey, parsePolicyText, UNKNOWN } from '../src/index.js';
import { client, outcomesOf } from './support/targets.js';

function provider(): GcpKmsProvider {
  const grpc = requireTarget('gcp-kms').KEYPORT_GCPKMS_GRPC;
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'keyport-test', expiry_date: Date.now() + 3_600_000 });
  return new GcpKmsProvider({
    apiEndpoint: '127.0.0.1',
    port: Number(grpc.slice(grpc.lastIndexOf(':') + 1)),
    sslCreds: credentials.createInsecure(),
    authClient: auth,
    keyRing: `projects/p/locations/global/keyRings/policy-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
  });
}

const DAY_MS = 86_400_000;

describe('inventory and policy on Cloud KMS (test server)', () => {
  it('version count and last rotation from the version list; protection as Cloud KMS reports it; each rule broken and satisfied', {
    timeout: 120_000,
  }, async () => {
    const kp = client({ providers: [provider()] });
    const rotating = await kp.createKey('gcp-kms', {
      name: 'rotating',
      spec: 'AES_256',
      labels: { owner: 'team' },
      rotation: { periodDays: 90 },
    });
    await kp.rotateKey(rotating.uri);
    await kp.rotateKey(rotating.uri);
    const plain = await kp.createKey('gcp-kms', { name: 'plain', spec: 'AES_256' });
    const slow = await kp.createKey('gcp-kms', {
      name: 'slow',
      spec: 'AES_256',
      labels: { owner: 'team' },
      rotation: { periodDays: 400 },
    });
    const rsa = await kp.createKey('gcp-kms', {
      name: 'rsa',
      spec: 'RSA_2048',
      usage: 'sign_verify',
      labels: { owner: 'pki' },
    });
    await kp.rotateKey(rsa.uri);
    await kp.createGrant(rotating.uri, {
      grantee: 'serviceAccount:app@p.iam.gserviceaccount.com',
      operations: ['encrypt'],
      expiresAt: new Date(Date.now() + 30 * DAY_MS),
    });
    await kp.createGrant(slow.uri, {
      grantee: 'serviceAccount:batch@p.iam.gserviceaccount.com',
      operations: ['decrypt'],
      expiresAt: new Date(Date.now() + 200 * DAY_MS),
    });
    const names = { rotating: rotating.uri, plain: plain.uri, slow: slow.uri, rsa: rsa.uri };
    const inv = await collectInventory(kp, { sources: ['gcp-kms'] });
    // the key ring is this test's own: exactly the seeded keys
    expect(inv.sources).toEqual([{ source: 'gcp-kms', keys: 4 }]);
    const byUri = (uri: string) => inv.keys.find((k) => k.uri === uri) as InventoryKey;
    const r = byUri(rotating.uri);
    expect(r).toMatchObject({
      protection: 'software', // the versions' protection level (SOFTWARE)
      versions: 3,
      rotation: { enabled: true, periodDays: 90 },
      grants: { count: 1 },
      errors: [],
    });
    expect({ ...r.labels }).toEqual({ owner: 'team' });
    // the primary version is the newest (the second rotation): made after the key, minutes ago
    expect(Date.parse(String(r.lastRotatedAt))).toBeGreaterThanOrEqual(Date.parse(String(r.createdAt)));
    expect(Date.now() - Date.parse(String(r.lastRotatedAt))).toBeLessThan(3_600_000);
    // a key never rotated: one version, its material as old as the key
    const p = byUri(plain.uri);
    expect(p).toMatchObject({
      versions: 1,
      rotation: { enabled: false, periodDays: null },
      grants: { count: 0 },
    });
    expect(Date.parse(String(p.lastRotatedAt))).toBeGreaterThanOrEqual(Date.parse(String(p.createdAt)));
    // asymmetric keys have no primary: the newest version leads
    expect(byUri(rsa.uri)).toMatchObject({ algorithm: 'RSA_2048', versions: 2 });

    const policy = parsePolicyText(`
version: 1
rules:
  - { id: hsm, type: required-protection, severity: critical, protection: [hsm], match: { labels: { owner: team } } }
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 365, match: { purposes: [encrypt_decrypt] } }
  - { id: owner, type: owner-label, severity: low }
  - { id: rsa-size, type: min-key-size, severity: high, minBits: { RSA: 3072 } }
  - { id: grant-life, type: max-grant-lifetime, severity: high, maxDays: 90 }
`);
    const outcomes = (i: typeof inv, now?: Date) =>
      outcomesOf(checkPolicy(i, policy, now === undefined ? {} : { now }).findings, names);
    expect(outcomes(inv)).toEqual([
      'grant-life slow violation',
      'hsm rotating violation',
      'hsm slow violation',
      'owner plain violation',
      'rotation plain violation',
      'rotation slow violation',
      'rsa-size rsa violation',
    ]);
    // An operator's statement fills in only what the provider does not report: it cannot turn
    // Cloud KMS's own SOFTWARE into a pass.
    const stated = await collectInventory(kp, { sources: ['gcp-kms'], protection: { 'gcp-kms': 'hsm' } });
    expect(outcomes(stated)).toEqual(outcomes(inv));
    // 400 days on, the material's age is what the rotation rule reads, now that versions are dated.
    const later = checkPolicy(stated, policy, { now: new Date(Date.now() + 400 * DAY_MS) });
    expect(
      later.findings
        .filter((f) => f.ruleId === 'rotation' && f.keyUri === rotating.uri)
        .map((f) => f.message),
    ).toEqual([expect.stringMatching(/key material is 4\d\d days old/)]);
  });
});

describe('inventory on a Cloud KMS endpoint without version listing (drongo, REST)', () => {
  it('versions and last rotation are unknown, not guessed; what the endpoint cannot answer is in errors', {
    timeout: 60_000,
  }, async () => {
    const endpoint = new URL(requireTarget('drongo').KEYPORT_DRONGO_ENDPOINT);
    const auth = new OAuth2Client();
    auth.setCredentials({ access_token: 'keyport-test', expiry_date: Date.now() + 3_600_000 });
    const kp = client({
      providers: [
        new GcpKmsProvider({
          transport: 'rest',
          protocol: 'http',
          apiEndpoint: endpoint.hostname,
          port: Number(endpoint.port),
          authClient: auth,
          keyRing: `projects/p/locations/global/keyRings/policy-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
        }),
      ],
    });
    const key = await kp.createKey('gcp-kms', { name: 'k', spec: 'AES_256', labels: { owner: 'team' } });
    const inv = await collectInventory(kp, { sources: ['gcp-kms'] });
    expect(inv.sources).toEqual([{ source: 'gcp-kms', keys: 1 }]);
    const k = inv.keys[0] as InventoryKey;
    expect(k.uri).toBe(key.uri);
    expect(k).toMatchObject({ versions: UNKNOWN, lastRotatedAt: UNKNOWN, protection: 'software' });
    const policy = parsePolicyText(`
version: 1
rules:
  - { id: owner, type: owner-label, severity: low }
  - { id: grant-life, type: max-grant-lifetime, severity: high, maxDays: 90 }
`);
    // drongo has no IAM: the grant listing fails, so the grant rule is unknown, never a pass
    expect(k.errors.map((e) => e.field)).toContain('grants');
    expect(outcomesOf(checkPolicy(inv, policy).findings, { k: key.uri })).toEqual(['grant-life k unknown']);
  });
});
