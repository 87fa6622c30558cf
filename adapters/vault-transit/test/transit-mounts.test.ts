/**
 * A key URI names its mount, and a transit request to a mount that is not transit means something
 * else there: `<kv v1>/decrypt/<name>` or `cubbyhole/decrypt/<name>` stores the request body as a
 * secret, `DELETE <kv v1>/keys/<name>` deletes one. Key URIs come from messages too (discovery),
 * so these requests must never leave for a mount the server does not call transit.
 */
import { createKeyport, type Keyport } from '@keyport/core';
import { DataKeyUnavailableError, openEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VaultTransitProvider } from '../src/index.js';
import { bytes, call, keyName, openbao, provider, rejection, rootClient } from './helpers.js';

const root = rootClient();
const host = () => new URL(openbao().addr).host;
const uriOn = (mount: string, name: string) => `hcvault://${host()}/${mount}/keys/${name}`;
/** A mount path of `length` characters, new on every run (the server outlives a test run). */
const mountName = (prefix: string, length: number) =>
  `${prefix}${Math.random().toString(36).slice(2)}${'0'.repeat(length)}`.slice(0, length);

/** What a path holds, or undefined when nothing is there. */
async function stored(path: string): Promise<unknown> {
  try {
    return (await root.read(path)).data;
  } catch (error) {
    if ((error as { response?: { statusCode?: number } }).response?.statusCode === 404) return undefined;
    throw error;
  }
}

describe('vault-transit: transit requests go to transit mounts only', () => {
  // Seven characters, as long as `transit`: a forged EDK naming it keeps the message's lengths.
  const kv1 = mountName('k', 7);
  const transit2 = mountName('t2', 10);
  const p = provider();

  beforeAll(async () => {
    // node-vault's generated commands (mount, addPolicy...) render with mustache, which breaks
    // under the test bundler; `write` is the same request.
    await root.write(`sys/mounts/${kv1}`, { type: 'kv', options: { version: '1' } });
    await root.write(`sys/mounts/${transit2}`, { type: 'transit' });
  });
  afterAll(async () => {
    await p.close();
    await root.delete(`sys/mounts/${kv1}`);
    await root.delete(`sys/mounts/${transit2}`);
  });

  it('refuses a decrypt on a KV v1 mount and on cubbyhole, writing nothing there', async () => {
    const name = keyName('kv');
    for (const [mount, engine] of [
      [kv1, 'kv'],
      ['cubbyhole', 'cubbyhole'],
    ] as const) {
      const error = await rejection(
        p,
        p.decrypt({ uri: uriOn(mount, name) }, bytes('vault:v1:AAAA'), {}, call()),
      );
      expect(error.code).toBe('InvalidArgument');
      expect(error.message).toContain(`${mount}/ is not a transit mount`);
      expect(error.message).toContain(`a ${engine} engine at ${mount}/`);
      expect(await stored(`${mount}/decrypt/${name}`)).toBeUndefined();
    }
  });

  it('refuses every key call on a KV v1 mount: a secret named like a key is neither read, overwritten nor deleted', async () => {
    const name = keyName('victim');
    await root.write(`${kv1}/keys/${name}`, { value: 'kept' });
    const uri = uriOn(kv1, name);
    const calls: Array<Promise<unknown>> = [
      p.describeKey({ uri }, call()),
      p.encrypt({ uri }, bytes('x'), {}, call()),
      p.rotateKey({ uri }, call()),
      p.deleteKey({ uri }, call()),
      p.readTransitKey({ uri }, call()),
      p.setVersionPolicy({ uri }, { minDecryptionVersion: 1 }, call()),
    ];
    const created = p.createKey({ name: uri, spec: 'AES_256', usage: 'encrypt_decrypt' }, call());
    for (const pending of [...calls, created])
      expect((await rejection(p, pending)).code).toBe('InvalidArgument');
    expect(await stored(`${kv1}/keys/${name}`)).toEqual({ value: 'kept' });
    expect(await stored(`${kv1}/keys/${name}/rotate`)).toBeUndefined();
    expect(await stored(`${kv1}/encrypt/${name}`)).toBeUndefined();
  });

  it('refuses a path inside another mount: transit/sub is not a mount of its own', async () => {
    const error = await rejection(p, p.describeKey({ uri: uriOn('transit/sub', 'k') }, call()));
    expect(error.code).toBe('InvalidArgument');
    expect(error.message).toContain('transit/sub/ is not a transit mount');
  });

  it('uses a second transit mount once the server says it is one, with a least-privilege token', async () => {
    const name = keyName('second');
    await root.write(`${transit2}/keys/${name}`, { type: 'aes256-gcm96' });
    const policy = `keyport-${transit2}`;
    await root.write(`sys/policies/acl/${policy}`, {
      policy: `path "${transit2}/encrypt/${name}" { capabilities = ["update"] }\npath "${transit2}/decrypt/${name}" { capabilities = ["update"] }`,
    });
    const created = await root.write('auth/token/create', { policies: [policy], no_default_policy: true });
    const token = (created as { auth: { client_token: string } }).auth.client_token;
    const narrow = provider({ auth: { method: 'token', token, renew: false } });
    try {
      const uri = uriOn(transit2, name);
      const sealed = await narrow.encrypt({ uri }, bytes('second mount'), { context: { a: 'b' } }, call());
      const opened = await narrow.decrypt({ uri }, sealed.ciphertext, { context: { a: 'b' } }, call());
      expect(opened.plaintext).toEqual(bytes('second mount'));
    } finally {
      await narrow.close();
    }
  });

  it('takes the mounts given in transitMounts as transit without asking', async () => {
    // Declared transit although it is KV v1: the request goes out as given (and lands there).
    const trusting = provider({ transitMounts: [kv1] });
    const name = keyName('declared');
    try {
      await rejection(
        trusting,
        trusting.decrypt({ uri: uriOn(kv1, name) }, bytes('vault:v1:AAAA'), {}, call()),
      );
      expect(await stored(`${kv1}/decrypt/${name}`)).toMatchObject({ ciphertext: 'vault:v1:AAAA' });
    } finally {
      await trusting.close();
    }
  });

  it('refuses malformed transitMounts at construction', () => {
    const endpoint = openbao().addr;
    for (const transitMounts of [
      'transit',
      [''],
      ['a/../sys'],
      ['a/keys'],
      [7],
      [undefined],
      new Array(2000).fill('m'),
    ])
      expect(() => new VaultTransitProvider({ endpoint, transitMounts } as never)).toThrow(/transitMounts/);
  });

  describe('a message naming a KV v1 mount, opened with anyKeyOf(hcvault)', () => {
    let keys: Keyport;
    beforeAll(() => {
      keys = createKeyport({ providers: [provider()] });
    });
    afterAll(() => keys.close());

    it('fails without writing the EDK into the mount', async () => {
      const created = await keys.createKey('hcvault', {
        spec: 'AES_256',
        usage: 'encrypt_decrypt',
        name: keyName('env'),
      });
      const sealed = await sealEnvelope(bytes('steered'), { recipients: [created.uri], keys });
      const named = Buffer.from(`/transit/keys/`);
      const forged = Buffer.from(sealed);
      const at = forged.indexOf(named);
      expect(at).toBeGreaterThan(0);
      forged.write(`/${kv1}/keys/`, at);
      const name = created.uri.slice(created.uri.lastIndexOf('/') + 1);
      const failed = await openEnvelope(forged, { trust: [{ anyKeyOf: 'hcvault' }], keys }).catch((e) => e);
      expect(failed).toBeInstanceOf(DataKeyUnavailableError);
      const [why] = (failed.cause as AggregateError).errors as Error[];
      expect(why?.message).toContain(`${kv1}/ is not a transit mount`);
      expect(await stored(`${kv1}/decrypt/${name}`)).toBeUndefined();
      // The genuine message still opens the same way.
      const opened = await openEnvelope(sealed, { trust: [{ anyKeyOf: 'hcvault' }], keys });
      expect(Buffer.from(opened.plaintext).toString()).toBe('steered');
    });
  });
});
