import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultTransitProvider } from '../src/index.js';
import { bytes, call, disableUpsert, keyName, provider, rejection, text } from './helpers.js';

describe('transit cryptography against OpenBao', () => {
  let p: VaultTransitProvider;
  let aes: string;

  beforeAll(async () => {
    await disableUpsert();
    p = provider();
    aes = (await p.createKey({ name: keyName('aes'), spec: 'AES_256' }, call())).uri;
  });
  afterAll(() => p.close());

  it('encrypts and decrypts with the context as associated_data, recording the version', async () => {
    const ctx = { tenant: 'a', purpose: 'test' };
    const enc = await p.encrypt({ uri: aes }, bytes('hello'), { context: ctx }, call());
    expect(text(enc.ciphertext)).toMatch(/^vault:v1:/);
    expect(enc.keyVersion).toBe('1');
    const dec = await p.decrypt(
      { uri: aes },
      enc.ciphertext,
      { context: { purpose: 'test', tenant: 'a' } },
      call(),
    );
    expect(text(dec.plaintext)).toBe('hello');
    expect(dec.keyVersion).toBe('1');
  });

  it("leaves no copy of a plaintext, raw or base64, in Node's shared Buffer pool", async () => {
    // Every buffer here has memory of its own: a Buffer.from copy would land in the pool itself.
    const own = (bytes: Uint8Array) => Buffer.from(Uint8Array.from(bytes).buffer);
    const view = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const secret = own(Uint8Array.from({ length: 48 }, (_, i) => (i * 37 + 11) & 0xff));
    const base64Of = (bytes: Uint8Array) => own(new TextEncoder().encode(view(bytes).toString('base64')));
    // Small request and response bodies would come from the slab the next small allocUnsafe uses.
    const slab = () => Buffer.from(Buffer.allocUnsafe(1).buffer);
    const enc = await p.encrypt({ uri: aes }, secret, {}, call());
    expect([slab().indexOf(secret), slab().indexOf(base64Of(secret))]).toEqual([-1, -1]);
    const dec = await p.decrypt({ uri: aes }, enc.ciphertext, {}, call());
    expect(view(dec.plaintext).equals(secret)).toBe(true);
    expect([slab().indexOf(secret), slab().indexOf(base64Of(secret))]).toEqual([-1, -1]);
    const key = await p.generateDataKey({ uri: aes }, { bytes: 32 }, call());
    expect([slab().indexOf(view(key.plaintext)), slab().indexOf(base64Of(key.plaintext))]).toEqual([-1, -1]);
  });

  it('fails decryption with InvalidCiphertext on a context mismatch or a missing context', async () => {
    const enc = await p.encrypt({ uri: aes }, bytes('bound'), { context: { a: '1' } }, call());
    const wrong = await rejection(
      p,
      p.decrypt({ uri: aes }, enc.ciphertext, { context: { a: '2' } }, call()),
    );
    expect(wrong.code).toBe('InvalidCiphertext');
    expect(wrong.message).not.toContain('2');
    const none = await rejection(p, p.decrypt({ uri: aes }, enc.ciphertext, {}, call()));
    expect(none.code).toBe('InvalidCiphertext');
  });

  it('refuses tampered ciphertexts, foreign ciphertexts and another key', async () => {
    const enc = await p.encrypt({ uri: aes }, bytes('x'), {}, call());
    const t = text(enc.ciphertext);
    const flipped = `${t.slice(0, -4)}${t.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    expect((await rejection(p, p.decrypt({ uri: aes }, bytes(flipped), {}, call()))).code).toBe(
      'InvalidCiphertext',
    );
    expect((await rejection(p, p.decrypt({ uri: aes }, bytes('not transit'), {}, call()))).code).toBe(
      'InvalidCiphertext',
    );
    const other = (await p.createKey({ name: keyName('other'), spec: 'AES_256' }, call())).uri;
    expect((await rejection(p, p.decrypt({ uri: other }, enc.ciphertext, {}, call()))).code).toBe(
      'InvalidCiphertext',
    );
  });

  it('maps a missing key to NotFound (encrypt with upsert disabled, describe)', async () => {
    const missing = aes.replace(/keys\/.*/, `keys/${keyName('missing')}`);
    expect((await rejection(p, p.encrypt({ uri: missing }, bytes('x'), {}, call()))).code).toBe('NotFound');
    expect((await rejection(p, p.describeKey({ uri: missing }, call()))).code).toBe('NotFound');
  });

  it('generates data keys whose wrapped form decrypts to the plaintext under the same context', async () => {
    const ctx = { file: 'f1' };
    const dk = await p.generateDataKey({ uri: aes }, { bytes: 32, context: ctx }, call());
    expect(dk.plaintext.length).toBe(32);
    expect(dk.keyVersion).toBe('1');
    const back = await p.decrypt({ uri: aes }, dk.wrapped, { context: ctx }, call());
    expect(Buffer.from(back.plaintext).equals(Buffer.from(dk.plaintext))).toBe(true);
    expect((await rejection(p, p.decrypt({ uri: aes }, dk.wrapped, {}, call()))).code).toBe(
      'InvalidCiphertext',
    );
    expect((await rejection(p, p.generateDataKey({ uri: aes }, { bytes: 24 }, call()))).code).toBe(
      'InvalidArgument',
    );
  });

  it('pins a version for encryption and refuses a ciphertext of another version when pinned', async () => {
    const k = (await p.createKey({ name: keyName('pin'), spec: 'AES_256' }, call())).uri;
    await p.rotateKey({ uri: k }, call());
    const old = await p.encrypt({ uri: k, version: '1' }, bytes('v1'), {}, call());
    expect(old.keyVersion).toBe('1');
    const cur = await p.encrypt({ uri: k }, bytes('v2'), {}, call());
    expect(cur.keyVersion).toBe('2');
    expect(text((await p.decrypt({ uri: k }, old.ciphertext, {}, call())).plaintext)).toBe('v1');
    expect((await rejection(p, p.decrypt({ uri: k, version: '2' }, old.ciphertext, {}, call()))).code).toBe(
      'InvalidCiphertext',
    );
  });

  it('refuses a context on RSA encryption instead of dropping it', async () => {
    const rsa = (await p.createKey({ name: keyName('rsa-enc'), spec: 'RSA_2048' }, call())).uri;
    const plain = await p.encrypt({ uri: rsa }, bytes('r'), {}, call());
    expect(text((await p.decrypt({ uri: rsa }, plain.ciphertext, {}, call())).plaintext)).toBe('r');
    const bound = await rejection(p, p.encrypt({ uri: rsa }, bytes('r'), { context: { a: 'b' } }, call()));
    expect(bound.code).toBe('InvalidArgument');
  });

  it('uses chacha20-poly1305 keys (created with createTransitKey) through the portable calls', async () => {
    const name = keyName('chacha');
    await p.createTransitKey(name, 'chacha20-poly1305');
    const uri = aes.replace(/keys\/.*/, `keys/${name}`);
    const enc = await p.encrypt({ uri }, bytes('c'), { context: { k: 'v' } }, call());
    expect(text((await p.decrypt({ uri }, enc.ciphertext, { context: { k: 'v' } }, call())).plaintext)).toBe(
      'c',
    );
    expect((await rejection(p, p.describeKey({ uri }, call()))).code).toBe('Unsupported');
  });

  it('binds the context on derived keys too (associated_data and the derivation context)', async () => {
    const name = keyName('derived');
    await p.createTransitKey(name, 'aes256-gcm96', { derived: true });
    const q = provider(); // a fresh provider learns the key is derived from the first answer
    const uri = aes.replace(/keys\/.*/, `keys/${name}`);
    const enc = await q.encrypt({ uri }, bytes('d'), { context: { t: '1' } }, call());
    expect(text((await q.decrypt({ uri }, enc.ciphertext, { context: { t: '1' } }, call())).plaintext)).toBe(
      'd',
    );
    expect(
      (await rejection(q, q.decrypt({ uri }, enc.ciphertext, { context: { t: '2' } }, call()))).code,
    ).toBe('InvalidCiphertext');
    expect((await rejection(q, q.encrypt({ uri }, bytes('d'), {}, call()))).code).toBe('InvalidArgument');
    await q.close();
  });

  it('encrypts and decrypts in bulk with batch_input, one outcome per item', async () => {
    const items = [
      { data: bytes('one'), context: { i: '1' } },
      { data: bytes('two'), context: { i: '2' } },
      { data: bytes('three') },
    ];
    const sealed = await p.encryptBatch({ uri: aes }, items);
    expect(sealed.every((r) => r.ok)).toBe(true);
    const cts = sealed.map((r) => (r.ok ? r.value.ciphertext : new Uint8Array()));
    const opened = await p.decryptBatch({ uri: aes }, [
      { data: cts[0] as Uint8Array, context: { i: '1' } },
      { data: cts[1] as Uint8Array, context: { i: 'wrong' } },
      { data: cts[2] as Uint8Array },
      { data: bytes('garbage') },
    ]);
    expect(opened.map((r) => r.ok)).toEqual([true, false, true, false]);
    expect(opened[0]?.ok && text(opened[0].value.plaintext)).toBe('one');
    expect(opened[2]?.ok && text(opened[2].value.plaintext)).toBe('three');
    expect(!opened[1]?.ok && opened[1]?.error.code).toBe('InvalidCiphertext');
    expect(!opened[3]?.ok && opened[3]?.error.code).toBe('InvalidCiphertext');
  });

  it('rewraps to the newest version, server-side without context and client-side with one', async () => {
    const k = (await p.createKey({ name: keyName('rewrap'), spec: 'AES_256' }, call())).uri;
    const bare = await p.encrypt({ uri: k }, bytes('bare'), {}, call());
    const bound = await p.encrypt({ uri: k }, bytes('bound'), { context: { c: '1' } }, call());
    await p.rotateKey({ uri: k }, call());
    const r1 = await p.rewrap({ uri: k }, bare.ciphertext);
    expect(r1).toMatchObject({ keyVersion: '2', serverSide: true });
    const r2 = await p.rewrap({ uri: k }, bound.ciphertext, { context: { c: '1' } });
    expect(r2).toMatchObject({ keyVersion: '2', serverSide: false });
    expect(
      text((await p.decrypt({ uri: k }, r2.ciphertext, { context: { c: '1' } }, call())).plaintext),
    ).toBe('bound');
    // The context stays bound: the rewrapped ciphertext does not open without it.
    expect((await rejection(p, p.decrypt({ uri: k }, r2.ciphertext, {}, call()))).code).toBe(
      'InvalidCiphertext',
    );
    await expect(p.rewrap({ uri: k }, bound.ciphertext)).rejects.toMatchObject({ code: 'InvalidCiphertext' });
  });
});
