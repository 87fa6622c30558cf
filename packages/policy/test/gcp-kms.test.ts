/**
 * Inventory and policy on Google Cloud KMS, against keyport's wire-level Cloud KMS server
 * (in-process gRPC): a provider whose protection level varies per key, so keyport reports it as
 * unknown — and the protection rule answers unknown, never pass — unless the operator states it.
 * The version list is not reported either: version count and last rotation date are unknown.
 */
import { credentials } from '@grpc/grpc-js';
import { GcpKmsProvider } from '@keyport/gcp-kms';
import { type CloudKmsServer, startCloudKmsServer } from '@keyport/test-servers';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPolicy, collectInventory, type InventoryKey, parsePolicyText, UNKNOWN } from '../src/index.js';
import { client } from './support/targets.js';

let server: CloudKmsServer;
beforeAll(async () => {
  server = await startCloudKmsServer();
});
afterAll(async () => {
  await server?.stop();
});

function provider(): GcpKmsProvider {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'keyport-test', expiry_date: Date.now() + 3_600_000 });
  return new GcpKmsProvider({
    apiEndpoint: '127.0.0.1',
    port: server.port,
    sslCreds: credentials.createInsecure(),
    authClient: auth,
    keyRing: `projects/p/locations/global/keyRings/policy-${Date.now().toString(36)}`,
  });
}

describe('inventory and policy on Cloud KMS (test server)', () => {
  it('protection unknown unless stated; rotation schedule and labels as Cloud KMS reports them', {
    timeout: 60_000,
  }, async () => {
    const kp = client({ providers: [provider()] });
    const rotating = await kp.createKey('gcp-kms', {
      name: 'rotating',
      spec: 'AES_256',
      labels: { owner: 'team' },
      rotation: { periodDays: 90 },
    });
    await kp.rotateKey(rotating.uri);
    const plain = await kp.createKey('gcp-kms', { name: 'plain', spec: 'AES_256' });
    const inv = await collectInventory(kp, { sources: ['gcp-kms'] });
    expect(inv.sources).toEqual([{ source: 'gcp-kms', keys: 2 }]);
    const r = inv.keys.find((k) => k.uri === rotating.uri) as InventoryKey;
    // The adapter reports the primary version, not the version list: count and rotation date unknown.
    expect(r).toMatchObject({
      protection: UNKNOWN,
      versions: UNKNOWN,
      lastRotatedAt: UNKNOWN,
      rotation: { enabled: true, periodDays: 90 },
    });
    expect(r.createdAt).not.toBe(UNKNOWN);
    expect({ ...r.labels }).toEqual({ owner: 'team' });

    const policy = parsePolicyText(`
version: 1
rules:
  - { id: hsm, type: required-protection, severity: critical, protection: [hsm] }
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 365 }
  - { id: owner, type: owner-label, severity: low }
`);
    const name = (u?: string) => (u === rotating.uri ? 'rotating' : u === plain.uri ? 'plain' : u);
    const outcomes = (i: typeof inv) =>
      checkPolicy(i, policy)
        .findings.map((f) => `${f.ruleId} ${name(f.keyUri)} ${f.status}`)
        .sort();
    expect(outcomes(inv)).toEqual([
      'hsm plain unknown',
      'hsm rotating unknown',
      'owner plain violation',
      'rotation plain violation',
    ]);
    // The operator says this key ring is HSM-backed: the rule can now pass.
    const stated = await collectInventory(kp, { sources: ['gcp-kms'], protection: { 'gcp-kms': 'hsm' } });
    expect(outcomes(stated)).toEqual(['owner plain violation', 'rotation plain violation']);
  });
});
