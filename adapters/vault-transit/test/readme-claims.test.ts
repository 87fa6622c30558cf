/**
 * The README's promises, each as a test against OpenBao: hostile and careless input (versions,
 * sizes, paths, `__proto__`), BYOK refusals, error redaction, the environment being ignored, the
 * transport never retrying, and concurrent callers sharing one login.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { Keyport } from '@keyport/core';
import NodeVault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type VaultTransitOptions, VaultTransitProvider, vaultTransit } from '../src/index.js';
import { bytes, call, keyName, openbao, provider, rejection, rootClient, text } from './helpers.js';

const run = keyName('claims').replace(/[^a-z0-9-]/g, '');

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

describe('README claims against OpenBao', () => {
  let p: VaultTransitProvider;
  let kp: Keyport;
  let uri: string;
  const root = rootClient();

  beforeAll(async () => {
    p = provider();
    kp = new Keyport({ providers: [p] });
    uri = (await p.createKey({ name: keyName('claims'), spec: 'AES_256' }, call())).uri;
    await p.rotateKey({ uri }, call());
  });
  afterAll(() => p.close());

  it('refuses a pinned version that is not a transit version instead of encrypting with the latest', async () => {
    for (const version of ['abc', '0', '01', '1.0', '-1', '2e0', '99999999999999999999']) {
      await expect(kp.encrypt({ uri, version }, bytes('x'))).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
      const direct = await rejection(p, p.destroyKeyVersion({ uri, version }, call()));
      expect(direct.code).toBe('InvalidArgument');
    }
    // Nothing was changed on the way: both versions still decrypt and encrypt.
    const data = await p.readTransitKey({ uri });
    expect([data.min_decryption_version, data.min_encryption_version, data.min_available_version]).toEqual([
      1, 0, 0,
    ]);
    expect((await kp.encrypt({ uri, version: '1' }, bytes('x'))).keyVersion).toBe('1');
  });

  it('makes data keys of 16, 32 or 64 bytes only; names of Object.prototype are not sizes', async () => {
    expect((await p.generateDataKey({ uri }, { bytes: 64 }, call())).plaintext.length).toBe(64);
    for (const size of ['constructor', 'toString', '__proto__', '32', Number.NaN, 24, 32.5]) {
      const refused = await rejection(p, p.generateDataKey({ uri }, { bytes: size as number }, call()));
      expect(refused.code).toBe('InvalidArgument');
    }
  });

  it('setVersionPolicy refuses values that are not whole versions, rather than ignoring them', async () => {
    const bad: Array<Record<string, unknown>> = [
      { minDecryptionVersion: Number.NaN },
      { minDecryptionVersion: '2' },
      { minDecryptionVersion: 1.5 },
      { minDecryptionVersion: 0 },
      { minEncryptionVersion: -1 },
      { minEncryptionVersion: Number.POSITIVE_INFINITY },
    ];
    for (const policy of bad) {
      await expect(p.setVersionPolicy({ uri }, policy)).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
    expect((await p.readTransitKey({ uri })).min_decryption_version).toBe(1);
    const info = await p.setVersionPolicy({ uri }, { minEncryptionVersion: 0 });
    expect(info.versions?.map((v) => v.state)).toEqual(['enabled', 'enabled']);
  });

  it('BYOK: a key with generated material refuses import (KeyStateConflict), a missing key is NotFound', async () => {
    const req = { wrappedMaterial: new Uint8Array(600), algorithm: 'RSA_AES_KEY_WRAP_SHA_256' } as const;
    expect((await rejection(p, p.importKeyMaterial({ uri }, req, call()))).code).toBe('KeyStateConflict');
    expect((await rejection(p, p.getImportParameters({ uri }, {}, call()))).code).toBe('KeyStateConflict');
    const missing = uri.replace(/keys\/.*/, `keys/${keyName('never-made')}`);
    const absent = await rejection(p, p.importKeyMaterial({ uri: missing }, req, call()));
    expect(absent).toMatchObject({ code: 'NotFound', retryable: false });
  });

  it('a body over the server limit is InvalidArgument, not a retryable or internal failure', async () => {
    // OpenBao's listener refuses bodies over 32 MiB with 413; base64 makes 25 MiB into 33.
    const huge = await rejection(p, p.encrypt({ uri }, new Uint8Array(25 * 1024 * 1024), {}, call()));
    expect(huge).toMatchObject({ code: 'InvalidArgument', retryable: false });
  });

  it('takes __proto__ as a key name and as a context key like any other', async () => {
    const name = `__proto__${run}`.slice(0, 60);
    const proto = (await p.createKey({ name: `${name}`, spec: 'AES_256' }, call())).uri;
    expect(proto.endsWith(`/keys/${name}`)).toBe(true);
    const context = JSON.parse('{"__proto__":"x","constructor":"y"}') as Record<string, string>;
    const sealed = await kp.encrypt(proto, bytes('proto'), { context });
    expect(text((await kp.decrypt(proto, sealed.ciphertext, { context })).plaintext)).toBe('proto');
    await expect(
      kp.decrypt(proto, sealed.ciphertext, { context: { constructor: 'y' } }),
    ).rejects.toMatchObject({ code: 'InvalidCiphertext' });
    await expect(kp.decrypt(proto, sealed.ciphertext)).rejects.toMatchObject({ code: 'InvalidCiphertext' });
  });

  it('names keys in nested mounts (team/transit) and refuses names and URIs with path tricks, sending nothing', async () => {
    const mount = `${run}/transit`;
    await root.write(`sys/mounts/${mount}`, { type: 'transit' });
    const nested = provider({ mount });
    try {
      const info = await nested.createKey({ name: keyName('nested'), spec: 'AES_256' }, call());
      expect(info.uri).toContain(`/${mount}/keys/`);
      const sealed = await nested.encrypt({ uri: info.uri }, bytes('n'), {}, call());
      expect(text((await p.decrypt({ uri: info.uri }, sealed.ciphertext, {}, call())).plaintext)).toBe('n');
      const listed: string[] = [];
      for await (const k of nested.listKeys(call())) listed.push(k.uri);
      expect(listed).toEqual([info.uri]);
      const sent: string[] = [];
      const client = await nested.session.client();
      const write = client.write.bind(client);
      client.write = (path: string, data: unknown, o?: unknown) => {
        sent.push(path);
        return write(path, data as never, o as never);
      };
      const host = nested.session.address;
      for (const name of ['..', '.', 'a/b', '../../sys/policy/x', 'a%2Fb', 'a b']) {
        const made = await rejection(nested, nested.createKey({ name, spec: 'AES_256' }, call()));
        expect(made.code).toBe('InvalidArgument');
      }
      for (const bad of [
        `hcvault://${host}/transit/keys/..`,
        `hcvault://${host}/transit/../sys/keys/k`,
        `hcvault://${host}//transit/keys/k`,
        `hcvault://${host}/transit/keys/k/..`,
      ]) {
        expect((await rejection(nested, nested.encrypt({ uri: bad }, bytes('x'), {}, call()))).code).toBe(
          'InvalidArgument',
        );
        expect((await rejection(nested, nested.deleteKey({ uri: bad }))).code).toBe('InvalidArgument');
      }
      expect(sent).toEqual([]);
    } finally {
      await nested.close();
    }
  });

  it('refuses mount paths that cannot work when the driver is made', () => {
    const endpoint = 'http://127.0.0.1:8200';
    const bad: Array<Partial<VaultTransitOptions>> = [
      { mount: '../sys' },
      { mount: 'transit/..' },
      { mount: '/transit' },
      { mount: 'transit/' },
      { mount: '' },
      { mount: 'team/keys/transit' },
      { auth: { method: 'approle', roleId: 'r', mount: '../../sys/policy' } },
      { metadataStore: { kvMount: 'secret', prefix: '../../sys/policy' } },
      { metadataStore: { kvMount: '' } },
    ];
    for (const options of bad) {
      expect(() => vaultTransit({ endpoint, ...options })).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    }
    expect(() => vaultTransit({ endpoint, mount: 'team-a/transit.v2' })).not.toThrow();
  });

  it('never shows the token in an error, however it is printed (built transport and a given client)', async () => {
    const secret = `hvs.${'S3cr3tT0k3n'.repeat(3)}`;
    const wrongToken = provider({ auth: { method: 'token', token: secret, renew: false } });
    const given = new VaultTransitProvider({
      endpoint: 'http://127.0.0.1:9',
      client: NodeVault({ endpoint: 'http://127.0.0.1:9', token: secret }),
    });
    const built = new VaultTransitProvider({
      endpoint: 'http://127.0.0.1:9',
      auth: { method: 'token', token: secret, renew: false },
    });
    try {
      const errors = [
        await rejection(wrongToken, wrongToken.encrypt({ uri }, bytes('x'), {}, call())),
        await rejection(given, given.describeKey({ uri: 'hcvault://127.0.0.1:9/transit/keys/k' }, call())),
        await rejection(built, built.describeKey({ uri: 'hcvault://127.0.0.1:9/transit/keys/k' }, call())),
      ];
      expect(errors.map((e) => e.code)).toEqual(['AccessDenied', 'Unavailable', 'Unavailable']);
      for (const e of errors) {
        const shown = [
          inspect(e, { depth: Number.POSITIVE_INFINITY, showHidden: true }),
          JSON.stringify(e),
          String(e),
          e.stack ?? '',
        ].join('\n');
        expect(shown).not.toContain('S3cr3tT0k3n');
      }
    } finally {
      await Promise.all([wrongToken.close(), given.close(), built.close()]);
    }
  });

  it('ignores VAULT_TOKEN, VAULT_ADDR, VAULT_NAMESPACE and VAULT_PREFIX from the environment', async () => {
    const names = ['VAULT_TOKEN', 'VAULT_ADDR', 'VAULT_NAMESPACE', 'VAULT_PREFIX'] as const;
    const saved = names.map((n) => process.env[n]);
    const env = openbao();
    Object.assign(process.env, {
      VAULT_TOKEN: env.token,
      VAULT_ADDR: 'http://127.0.0.1:9',
      VAULT_NAMESPACE: `${run}-no-such-namespace`,
      VAULT_PREFIX: '/no-such-prefix',
    });
    const noAuth = new VaultTransitProvider({ endpoint: env.addr });
    const explicit = new VaultTransitProvider({ endpoint: env.addr, auth: env.token });
    try {
      // Without `auth` no token is sent at all: the root token in VAULT_TOKEN is not picked up.
      expect((await rejection(noAuth, noAuth.describeKey({ uri }, call()))).code).toBe('AccessDenied');
      // With it, the namespace, prefix and address from the environment play no part.
      expect((await explicit.describeKey({ uri }, call())).primaryVersion).toBe('2');
    } finally {
      names.forEach((n, i) => {
        if (saved[i] === undefined) delete process.env[n];
        else process.env[n] = saved[i];
      });
      await Promise.all([noAuth.close(), explicit.close()]);
    }
  });

  it('the transport never retries: one request per attempt, so core retries are never multiplied', async () => {
    let requests = 0;
    const resetting = createServer((req) => {
      requests++;
      req.socket.destroy();
    });
    const port = await listen(resetting);
    const endpoint = `http://127.0.0.1:${port}`;
    const drop = new VaultTransitProvider({ endpoint, auth: { method: 'token', token: 't', renew: false } });
    const k = `hcvault://127.0.0.1:${port}/transit/keys/k`;
    try {
      const direct = await rejection(drop, drop.encrypt({ uri: k }, bytes('x'), {}, call()));
      expect(direct).toMatchObject({ code: 'Unavailable', retryable: true });
      expect(requests).toBe(1);
      const policy = new Keyport({
        providers: [drop],
        retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
      });
      await expect(policy.encrypt(k, bytes('x'))).rejects.toMatchObject({ code: 'Unavailable' });
      expect(requests).toBe(1 + 3);
    } finally {
      await drop.close();
      resetting.closeAllConnections();
      resetting.close();
    }
  });
});

describe('README claims about tokens', () => {
  const root = rootClient();
  let p: VaultTransitProvider;
  let uri: string;
  const policy = `${run}-enc`;

  beforeAll(async () => {
    p = provider();
    uri = (await p.createKey({ name: keyName('tok'), spec: 'AES_256' }, call())).uri;
    await root.write(`sys/policy/${policy}`, {
      policy: `path "transit/encrypt/${uri.split('/keys/')[1]}" { capabilities = ["update"] }`,
    });
  });
  afterAll(() => p.close());

  let mounts = 0;
  async function approle(): Promise<{ roleId: string; secretId: string; mount: string }> {
    const mount = `${run}-approle-${++mounts}`;
    await root.write(`sys/auth/${mount}`, { type: 'approle' });
    await root.write(`auth/${mount}/role/app`, { token_policies: [policy], token_ttl: '60s' });
    const roleId = ((await root.read(`auth/${mount}/role/app/role-id`)) as { data: { role_id: string } }).data
      .role_id;
    const secretId = (
      (await root.write(`auth/${mount}/role/app/secret-id`, {})) as { data: { secret_id: string } }
    ).data.secret_id;
    return { roleId, secretId, mount };
  }

  it('concurrent calls share one login, and one caller giving up does not fail the others', async () => {
    const { roleId, secretId, mount } = await approle();
    const app = provider({ auth: { method: 'approle', roleId, secretId, mount } });
    try {
      await app.session.client();
      const tokens = app.session.tokens;
      if (tokens === undefined) throw new Error('no token manager');
      // Abort the first caller once both callers wait for the one login it started.
      let waiting = 0;
      let bothWaiting: () => void = () => undefined;
      const both = new Promise<void>((resolve) => {
        bothWaiting = resolve;
      });
      const ensure = tokens.ensure.bind(tokens);
      tokens.ensure = (signal: AbortSignal) => {
        const pending = ensure(signal);
        if (++waiting === 2) bothWaiting();
        return pending;
      };
      const impatient = new AbortController();
      const first = app.encrypt({ uri }, bytes('first'), {}, { signal: impatient.signal });
      const second = app.encrypt({ uri }, bytes('second'), {}, call());
      await both;
      impatient.abort();
      expect((await rejection(app, first)).code).toBe('Aborted');
      expect((await second).keyVersion).toBe('1');
      const many = await Promise.all(
        Array.from({ length: 8 }, (_, i) => app.encrypt({ uri }, bytes(`${i}`), {}, call())),
      );
      expect(many).toHaveLength(8);
      expect(tokens.stats).toEqual({ logins: 1, renewals: 0 });
    } finally {
      await app.close();
    }
  });

  it('runs the README usage sample as written (AppRole, Keyport, createKey by name, encrypt with a context)', async () => {
    const { roleId, secretId, mount } = await approle();
    await root.write(`sys/policy/${policy}-admin`, {
      policy: 'path "transit/*" { capabilities = ["create", "read", "update"] }',
    });
    await root.write(`auth/${mount}/role/app`, { token_policies: [`${policy}-admin`], token_ttl: '60s' });
    const vault = vaultTransit({
      endpoint: openbao().addr,
      auth: { method: 'approle', roleId, secretId, mount },
      tls: { rejectUnauthorized: true },
    });
    const keyport = new Keyport({ providers: [vault] });
    try {
      const { uri: made } = await keyport.createKey('hcvault', { name: keyName('orders'), spec: 'AES_256' });
      const data = bytes('order #1');
      const { ciphertext } = await keyport.encrypt(made, data, { context: { tenant: 'acme' } });
      expect(text((await keyport.decrypt(made, ciphertext, { context: { tenant: 'acme' } })).plaintext)).toBe(
        'order #1',
      );
    } finally {
      await keyport.close();
    }
  });

  it('renews a token with a TTL once renewAfterFraction has passed; a token that may not look itself up is used unrenewed', async () => {
    type Created = { auth: { client_token: string } };
    const renewable = (
      (await root.write('auth/token/create', {
        policies: [policy],
        ttl: '6s',
        explicit_max_ttl: '120s',
        renewable: true,
      })) as Created
    ).auth.client_token;
    const bare = (
      (await root.write('auth/token/create', {
        policies: [policy],
        no_default_policy: true,
        ttl: '60s',
      })) as Created
    ).auth.client_token;
    const renewing = provider({ auth: { method: 'token', token: renewable }, renewAfterFraction: 0.5 });
    const unrenewed = provider({ auth: bare });
    try {
      await renewing.encrypt({ uri }, bytes('1'), {}, call());
      expect(renewing.session.tokens?.stats).toEqual({ logins: 0, renewals: 0 });
      await new Promise((r) => setTimeout(r, 3_500)); // past half of the 6 s lease
      await renewing.encrypt({ uri }, bytes('2'), {}, call());
      expect(renewing.session.tokens?.stats.renewals).toBe(1);
      await new Promise((r) => setTimeout(r, 3_000)); // 6.5 s: alive only through the renewal
      await renewing.encrypt({ uri }, bytes('3'), {}, call());
      // lookup-self is outside this token's policies: it is used as it is, and it works.
      await unrenewed.encrypt({ uri }, bytes('u'), {}, call());
      await unrenewed.encrypt({ uri }, bytes('v'), {}, call());
      expect(unrenewed.session.tokens?.stats).toEqual({ logins: 0, renewals: 0 });
    } finally {
      await Promise.all([renewing.close(), unrenewed.close()]);
    }
  }, 30_000);
});
