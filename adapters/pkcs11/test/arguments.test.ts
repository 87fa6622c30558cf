/**
 * Arguments as a careless caller or an attacker writes them, through Keyport and straight to the
 * driver: a version named twice and differently, createKey extensions that are not what they
 * seem. Each is InvalidArgument before anything is written to the token.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { type ImportWrappingAlgorithm, Keyport, type SignRequest } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Pkcs11CreateKeyRequest, type Pkcs11Provider, versionId } from '../src/index.js';
import { openProvider, signal, uniqueName } from './support.js';

const idOf = (version: number): string =>
  [...versionId(version)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

describe('arguments', () => {
  let provider: Pkcs11Provider;
  let keyport: Keyport;
  let aes: string;
  beforeAll(async () => {
    provider = await openProvider();
    keyport = new Keyport({ providers: [provider] });
    aes = (await keyport.createKey('pkcs11', { name: uniqueName('args'), spec: 'AES_256' })).uri;
    await keyport.rotateKey(aes); // versions 1 and 2
  });
  afterAll(() => keyport.close());

  it('a URI whose x-version= and id= name different versions is InvalidArgument, not one of them picked', async () => {
    const ambiguous = `${aes};id=${idOf(1)};x-version=2`;
    await expect(keyport.encrypt(ambiguous, Buffer.from('x'))).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining('named twice'),
    });
    await expect(
      provider.encrypt(
        { uri: `${aes};id=${idOf(2)}`, version: '1' },
        Buffer.from('x'),
        {},
        { signal: signal() },
      ),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
    // Agreeing names are one version (core prints x-version beside an id= it was given).
    for (const uri of [`${aes};id=${idOf(1)};x-version=1`, `${aes};id=${idOf(1)}`, `${aes};x-version=1`]) {
      const sealed = await keyport.encrypt(uri, Buffer.from('one'));
      expect(sealed.keyVersion, uri).toBe('1');
    }
  });

  it('createKey: exportable must be a boolean; an unknown field or an exportable external key is refused; nothing is written', async () => {
    const name = uniqueName('exportable');
    const cases: Array<[string, Record<string, unknown>]> = [
      ['req.exportable', { exportable: 'yes' }],
      ['req.exportable', { exportable: 1 }],
      ['req.exportable', { exportable: null }],
      ['exportabel', { exportabel: true }],
      ['__proto__', JSON.parse('{"__proto__": {"exportable": true}}')],
      ['req.exportable', { exportable: true, external: true }],
    ];
    for (const [named, extra] of cases) {
      const req = { name, spec: 'AES_256', ...extra } as Pkcs11CreateKeyRequest;
      for (const made of [
        () => keyport.createKey('pkcs11', req),
        () => provider.createKey(req, { signal: signal() }),
      ]) {
        await expect(made(), named).rejects.toMatchObject({
          code: 'InvalidArgument',
          provider: 'pkcs11',
          message: expect.stringContaining(named),
        });
      }
    }
    // Nothing was created: the name is still free.
    const key = await provider.createKey({ name, spec: 'AES_256', exportable: false }, { signal: signal() });
    expect(key.primaryVersion).toBe('1');
  });

  it('sign/verify on the driver: a messageType other than message or digest is InvalidArgument, not signed as a message', async () => {
    const ec = await provider.createKey(
      { name: uniqueName('ec-type'), spec: 'EC_P256' },
      { signal: signal() },
    );
    const digest = createHash('sha256').update('m').digest();
    for (const messageType of ['Digest', 'DIGEST', '', 'raw', 1]) {
      const req = { messageType } as unknown as SignRequest;
      await expect(provider.sign({ uri: ec.uri }, digest, req, { signal: signal() })).rejects.toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringContaining('messageType'),
      });
      await expect(
        provider.verify(
          { uri: ec.uri },
          digest,
          Buffer.alloc(64),
          { ...req, algorithm: 'ECDSA_SHA_256' },
          { signal: signal() },
        ),
      ).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
    const signed = await provider.sign(
      { uri: ec.uri },
      digest,
      { messageType: 'digest' },
      { signal: signal() },
    );
    expect(signed.algorithm).toBe('ECDSA_SHA_256');
  });

  it("sign/verify on the driver: the request is read by core's rule — an unknown field (a misspelt algorithm), a getter or a class instance is InvalidArgument, nothing signed", async () => {
    const ec = await provider.createKey(
      { name: uniqueName('ec-req'), spec: 'EC_P256' },
      { signal: signal() },
    );
    const digest = createHash('sha256').update('m').digest();
    class Req {
      messageType = 'digest';
    }
    const cases: Array<[string, unknown]> = [
      ['req: unknown option "algorithim"', { messageType: 'digest', algorithim: 'ECDSA_SHA_384' }],
      [
        'req.messageType: accessor properties are not allowed',
        {
          get messageType() {
            return 'digest';
          },
        },
      ],
      ['req: expected an object, got Req', new Req()],
      ['req: expected { algorithm?, messageType? }, got undefined', undefined],
    ];
    for (const [message, req] of cases) {
      await expect(
        provider.sign({ uri: ec.uri }, digest, req as SignRequest, { signal: signal() }),
        message,
      ).rejects.toMatchObject({
        code: 'InvalidArgument',
        provider: 'pkcs11',
        message: expect.stringContaining(message),
      });
      await expect(
        provider.verify(
          { uri: ec.uri },
          digest,
          Buffer.alloc(64),
          req as SignRequest & { algorithm: 'ECDSA_SHA_256' },
          {
            signal: signal(),
          },
        ),
        message,
      ).rejects.toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining(message) });
    }
    await expect(
      provider.sign({ uri: ec.uri }, digest, { algorithm: 'ECDSA_SHA_384' }, { signal: signal() }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
  });

  it('wrapKeyForExport: an algorithm outside the list is InvalidArgument, not plain OAEP or another hash', async () => {
    const key = await provider.createKey(
      { name: uniqueName('export-typo'), spec: 'AES_256', exportable: true },
      { signal: signal() },
    );
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    for (const algorithm of [
      'RSA_AES_KEY_WRAP_SHA1',
      'rsaes_oaep_sha_1',
      'RSAES_PKCS1_V1_5_SHA_1',
      '__proto__',
    ]) {
      await expect(
        provider.wrapKeyForExport(
          { uri: key.uri },
          { wrappingPublicKeySpki: spki, algorithm: algorithm as ImportWrappingAlgorithm },
        ),
        algorithm,
      ).rejects.toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringContaining('options.algorithm'),
      });
    }
    await expect(
      provider.wrapKeyForExport(
        { uri: key.uri },
        { wrappingPublicKeySpki: 'not bytes' as unknown as Uint8Array, algorithm: 'RSAES_OAEP_SHA_1' },
      ),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
    const wrapped = await provider.wrapKeyForExport(
      { uri: key.uri },
      { wrappingPublicKeySpki: spki, algorithm: 'RSAES_OAEP_SHA_1' },
    );
    expect(wrapped.length).toBe(256);
  });

  it('createKey called on the driver with a name that is not a string is InvalidArgument, not a TypeError', async () => {
    for (const name of [42, undefined, { toString: () => 'x' }, ''])
      await expect(
        provider.createKey({ name, spec: 'AES_256' } as unknown as Pkcs11CreateKeyRequest, {
          signal: signal(),
        }),
      ).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(
      provider.createKey({ name: uniqueName('spec'), spec: 'AES_999' } as unknown as Pkcs11CreateKeyRequest, {
        signal: signal(),
      }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
  });

  it('createKey with a rotation schedule (a period or a date alone) is Unsupported, not a key that never rotates', async () => {
    for (const rotation of [{ periodDays: 30 }, { nextRotationAt: new Date(Date.now() + 86_400_000) }]) {
      const name = uniqueName('rotation');
      await expect(keyport.createKey('pkcs11', { name, spec: 'AES_256', rotation })).rejects.toMatchObject({
        code: 'Unsupported',
      });
      await expect(keyport.describeKey(provider.uriFor(name))).rejects.toMatchObject({ code: 'NotFound' });
    }
  });
});
