/** `localKeystore(options)`: the synchronous factory that opens the keystore at the first call. */
import { existsSync } from 'node:fs';
import { Keyport } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { localKeystore, openLocalKeystore } from '../src/index.js';
import { bytes, expectCode, FAST_KDF, o, PASSPHRASE, tempKeystorePath } from './helpers.js';

describe('localKeystore (opened at the first call)', () => {
  it('checks options at once but touches no file until the first call', async () => {
    expect(() => localKeystore({ path: '', passphrase: PASSPHRASE })).toThrow(/options\.path/);
    const path = await tempKeystorePath();
    const kp = localKeystore({ path, passphrase: PASSPHRASE, create: true, kdf: FAST_KDF });
    expect(existsSync(path)).toBe(false);
    expect(kp.keyUri('orders')).toBe(`local://${path}#orders`);
    expect(() => kp.principal).toThrow(/after the first call/);
    const key = await kp.createKey({ name: 'orders', spec: 'AES_256' }, o);
    expect(existsSync(path)).toBe(true);
    expect(kp.principal).toBe('owner');
    const sealed = await kp.encrypt({ uri: key.uri }, bytes('hello'), { context: { a: 'b' } }, o);
    const reopened = await openLocalKeystore({ path, passphrase: PASSPHRASE });
    const opened = await reopened.decrypt({ uri: key.uri }, sealed.ciphertext, { context: { a: 'b' } }, o);
    expect(Buffer.from(opened.plaintext).toString()).toBe('hello');
    await reopened.close();
    await kp.close();
  });

  it('concurrent first calls open the file once and all succeed, through Keyport too', async () => {
    const path = await tempKeystorePath();
    const made = await openLocalKeystore({ path, passphrase: PASSPHRASE, create: true, kdf: FAST_KDF });
    const key = await made.createKey({ name: 'k', spec: 'AES_256' }, o);
    await made.close();
    const keyport = new Keyport({ providers: [localKeystore({ path, passphrase: PASSPHRASE })] });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        keyport.encrypt(key.uri, bytes(`m${i}`), { context: { i: String(i) } }),
      ),
    );
    expect(results.map((r) => r.keyVersion)).toEqual(Array(8).fill('1'));
    await keyport.close();
  });

  it('a wrong passphrase fails the first call (AccessDenied) and every later one, writing nothing', async () => {
    const path = await tempKeystorePath();
    const made = await openLocalKeystore({ path, passphrase: PASSPHRASE, create: true, kdf: FAST_KDF });
    const key = await made.createKey({ name: 'k', spec: 'AES_256' }, o);
    await made.close();
    const kp = localKeystore({ path, passphrase: 'not the passphrase' });
    await expectCode(kp.describeKey({ uri: key.uri }, o), 'AccessDenied');
    await expectCode(kp.encrypt({ uri: key.uri }, bytes('x'), {}, o), 'AccessDenied');
    await kp.close();
  });

  it("one first call's abort does not fail the concurrent first calls that share its open", async () => {
    const path = await tempKeystorePath();
    const made = await openLocalKeystore({ path, passphrase: PASSPHRASE, create: true, kdf: FAST_KDF });
    const key = await made.createKey({ name: 'k', spec: 'AES_256' }, o);
    await made.close();
    const kp = localKeystore({ path, passphrase: PASSPHRASE });
    const controller = new AbortController();
    const first = kp.describeKey({ uri: key.uri }, { signal: controller.signal });
    // Joins the open the first call started, under the first call's signal.
    const second = kp.describeKey({ uri: key.uri }, o);
    controller.abort();
    await expectCode(first, 'Aborted');
    expect((await second).uri).toBe(key.uri);
    await kp.close();
  });

  it('closed before its first call, it refuses calls (Unavailable)', async () => {
    const kp = localKeystore({ path: await tempKeystorePath(), passphrase: PASSPHRASE, create: true });
    await kp.close();
    await expectCode(kp.createKey({ name: 'k', spec: 'AES_256' }, o), 'Unavailable');
  });
});
