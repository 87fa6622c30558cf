/** The local provider behind core's `Keyport` client: routing by URI, errors passed through. */
import { isKeyportError, Keyport } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { bytes, newKeystore, text } from './helpers.js';

describe('through the Keyport client', () => {
  it('creates, encrypts with a context, rotates and still decrypts, by URI only', async () => {
    const { kp } = await newKeystore();
    const keyport = new Keyport({ providers: [kp] });
    const key = await keyport.createKey('local', { name: 'app', spec: 'AES_256' });
    const { ciphertext } = await keyport.encrypt(key.uri, bytes('hello'), { context: { user: '42' } });
    await keyport.rotateKey(key.uri);
    const opened = await keyport.decrypt(key.uri, ciphertext, { context: { user: '42' } });
    expect([text(opened.plaintext), opened.keyVersion]).toEqual(['hello', '1']);
    const refused = await keyport
      .decrypt(key.uri, ciphertext, { context: { user: '43' } })
      .catch((e: unknown) => e);
    expect(isKeyportError(refused, 'InvalidCiphertext')).toBe(true);
    const ec = await keyport.createKey('local', { name: 'sig', spec: 'EC_P256' });
    expect((await keyport.getPublicKey(ec.uri)).length).toBeGreaterThan(0);
  });
});
