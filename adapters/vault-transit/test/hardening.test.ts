// A careless user and an attacker: concurrent creators of one name (in one provider, and in two
// providers standing for two processes), options that cannot work or that smuggle headers, and
// arguments of the wrong kind on the driver's own methods — refused with InvalidArgument before
// anything is sent, never a raw TypeError or a silent default.
import { KeyportError } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type VaultTransitOptions, type VaultTransitProvider, vaultTransit } from '../src/index.js';
import { bytes, call, keyName, provider, rejection, rootClient } from './helpers.js';

/** The outcomes of concurrent calls: how many succeeded, and the codes of those that failed. */
async function outcomes(p: VaultTransitProvider, calls: Promise<unknown>[]) {
  const settled = await Promise.allSettled(calls);
  const codes = await Promise.all(
    settled
      .filter((s) => s.status === 'rejected')
      .map(async (s) => (await rejection(p, Promise.reject((s as PromiseRejectedResult).reason))).code),
  );
  return { ok: settled.filter((s) => s.status === 'fulfilled').length, codes };
}

describe('concurrent creation of one key name', () => {
  let p: VaultTransitProvider;
  let other: VaultTransitProvider;
  beforeAll(() => {
    p = provider();
    other = provider();
  });
  afterAll(async () => {
    await Promise.all([p.close(), other.close()]);
  });

  it('in one provider: one of two concurrent createKey calls succeeds, the other is AlreadyExists', async () => {
    for (let i = 0; i < 3; i++) {
      const name = keyName('twice');
      const r = await outcomes(p, [
        p.createKey({ name, spec: 'AES_256' }, call()),
        p.createKey({ name, spec: 'AES_256' }, call()),
      ]);
      expect(r).toEqual({ ok: 1, codes: ['AlreadyExists'] });
    }
  });

  it('in one provider: two concurrent external (pending import) creations of one name, one wins', async () => {
    const name = keyName('twice-ext');
    const r = await outcomes(p, [
      p.createKey({ name, spec: 'AES_256', external: true }, call()),
      p.createKey({ name, spec: 'AES_256', external: true }, call()),
    ]);
    expect(r).toEqual({ ok: 1, codes: ['AlreadyExists'] });
  });

  it('across two providers (two processes): exactly one creator succeeds, whatever the spec', async () => {
    for (const spec of ['AES_256', 'EC_P256', 'HMAC_256'] as const) {
      const name = keyName(`race-${spec.toLowerCase()}`);
      const r = await outcomes(p, [
        p.createKey({ name, spec }, call()),
        other.createKey({ name, spec }, call()),
        p.createTransitKey(name, 'aes256-gcm96'),
        other.createTransitKey(name, 'aes256-gcm96'),
      ]);
      expect(r).toEqual({ ok: 1, codes: ['AlreadyExists', 'AlreadyExists', 'AlreadyExists'] });
    }
  });

  it('the key made keeps the rotation asked for, and a taken name is refused however it was made', async () => {
    const plain = await p.createKey({ name: keyName('plain'), spec: 'AES_256' }, call());
    expect(plain.rotation).toBeUndefined();
    expect((await p.readTransitKey({ uri: plain.uri })).auto_rotate_period).toBe(0);
    const rotating = await p.createKey(
      { name: keyName('rotating'), spec: 'EC_P384', rotation: { periodDays: 90 } },
      call(),
    );
    expect(rotating.rotation).toEqual({ periodDays: 90 });
    const made = keyName('by-root');
    await rootClient().write(`transit/keys/${made}`, { type: 'aes256-gcm96' });
    expect((await rejection(p, p.createKey({ name: made, spec: 'AES_256' }, call()))).code).toBe(
      'AlreadyExists',
    );
    expect((await p.readTransitKey({ uri: plain.uri.replace(/[^/]+$/, made) })).auto_rotate_period).toBe(0);
  });

  it('a rotation date (nextRotationAt) transit cannot take is Unsupported at createKey (no key made) and setRotationPolicy', async () => {
    const name = keyName('rotation-date');
    const nextRotationAt = new Date(Date.now() + 30 * 86_400_000);
    const refused = await rejection(
      p,
      p.createKey({ name, spec: 'AES_256', rotation: { periodDays: 30, nextRotationAt } }, call()),
    );
    expect(refused).toMatchObject({
      code: 'Unsupported',
      message: expect.stringContaining('nextRotationAt'),
    });
    const key = await p.createKey({ name, spec: 'AES_256', rotation: { periodDays: 30 } }, call());
    expect((await rejection(p, p.setRotationPolicy({ uri: key.uri }, { nextRotationAt }, call()))).code).toBe(
      'Unsupported',
    );
    expect((await p.readTransitKey({ uri: key.uri })).auto_rotate_period).toBe(30 * 86_400);
  });

  it('across two providers: concurrent rotations both land, and each answer describes the key after its own', async () => {
    const { uri } = await p.createKey({ name: keyName('rotate-race'), spec: 'AES_256' }, call());
    const [mine, theirs] = await Promise.all([
      p.rotateKey({ uri }, call()),
      other.rotateKey({ uri }, call()),
    ]);
    expect([mine.primaryVersion, theirs.primaryVersion]).toContain('3');
    for (const info of [mine, theirs]) expect(Number(info.primaryVersion)).toBeGreaterThanOrEqual(2);
    expect((await p.describeKey({ uri }, call())).versions?.map((v) => v.version)).toEqual(['1', '2', '3']);
  });

  it('across two providers: a key deleted and made again with another type elsewhere is never signed with as the old type', async () => {
    const name = keyName('replaced');
    const { uri } = await p.createKey({ name, spec: 'EC_P256' }, call());
    expect((await p.sign({ uri }, bytes('m'), {}, call())).algorithm).toBe('ECDSA_SHA_256');
    // Another process replaces the key: same name, now RSA.
    await other.deleteKey({ uri });
    await other.createKey({ name, spec: 'RSA_2048' }, call());
    const error = await rejection(p, p.sign({ uri }, bytes('m'), {}, call()));
    expect(error.code).toBe('Internal');
    expect(error.message).toMatch(/no ecdsa-p256 key makes/);
    // Learnt anew: the next call signs with the key as it is now, under its own algorithm.
    const signed = await p.sign({ uri }, bytes('m'), {}, call());
    expect(signed.algorithm).toBe('RSASSA_PSS_SHA_256');
    expect(signed.signature.length).toBe(256);
  });

  it('a caller that gives up while waiting for its turn leaves; the next one still waits for the first', async () => {
    const name = keyName('turns');
    const impatient = new AbortController();
    const first = p.createKey({ name, spec: 'RSA_2048' }, call());
    const second = p.createKey({ name, spec: 'RSA_2048' }, { signal: impatient.signal });
    const third = rejection(p, p.createKey({ name, spec: 'RSA_2048' }, call()));
    impatient.abort();
    expect((await rejection(p, second)).code).toBe('Aborted');
    expect((await first).spec).toBe('RSA_2048');
    expect((await third).code).toBe('AlreadyExists');
  });

  it('createTransitKey refuses types and periods it cannot honour before creating anything', async () => {
    const name = keyName('tk-bad');
    const bad: Array<[unknown, unknown]> = [
      ['__proto__', {}],
      ['aes128-gcm96', {}],
      ['aes256-gcm96', { autoRotatePeriodSeconds: Number.NaN }],
      ['aes256-gcm96', { autoRotatePeriodSeconds: 60 }],
      ['aes256-gcm96', { autoRotatePeriodSeconds: 1e12 }],
      ['aes256-gcm96', { autoRotatePeriodSeconds: '3600' }],
      ['aes256-gcm96', { derived: 'yes' }],
    ];
    for (const [type, opts] of bad) {
      const made = p.createTransitKey(name, type as 'hmac', opts as { derived?: boolean });
      expect((await rejection(p, made)).code).toBe('InvalidArgument');
    }
    expect(
      await rootClient()
        .read(`transit/keys/${name}`)
        .catch(() => undefined),
    ).toBeUndefined();
    // A name that is not a name is a rejected promise too, never a synchronous throw.
    for (const name of ['a/../b', 42]) {
      let pending: Promise<unknown> | undefined;
      expect(() => {
        pending = p.createTransitKey(name as string, 'hmac');
      }).not.toThrow();
      await expect(pending).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
  });
});

describe('options a careless user or an attacker passes', () => {
  const endpoint = 'http://127.0.0.1:8200';
  const refused = (options: unknown) => {
    let error: unknown;
    try {
      vaultTransit(options as VaultTransitOptions);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KeyportError);
    expect(error).toMatchObject({ code: 'InvalidArgument' });
    return error as KeyportError;
  };

  it.each([
    ['CR/LF (a second header)', 'team\r\nX-Vault-Token: s.stolen'],
    ['a line feed', 'team\n'],
    ['a NUL', 'team\u0000'],
    ['a tab', 'te\tam'],
    ['a space', 'team a'],
    ['a ".." segment (read as the root namespace)', 'team/..'],
    ['a "." segment', 'team/./b'],
    ['an empty segment', 'team//b'],
    ['a leading slash', '/team'],
    ['only a slash', '/'],
    ['the empty string', ''],
    ['a non-ASCII character', 'équipe'],
    ['"+" or "*"', 'team+1'],
    ['a number', 42],
  ])('refuses a namespace with %s at construction', (_, namespace) => {
    const error = refused({ endpoint, namespace });
    expect(error.message).toMatch(/namespace/);
    expect(error.message).not.toContain('stolen');
  });

  it.each([
    [
      'a misspelt auth (the call would fall back to VAULT_TOKEN: another identity)',
      { tokn: 's.x' },
      '"tokn"',
    ],
    ['a misspelt namespace (the root namespace would be used)', { namspace: 'team' }, '"namspace"'],
    [
      'a field the token method does not have',
      { auth: { method: 'token', token: 's.x', ttl: 60 } },
      'auth: unknown option "ttl"',
    ],
    [
      'an AppRole secret under a misspelt name',
      { auth: { method: 'approle', roleId: 'r', secretID: 'hunter2' } },
      'auth: unknown option "secretID"',
    ],
    [
      'a Kubernetes field misspelt',
      { auth: { method: 'kubernetes', role: 'r', jwtpath: '/t' } },
      'auth: unknown option "jwtpath"',
    ],
    [
      'a misspelt metadata store field',
      { metadataStore: { kvMount: 'secret', prefx: 'p' } },
      'metadataStore: unknown option "prefx"',
    ],
    ['a metadata store that is not an object', { metadataStore: 'secret' }, 'metadataStore'],
  ])('refuses %s at construction, naming the field and never its value', (_, extra, named) => {
    const error = refused({ endpoint, ...extra });
    expect(error.message).toContain(named);
    expect(`${error.message}${JSON.stringify(error)}`).not.toMatch(/hunter2|s\.x/);
  });

  it('takes namespaces Vault reads as written, a trailing slash included', () => {
    for (const namespace of ['team-a', 'parent/child', 'admin/', 'a.b_c-d/e']) {
      expect(() => vaultTransit({ endpoint, namespace })).not.toThrow();
    }
  });

  it.each([
    ['credentials in the URL', 'http://root:s.secret@127.0.0.1:8200'],
    ['a path (a proxy prefix that would be dropped)', 'https://vault.example:443/vault'],
    ['a query', 'http://127.0.0.1:8200/?namespace=x'],
    ['a fragment', 'http://127.0.0.1:8200/#x'],
  ])('refuses an endpoint with %s, never echoing it', (_, e) => {
    const error = refused({ endpoint: e });
    expect(`${error.message}${JSON.stringify(error)}`).not.toContain('secret');
  });

  it.each([
    ['null', null],
    ['an unknown method', { method: 'userpass', username: 'u', password: 'p' }],
    ['no method', { token: 's.x' }],
    ['a token method without a token', { method: 'token' }],
    ['a token that is not a string', { method: 'token', token: 42 }],
    ['AppRole without a role id', { method: 'approle', secretId: 's' }],
    ['AppRole with a numeric secret id', { method: 'approle', roleId: 'r', secretId: 1 }],
    ['Kubernetes without a role', { method: 'kubernetes', jwt: 'j' }],
    ['Kubernetes with an empty JWT', { method: 'kubernetes', role: 'r', jwt: '' }],
  ])('refuses auth that is %s at construction (not a kubernetes login or no token at all)', (_, auth) => {
    refused({ endpoint, auth });
  });

  it('refuses a renewal fraction that is not a number', () => {
    refused({ endpoint, renewAfterFraction: '0.5' });
  });
});
