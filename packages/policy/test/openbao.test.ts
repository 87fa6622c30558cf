/**
 * Inventory and policy on Vault/OpenBao transit (a real OpenBao dev server, a transit mount of
 * this test's own, labels kept in the dev server's KV v2 mount): software protection, versioned
 * rotation with dates, grants as tokens with a TTL.
 */
import { VaultTransitProvider } from '@keyport/vault-transit';
import { describe, expect, it } from 'vitest';
import {
  checkPolicy,
  collectInventory,
  type InventoryKey,
  inventoryTable,
  parsePolicyText,
  UNKNOWN,
} from '../src/index.js';
import { client } from './support/targets.js';

function openbao(): { addr: string; token: string } {
  const addr = process.env.KEYPORT_OPENBAO_ADDR;
  const token = process.env.KEYPORT_OPENBAO_TOKEN;
  if (!addr || !token) throw new Error('openbao is not running: run "pnpm emulators up openbao"');
  return { addr, token };
}

async function mountTransit(): Promise<string> {
  const { addr, token } = openbao();
  const mount = `pol-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const res = await fetch(`${addr}/v1/sys/mounts/${mount}`, {
    method: 'POST',
    headers: { 'X-Vault-Token': token, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'transit' }),
  });
  if (!res.ok) throw new Error(`mounting transit failed: ${res.status} ${await res.text()}`);
  return mount;
}

describe('inventory and policy on OpenBao transit', () => {
  it('reports versions, rotation, labels, grants; the rules find exactly the seeded violations', {
    timeout: 120_000,
  }, async () => {
    const { addr, token } = openbao();
    const mount = await mountTransit();
    const provider = new VaultTransitProvider({
      endpoint: addr,
      auth: token,
      mount,
      flavor: 'openbao',
      metadataStore: { kvMount: 'secret', prefix: `keyport-policy/${mount}` },
    });
    const kp = client({ providers: [provider] });
    const good = await kp.createKey('hcvault', {
      name: 'good',
      spec: 'AES_256',
      labels: { owner: 'team' },
      rotation: { periodDays: 30 },
    });
    await kp.rotateKey(good.uri);
    const bad = await kp.createKey('hcvault', { name: 'bad', spec: 'AES_256' });
    await kp.createGrant(bad.uri, {
      grantee: 'svc',
      operations: ['encrypt'],
      // Beyond the rule's 30 days, within what the token mount allows (768h = 32 days by default;
      // the adapter refuses an expiry its token could not have).
      expiresAt: new Date(Date.now() + 31 * 86_400_000),
    });
    const inv = await collectInventory(kp, { sources: ['hcvault'] });
    expect(inv.sources).toEqual([{ source: 'hcvault', keys: 2 }]);
    const g = inv.keys.find((k) => k.uri === good.uri) as InventoryKey;
    expect(g).toMatchObject({
      protection: 'software',
      algorithm: 'AES_256',
      versions: 2,
      rotation: { enabled: true, periodDays: 30 },
      errors: [],
    });
    expect({ ...g.labels }).toEqual({ owner: 'team' });
    expect(g.lastRotatedAt).not.toBe(UNKNOWN);
    const b = inv.keys.find((k) => k.uri === bad.uri) as InventoryKey;
    expect(b.grants.count).toBe(1);

    const policy = parsePolicyText(`
version: 1
rules:
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 90 }
  - { id: owner, type: owner-label, severity: low }
  - { id: grant-life, type: max-grant-lifetime, severity: high, maxDays: 30 }
  - { id: software-ok, type: required-protection, severity: low, protection: [software, hsm] }
`);
    const r = checkPolicy(inv, policy);
    const name = (u?: string) => (u === good.uri ? 'good' : u === bad.uri ? 'bad' : u);
    expect(r.findings.map((f) => `${f.ruleId} ${name(f.keyUri)} ${f.status}`).sort()).toEqual([
      'grant-life bad violation',
      'owner bad violation',
      'rotation bad violation',
    ]);
  });

  it('a key keyport has no spec for is in the inventory as unmodeled and every rule reports it unknown', {
    timeout: 60_000,
  }, async () => {
    const { addr, token } = openbao();
    const mount = await mountTransit();
    const provider = new VaultTransitProvider({ endpoint: addr, auth: token, mount, flavor: 'openbao' });
    const kp = client({ providers: [provider] });
    const aes = await kp.createKey('hcvault', { name: 'aes', spec: 'AES_256' });
    await provider.createTransitKey('ed', 'ed25519');
    const ed = `hcvault://${new URL(addr).host}/${mount}/keys/ed`;
    const inv = await collectInventory(kp, { sources: ['hcvault'] });
    expect(inv.keys.map((k) => k.uri)).toEqual([aes.uri]);
    expect(inv.sources).toEqual([
      {
        source: 'hcvault',
        keys: 1,
        unmodeled: [{ uri: ed, reason: 'keyport has no key spec for transit ed25519 keys' }],
      },
    ]);
    expect(inventoryTable(inv)).toContain(
      `hcvault: 1 keys, and 1 key keyport cannot describe (not checked: ${ed})`,
    );
    const policy = parsePolicyText(`
version: 1
rules:
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 90 }
  - { id: elsewhere, type: owner-label, severity: low, match: { providers: [aws-kms] } }
`);
    const result = checkPolicy(inv, policy);
    const about = result.findings.filter((f) => f.keyUri === ed);
    expect(about.map((f) => [f.ruleId, f.status])).toEqual([['rotation', 'unknown']]);
    expect(about[0]?.message).toBe('keyport has no key spec for transit ed25519 keys: not checked');
    // A scoped inventory keeps them unless filterUnmodeled leaves them out.
    const scoped = await collectInventory(kp, { sources: ['hcvault'], filter: (k) => k.uri === aes.uri });
    expect(scoped.sources[0]?.unmodeled?.map((k) => k.uri)).toEqual([ed]);
    const both = await collectInventory(kp, {
      sources: ['hcvault'],
      filter: (k) => k.uri === aes.uri,
      filterUnmodeled: (k) => k.uri !== ed,
    });
    expect(both.sources).toEqual([{ source: 'hcvault', keys: 1 }]);
    await expect(
      collectInventory(kp, { sources: ['hcvault'], filterUnmodeled: 'no' as never }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
  });
});
