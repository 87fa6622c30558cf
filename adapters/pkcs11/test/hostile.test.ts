/**
 * Hostile and careless values against the real token: key names that are URI syntax or object
 * prototype names, `__proto__` as a label or context key, versions that are not numbers, inputs
 * too big for the mechanism, strings where bytes go, tampered ciphertexts — each with the code the
 * README promises, and the session pool still healthy afterwards.
 */
import { randomBytes } from 'node:crypto';
import { Keyport } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pkcs11Provider } from '../src/index.js';
import { countCalls, openProvider, signal, uniqueName, withWrappedP11 } from './support.js';

describe('hostile values', () => {
  let provider: Pkcs11Provider;
  let keyport: Keyport;
  let aes: string;
  beforeAll(async () => {
    provider = await openProvider({ maxSessions: 1 });
    keyport = new Keyport({ providers: [provider] });
    aes = (await keyport.createKey('pkcs11', { name: uniqueName('hostile'), spec: 'AES_256' })).uri;
  });
  afterAll(() => keyport.close());

  it('key names made of URI syntax and non-ASCII round-trip through their URI, describe, list and crypto', async () => {
    const name = `${uniqueName('odd')};object=other?pin-value=1&x=%41/é🔑 `;
    const key = await keyport.createKey('pkcs11', { name, spec: 'AES_256' });
    expect(provider.target({ uri: key.uri }).name).toBe(name);
    const sealed = await keyport.encrypt(key.uri, Buffer.from('odd'));
    expect(Buffer.from((await keyport.decrypt(key.uri, sealed.ciphertext)).plaintext).toString()).toBe('odd');
    const listed: string[] = [];
    for await (const k of keyport.listKeys('pkcs11')) listed.push(k.uri);
    expect(listed).toContain(key.uri);
    // A name with control characters is refused, not written to the token.
    await expect(
      keyport.createKey('pkcs11', { name: `${uniqueName('ctl')}\u0000x`, spec: 'AES_256' }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
  });

  it('__proto__ and constructor work as key names, label keys and context keys, and pollute nothing', async () => {
    for (const name of ['__proto__', 'constructor']) {
      const labels = JSON.parse(`{"__proto__":"p","constructor":"c","toString":"t"}`);
      const key = await keyport.createKey('pkcs11', { name, spec: 'AES_256', labels });
      expect(key.uri).toBe(`pkcs11:token=${provider.tokenLabel};object=${name}`);
      const info = await keyport.rotateKey(key.uri);
      expect(info.primaryVersion).toBe('2');
      const described = await keyport.describeKey(key.uri);
      expect(Object.hasOwn(described.labels, '__proto__')).toBe(true);
      expect(Object.entries(described.labels).sort()).toEqual([
        ['__proto__', 'p'],
        ['constructor', 'c'],
        ['toString', 't'],
      ]);
      const context = JSON.parse(`{"__proto__":"tenant-a"}`);
      const sealed = await keyport.encrypt(key.uri, Buffer.from('x'), { context });
      await expect(
        keyport.decrypt(key.uri, sealed.ciphertext, { context: JSON.parse(`{"__proto__":"tenant-b"}`) }),
      ).rejects.toMatchObject({ code: 'InvalidCiphertext' });
      await expect(keyport.decrypt(key.uri, sealed.ciphertext)).rejects.toMatchObject({
        code: 'InvalidCiphertext',
      });
      await expect(keyport.decrypt(key.uri, sealed.ciphertext, { context })).resolves.toMatchObject({
        keyVersion: '2',
      });
    }
    expect(({} as Record<string, unknown>).p).toBeUndefined();
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  it('versions that are not positive integers are InvalidArgument; one beyond any key is NotFound', async () => {
    for (const v of ['0', '-1', 'abc', '1e3', '01', ' 1', '1.0', 'NaN', '99999999999']) {
      await expect(keyport.encrypt(`${aes};x-version=${v}`, Buffer.from('x')), v).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    }
    await expect(
      provider.encrypt(
        { uri: aes, version: Number.NaN as unknown as string },
        Buffer.from('x'),
        {},
        { signal: signal() },
      ),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(keyport.encrypt(`${aes};x-version=4294967295`, Buffer.from('x'))).rejects.toMatchObject({
      code: 'NotFound',
    });
  });

  it('a plaintext too long for RSA-OAEP is InvalidArgument (SoftHSM2 would say CKR_GENERAL_ERROR); megabytes through AES-GCM and HMAC work', async () => {
    const rsa = await keyport.createKey('pkcs11', {
      name: uniqueName('rsa-long'),
      spec: 'RSA_2048',
      usage: 'encrypt_decrypt',
    });
    await expect(keyport.encrypt(rsa.uri, randomBytes(300))).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining('at most 214 bytes'),
    });
    const most = randomBytes(214); // 256 − 2·20 − 2 (OAEP SHA-1 on SoftHSM2)
    const sealedRsa = await keyport.encrypt(rsa.uri, most);
    expect(Buffer.from((await keyport.decrypt(rsa.uri, sealedRsa.ciphertext)).plaintext).equals(most)).toBe(
      true,
    );
    const big = randomBytes(4 * 1024 * 1024);
    const sealed = await keyport.encrypt(aes, big, { context: { n: '1' } });
    const opened = await keyport.decrypt(aes, sealed.ciphertext, { context: { n: '1' } });
    expect(Buffer.from(opened.plaintext).equals(big)).toBe(true);
    const hmac = await keyport.createKey('pkcs11', { name: uniqueName('hmac-big'), spec: 'HMAC_256' });
    const { mac } = await keyport.mac(hmac.uri, big);
    await expect(keyport.verifyMac(hmac.uri, big, mac)).resolves.toBe(true);
  });

  it('a string where bytes go, called on the driver directly, fails without leaving its session busy', async () => {
    // maxSessions 1: the next call gets the same session (or a fresh one), never one mid-operation.
    const error = await provider
      .encrypt({ uri: aes }, 'not bytes' as unknown as Uint8Array, {}, { signal: signal() })
      .catch((e) => e);
    expect(error).toBeInstanceOf(Error);
    const sealed = await provider.encrypt({ uri: aes }, Buffer.from('next'), {}, { signal: signal() });
    expect(sealed.keyVersion).toBe('1');
  });

  it('a tampered ciphertext is InvalidCiphertext; the decrypt ended its operation, so its session is kept (probed idle), not closed', async () => {
    const sealed = await keyport.encrypt(aes, Buffer.from('tamper'));
    const tampered = Buffer.from(sealed.ciphertext);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    const counts = await countCalls(provider, ['C_CloseSession', 'C_OpenSession'], async () => {
      await expect(keyport.decrypt(aes, tampered)).rejects.toMatchObject({ code: 'InvalidCiphertext' });
    });
    expect(counts).toEqual({ C_CloseSession: 0, C_OpenSession: 0 });
    const opened = await keyport.decrypt(aes, sealed.ciphertext);
    expect(Buffer.from(opened.plaintext).toString()).toBe('tamper');
  });

  it('50 bad ciphertexts (AES-GCM and RSA-OAEP, one after another and all at once) reopen no session; the next good call works', async () => {
    const rsa = await keyport.createKey('pkcs11', {
      name: uniqueName('rsa-churn'),
      spec: 'RSA_2048',
      usage: 'encrypt_decrypt',
    });
    const goodAes = await keyport.encrypt(aes, Buffer.from('good'), { context: { t: '1' } });
    const goodRsa = await keyport.encrypt(rsa.uri, Buffer.from('good'));
    const flip = (ct: Uint8Array, i: number): Buffer => {
      const bad = Buffer.from(ct);
      const at = bad.length - 1 - (i % 16);
      bad[at] = (bad[at] ?? 0) ^ (1 + (i % 255));
      return bad;
    };
    const bad = Array.from({ length: 50 }, (_, i) =>
      i % 5 === 4
        ? ([rsa.uri, flip(goodRsa.ciphertext, i)] as const)
        : ([aes, flip(goodAes.ciphertext, i)] as const),
    );
    const counts = await countCalls(provider, ['C_CloseSession', 'C_OpenSession', 'C_Login'], async () => {
      for (const [uri, ct] of bad)
        await expect(keyport.decrypt(uri, ct, { context: { t: '1' } })).rejects.toMatchObject({
          code: 'InvalidCiphertext',
        });
      const all = await Promise.allSettled(
        bad.map(([uri, ct]) => keyport.decrypt(uri, ct, { context: { t: '1' } })),
      );
      for (const r of all)
        expect(r).toMatchObject({ status: 'rejected', reason: { code: 'InvalidCiphertext' } });
      const opened = await keyport.decrypt(aes, goodAes.ciphertext, { context: { t: '1' } });
      expect(Buffer.from(opened.plaintext).toString()).toBe('good');
      expect(Buffer.from((await keyport.decrypt(rsa.uri, goodRsa.ciphertext)).plaintext).toString()).toBe(
        'good',
      );
    });
    expect(counts).toEqual({ C_CloseSession: 0, C_OpenSession: 0, C_Login: 0 });
    expect(provider.pool.size).toBe(1);
  });

  it('a session still holding an operation after a refused decrypt is closed, not kept', async () => {
    // A module that ignored the rule (C_Decrypt terminates its operation) would leave the session
    // busy: the idle probe sees it and the session is replaced.
    const sealed = await keyport.encrypt(aes, Buffer.from('busy'));
    const tampered = Buffer.from(sealed.ciphertext);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    const closed: unknown[] = [];
    await withWrappedP11(
      provider,
      ['C_Decrypt', 'C_CloseSession'],
      (name, original) =>
        function (this: unknown, ...args: unknown[]) {
          if (name === 'C_CloseSession') closed.push(args[0]);
          // The probe: answer as a module whose decrypt is still active would (no error).
          if (name === 'C_Decrypt') return Buffer.alloc(0);
          return original.apply(this, args);
        },
      async () => {
        await expect(keyport.decrypt(aes, tampered)).rejects.toMatchObject({ code: 'InvalidCiphertext' });
      },
    );
    expect(closed).toHaveLength(1);
    const opened = await keyport.decrypt(aes, sealed.ciphertext);
    expect(Buffer.from(opened.plaintext).toString()).toBe('busy');
  });
});
