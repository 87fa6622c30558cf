import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultTransitProvider } from '../src/index.js';
import { bytes, call, keyName, provider, rejection, text } from './helpers.js';

describe('grants as Vault policies + tokens against OpenBao', () => {
  let p: VaultTransitProvider;
  let uri: string;
  const opened: VaultTransitProvider[] = [];
  const as = (token: string | undefined): VaultTransitProvider => {
    if (token === undefined) throw new Error('a Vault grant returns the grantee token');
    const q = provider({ auth: { method: 'token', token, renew: false } });
    opened.push(q);
    return q;
  };

  beforeAll(async () => {
    p = provider();
    uri = (await p.createKey({ name: keyName('granted'), spec: 'AES_256' }, call())).uri;
  });
  afterAll(async () => {
    await Promise.all([p, ...opened].map((q) => q.close()));
  });

  it('allows exactly the granted operations, with the context pinned by contextEquals', async () => {
    const grant = await p.createGrant(
      { uri },
      {
        grantee: 'app-a',
        operations: ['encrypt', 'decrypt'],
        constraints: { contextEquals: { tenant: 'a' } },
      },
      call(),
    );
    expect(grant).toMatchObject({ grantee: 'app-a', keyUri: uri, operations: ['encrypt', 'decrypt'] });
    const g = as(grant.token);
    const ok = await g.encrypt({ uri }, bytes('granted'), { context: { tenant: 'a' } }, call());
    expect(
      text((await g.decrypt({ uri }, ok.ciphertext, { context: { tenant: 'a' } }, call())).plaintext),
    ).toBe('granted');
    // Thunks, called one by one: a promise created early would reject before it is awaited.
    const denied = [
      () => g.encrypt({ uri }, bytes('x'), { context: { tenant: 'b' } }, call()),
      () => g.encrypt({ uri }, bytes('x'), {}, call()),
      () => g.encrypt({ uri }, bytes('x'), { context: { tenant: 'a', extra: '1' } }, call()),
      () => g.generateDataKey({ uri }, { context: { tenant: 'a' } }, call()),
      () => g.describeKey({ uri }, call()),
      () => g.rotateKey({ uri }, call()),
    ];
    for (const d of denied) expect((await rejection(g, d())).code).toBe('AccessDenied');
    // batch_input would carry associated_data past the policy check: denied outright.
    await expect(
      g.encryptBatch({ uri }, [{ data: bytes('x'), context: { tenant: 'a' } }]),
    ).rejects.toMatchObject({
      code: 'AccessDenied',
    });
  });

  it('lists grants and revokes them (token revoked, policy deleted)', async () => {
    const grant = await p.createGrant(
      { uri },
      { grantee: 'app-b', operations: ['encrypt'], name: 'nightly' },
      call(),
    );
    const g = as(grant.token);
    await g.encrypt({ uri }, bytes('before'), {}, call());
    const listed = [];
    for await (const x of p.listGrants({ uri }, call())) listed.push(x);
    const mine = listed.find((x) => x.id === grant.id);
    expect(mine).toMatchObject({ grantee: 'app-b', operations: ['encrypt'], name: 'nightly' });
    expect(mine?.token).toBeUndefined();
    await p.revokeGrant({ uri }, grant.id, call());
    expect((await rejection(g, g.encrypt({ uri }, bytes('after'), {}, call()))).code).toBe('AccessDenied');
    const after = [];
    for await (const x of p.listGrants({ uri }, call())) after.push(x.id);
    expect(after).not.toContain(grant.id);
    expect((await rejection(p, p.revokeGrant({ uri }, grant.id, call()))).code).toBe('NotFound');
  });

  it('expires natively with the token TTL', async () => {
    const grant = await p.createGrant(
      { uri },
      { grantee: 'app-c', operations: ['encrypt'], expiresAt: new Date(Date.now() + 2_000) },
      call(),
    );
    const g = as(grant.token);
    await g.encrypt({ uri }, bytes('in time'), {}, call());
    await sleep(2_600);
    expect((await rejection(g, g.encrypt({ uri }, bytes('late'), {}, call()))).code).toBe('AccessDenied');
  });

  it('refuses contextSubset (Vault pins exact values) and re_encrypt under a context', async () => {
    const subset = p.createGrant(
      { uri },
      { grantee: 'x', operations: ['decrypt'], constraints: { contextSubset: { a: '1' } } },
      call(),
    );
    expect((await rejection(p, subset)).code).toBe('Unsupported');
    const rewrap = p.createGrant(
      { uri },
      { grantee: 'x', operations: ['re_encrypt'], constraints: { contextEquals: { a: '1' } } },
      call(),
    );
    expect((await rejection(p, rewrap)).code).toBe('InvalidArgument');
  });
});
