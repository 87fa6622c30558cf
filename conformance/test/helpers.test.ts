import { constants, createDecipheriv, generateKeyPairSync, privateDecrypt, randomBytes } from 'node:crypto';
import { type KeyManagement, KeyportError, type KmsProvider } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { expectError, flipBit } from '../src/expect-error.js';
import { instrumentProvider, uniqueKeyNames, wrapForImport } from '../src/index.js';

describe('wrapForImport', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const material = randomBytes(32);

  it('RSAES_OAEP_SHA_256 opens with the private key and OAEP-SHA-256 only', () => {
    const wrapped = wrapForImport('RSAES_OAEP_SHA_256', spki, material);
    const opened = privateDecrypt(
      { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      wrapped,
    );
    expect(opened.equals(material)).toBe(true);
    expect(() =>
      privateDecrypt(
        { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
        wrapped,
      ),
    ).toThrow();
  });

  it('RSA_AES_KEY_WRAP_SHA_256 is an OAEP-wrapped AES key followed by AES-KWP of the material', () => {
    const wrapped = wrapForImport('RSA_AES_KEY_WRAP_SHA_256', spki, material);
    const aesKey = privateDecrypt(
      { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      wrapped.subarray(0, 256),
    );
    const kwp = createDecipheriv('id-aes256-wrap-pad', aesKey, Buffer.from('a65959a6', 'hex'));
    const opened = Buffer.concat([kwp.update(wrapped.subarray(256)), kwp.final()]);
    expect(opened.equals(material)).toBe(true);
  });
});

describe('instrumentProvider', () => {
  const fake = {
    scheme: 'fake',
    name: 'fake',
    capabilities: { grants: 'native' },
    describeKey: async (ref: { uri: string }) => ({ uri: ref.uri }),
  } as unknown as KmsProvider & KeyManagement;
  const describe_ = (p: KmsProvider) => (p as KmsProvider & KeyManagement).describeKey.bind(p);

  it('records provider calls and overrides capabilities without touching the provider', async () => {
    const wrapped = instrumentProvider(fake, { ...fake.capabilities, grants: 'none' });
    await describe_(wrapped.provider)({ uri: 'fake://k' }, { signal: new AbortController().signal });
    expect(wrapped.calls).toEqual(['describeKey']);
    expect(wrapped.provider.capabilities.grants).toBe('none');
    expect(fake.capabilities.grants).toBe('native');
  });

  it('holds the next call until its signal aborts, then rejects with the reason', async () => {
    const wrapped = instrumentProvider(fake);
    const held = wrapped.holdNext('describeKey');
    const controller = new AbortController();
    const call = describe_(wrapped.provider)({ uri: 'fake://k' }, { signal: controller.signal });
    controller.abort(new Error('stop'));
    await expect(call).rejects.toThrow('stop');
    expect((await held).aborted).toBe(true);
    // Only the next call is held.
    await expect(
      describe_(wrapped.provider)({ uri: 'fake://k' }, { signal: controller.signal }),
    ).resolves.toEqual({
      uri: 'fake://k',
    });
  });
});

describe('expectError', () => {
  it('returns the KeyportError with a wanted code and refuses anything else', async () => {
    const error = await expectError(Promise.reject(new KeyportError('NotFound', 'gone')), 'NotFound');
    expect(error.code).toBe('NotFound');
    await expect(expectError(Promise.reject(new KeyportError('Internal', 'x')), 'NotFound')).rejects.toThrow(
      'expected NotFound but got Internal',
    );
    await expect(expectError(Promise.resolve(1), ['NotFound', 'AccessDenied'])).rejects.toThrow(
      'expected NotFound or AccessDenied but the call succeeded',
    );
    await expect(expectError(Promise.reject(new TypeError('boom')), 'NotFound')).rejects.toThrow(
      'expected a KeyportError (NotFound) but got TypeError: boom',
    );
  });

  it('flipBit changes exactly one bit and leaves the input alone', () => {
    const input = Uint8Array.from([0, 0, 0]);
    expect([...flipBit(input, -1)]).toEqual([0, 0, 1]);
    expect([...input]).toEqual([0, 0, 0]);
  });
});

describe('uniqueKeyNames', () => {
  it('gives distinct, provider-safe names', () => {
    const a = uniqueKeyNames('kp');
    const b = uniqueKeyNames('kp');
    const names = [a('Data Key!'), a('Data Key!'), b('Data Key!')];
    expect(new Set(names).size).toBe(3);
    for (const n of names) expect(n).toMatch(/^kp-[a-z0-9]+-\d+-data-key$/);
  });
});
