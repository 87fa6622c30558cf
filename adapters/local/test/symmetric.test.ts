import { FRAME_MECHANISMS, readFrame } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { bytes, expectCode, newKeystore, o, text } from './helpers.js';

async function aesKey() {
  const { kp, path } = await newKeystore();
  const key = await kp.createKey({ name: 'data', spec: 'AES_256' }, o);
  return { kp, path, ref: { uri: key.uri } };
}

describe('AES-256-GCM encrypt/decrypt', () => {
  it('round-trips with a context and reports the version', async () => {
    const { kp, ref } = await aesKey();
    const context = { tenant: 'acme', purpose: 'invoices' };
    const { ciphertext, keyVersion } = await kp.encrypt(ref, bytes('secret payload'), { context }, o);
    expect(keyVersion).toBe('1');
    expect(readFrame(ciphertext)).toMatchObject({ mechanism: FRAME_MECHANISMS.AES_256_GCM, keyVersion: '1' });
    expect(ciphertext.length).toBe(6 + 12 + 'secret payload'.length + 16);
    const out = await kp.decrypt(ref, ciphertext, { context: { purpose: 'invoices', tenant: 'acme' } }, o);
    expect(text(out.plaintext)).toBe('secret payload');
    expect(out.keyVersion).toBe('1');
  });

  it('uses a fresh IV each time', async () => {
    const { kp, ref } = await aesKey();
    const a = await kp.encrypt(ref, bytes('same'), {}, o);
    const b = await kp.encrypt(ref, bytes('same'), {}, o);
    expect(Buffer.from(a.ciphertext).equals(Buffer.from(b.ciphertext))).toBe(false);
  });

  it('round-trips an empty plaintext and no context', async () => {
    const { kp, ref } = await aesKey();
    const { ciphertext } = await kp.encrypt(ref, new Uint8Array(0), {}, o);
    expect((await kp.decrypt(ref, ciphertext, {}, o)).plaintext.length).toBe(0);
    // an empty context is the same as none
    expect((await kp.decrypt(ref, ciphertext, { context: {} }, o)).plaintext.length).toBe(0);
  });

  it('refuses a different, missing, extra or reordered-value context with InvalidCiphertext', async () => {
    const { kp, ref } = await aesKey();
    const { ciphertext } = await kp.encrypt(ref, bytes('x'), { context: { a: '1', b: '2' } }, o);
    for (const context of [
      { a: '1', b: '3' },
      { a: '1' },
      { a: '1', b: '2', c: '3' },
      { a: '2', b: '1' },
      undefined,
    ]) {
      await expectCode(
        kp.decrypt(ref, ciphertext, context === undefined ? {} : { context }, o),
        'InvalidCiphertext',
      );
    }
  });

  it('never echoes context values or plaintext in errors', async () => {
    const { kp, ref } = await aesKey();
    const { ciphertext } = await kp.encrypt(
      ref,
      bytes('TOP-SECRET-PLAINTEXT'),
      { context: { k: 'VALUE-1' } },
      o,
    );
    const error = await kp
      .decrypt(ref, ciphertext, { context: { k: 'VALUE-2' } }, o)
      .catch((e: unknown) => e);
    const shown = JSON.stringify(error) + String(error) + String((error as Error).stack);
    expect(shown).not.toContain('VALUE-');
    expect(shown).not.toContain('TOP-SECRET');
  });

  it('detects every flipped byte, truncation and a foreign format', async () => {
    const { kp, ref } = await aesKey();
    const { ciphertext } = await kp.encrypt(ref, bytes('tamper me'), {}, o);
    for (let i = 5; i < ciphertext.length; i++) {
      const bad = Uint8Array.from(ciphertext);
      bad[i] = (bad[i] as number) ^ 0x80;
      await expectCode(kp.decrypt(ref, bad, {}, o), 'InvalidCiphertext');
    }
    await expectCode(
      kp.decrypt(ref, ciphertext.subarray(0, ciphertext.length - 1), {}, o),
      'InvalidCiphertext',
    );
    await expectCode(kp.decrypt(ref, ciphertext.subarray(0, 20), {}, o), 'InvalidCiphertext');
    await expectCode(kp.decrypt(ref, new Uint8Array(0), {}, o), 'InvalidCiphertext');
    const otherFormat = Uint8Array.from(ciphertext);
    otherFormat[3] = FRAME_MECHANISMS.RSA_OAEP_SHA_256;
    await expectCode(kp.decrypt(ref, otherFormat, {}, o), 'InvalidCiphertext');
    const unknownVersion = Uint8Array.from(ciphertext);
    unknownVersion[5] = '9'.charCodeAt(0);
    await expectCode(kp.decrypt(ref, unknownVersion, {}, o), 'InvalidCiphertext');
  });

  it('a ciphertext of another key does not open', async () => {
    const { kp, ref } = await aesKey();
    const other = await kp.createKey({ name: 'other', spec: 'AES_256' }, o);
    const { ciphertext } = await kp.encrypt({ uri: other.uri }, bytes('x'), {}, o);
    await expectCode(kp.decrypt(ref, ciphertext, {}, o), 'InvalidCiphertext');
  });

  it('rejects a malformed context with InvalidArgument', async () => {
    const { kp, ref } = await aesKey();
    await expectCode(kp.encrypt(ref, bytes('x'), { context: { '': 'v' } }, o), 'InvalidArgument');
    await expectCode(
      kp.encrypt(ref, bytes('x'), { context: { k: 1 } as unknown as Record<string, string> }, o),
      'InvalidArgument',
    );
  });

  it('a pinned version must match the ciphertext', async () => {
    const { kp, ref } = await aesKey();
    const { ciphertext } = await kp.encrypt(ref, bytes('x'), {}, o);
    await kp.rotateKey(ref, o);
    expect(text((await kp.decrypt({ ...ref, version: '1' }, ciphertext, {}, o)).plaintext)).toBe('x');
    await expectCode(kp.decrypt({ ...ref, version: '2' }, ciphertext, {}, o), 'InvalidCiphertext');
    await expectCode(
      kp.decrypt({ uri: `${ref.uri.replace('#', '?version=2#')}` }, ciphertext, {}, o),
      'InvalidCiphertext',
    );
    await expectCode(
      kp.decrypt({ uri: ref.uri.replace('#', '?version=1#'), version: '2' }, ciphertext, {}, o),
      'InvalidArgument',
    );
  });

  it('unknown keys and other keystores are NotFound; other schemes InvalidArgument', async () => {
    const { kp, ref } = await aesKey();
    await expectCode(kp.encrypt({ uri: ref.uri.replace('#data', '#nope') }, bytes('x'), {}, o), 'NotFound');
    await expectCode(
      kp.encrypt({ uri: 'local:///elsewhere/k.keystore#data' }, bytes('x'), {}, o),
      'NotFound',
    );
    await expectCode(
      kp.encrypt({ uri: 'hcvault://127.0.0.1:8200/transit/keys/data' }, bytes('x'), {}, o),
      'InvalidArgument',
    );
  });
});

describe('data keys', () => {
  it('generates a data key whose wrap decrypts to the same bytes under the same context', async () => {
    const { kp, ref } = await aesKey();
    const context = { file: 'a.bin' };
    const dk = await kp.generateDataKey(ref, { context }, o);
    expect(dk.plaintext.length).toBe(32);
    expect(dk.keyVersion).toBe('1');
    const opened = await kp.decrypt(ref, dk.wrapped, { context }, o);
    expect(Buffer.from(opened.plaintext).equals(Buffer.from(dk.plaintext))).toBe(true);
    await expectCode(kp.decrypt(ref, dk.wrapped, { context: { file: 'b.bin' } }, o), 'InvalidCiphertext');
  });

  it('honours the size and validates it', async () => {
    const { kp, ref } = await aesKey();
    expect((await kp.generateDataKey(ref, { bytes: 16 }, o)).plaintext.length).toBe(16);
    expect((await kp.generateDataKey(ref, { bytes: 1024 }, o)).plaintext.length).toBe(1024);
    for (const n of [0, 1025, 1.5, -1])
      await expectCode(kp.generateDataKey(ref, { bytes: n }, o), 'InvalidArgument');
  });

  it('is refused for signing and MAC keys', async () => {
    const { kp } = await aesKey();
    const ec = await kp.createKey({ name: 'ec', spec: 'EC_P256' }, o);
    const hmac = await kp.createKey({ name: 'hmac', spec: 'HMAC_256' }, o);
    await expectCode(kp.generateDataKey({ uri: ec.uri }, {}, o), 'InvalidArgument');
    await expectCode(kp.encrypt({ uri: hmac.uri }, bytes('x'), {}, o), 'InvalidArgument');
  });
});
