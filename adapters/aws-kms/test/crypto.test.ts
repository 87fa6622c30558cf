/**
 * Cryptography against both emulators. Where an emulator's answer is not real cryptography
 * (moto's RSA encryption is a placeholder), node:crypto checks run on local-kms only.
 */
import { constants, createPublicKey, verify as nodeVerify, publicEncrypt } from 'node:crypto';
import { GetPublicKeyCommand } from '@aws-sdk/client-kms';
import type { KeyInfo, KeySpec, KeyUsage, SigningAlgorithm } from '@keyport/core';
import { afterAll, describe, expect, it } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import {
  call,
  providerFor,
  sdkClientFor,
  TARGET_NAMES,
  type TargetName,
  target,
  text,
  uniqueName,
  utf8,
} from './support/targets.js';

function setup(name: TargetName) {
  let provider: AwsKmsProvider | undefined;
  const p = (): AwsKmsProvider => {
    provider ??= providerFor(target(name));
    return provider;
  };
  const keys = new Map<string, Promise<KeyInfo>>();
  const key = (spec: KeySpec, usage?: KeyUsage, tag = ''): Promise<KeyInfo> => {
    const id = `${spec}/${usage}/${tag}`;
    let k = keys.get(id);
    if (k === undefined) {
      k = p().createKey(
        { name: uniqueName(`${spec}-${tag}`.toLowerCase()), spec, ...(usage ? { usage } : {}) },
        call(),
      );
      keys.set(id, k);
    }
    return k;
  };
  afterAll(async () => provider?.close());
  return { p, key };
}

async function publicKeyOf(name: TargetName, uri: string) {
  const out = await sdkClientFor(target(name)).send(
    new GetPublicKeyCommand({ KeyId: uri.slice('aws-kms://'.length) }),
  );
  return createPublicKey({ key: Buffer.from(out.PublicKey as Uint8Array), format: 'der', type: 'spki' });
}

describe.each(TARGET_NAMES)('symmetric encryption on %s', (name) => {
  const { p, key } = setup(name);
  const ctx = { tenant: 't-1', purpose: 'test' };

  it('round-trips with a native encryption context and reports the key ARN', async () => {
    const k = await key('AES_256');
    const sealed = await p().encrypt({ uri: k.uri }, utf8('hello'), { context: ctx }, call());
    expect(sealed.keyVersion).toBeUndefined();
    expect(`aws-kms://${sealed.keyArn}`).toBe(k.uri);
    const opened = await p().decrypt(
      { uri: k.uri },
      sealed.ciphertext,
      { context: { purpose: 'test', tenant: 't-1' } },
      call(),
    );
    expect(text(opened.plaintext)).toBe('hello');
    // Its own memory, not a view of the Buffer pool the SDK decoded it into.
    expect(opened.plaintext.buffer.byteLength).toBe(5);
  });

  it('fails with InvalidCiphertext when the context differs, is missing, or the ciphertext is altered', async () => {
    const k = await key('AES_256');
    const sealed = await p().encrypt({ uri: k.uri }, utf8('hello'), { context: ctx }, call());
    const tampered = Uint8Array.from(sealed.ciphertext);
    tampered[tampered.length - 2] = (tampered[tampered.length - 2] as number) ^ 1;
    for (const [ciphertext, context] of [
      [sealed.ciphertext, { ...ctx, tenant: 't-2' }],
      [sealed.ciphertext, {}],
      [tampered, ctx],
    ] as const) {
      const error = await p()
        .decrypt({ uri: k.uri }, ciphertext, { context }, call())
        .catch((e: unknown) => e);
      expect(p().mapError(error)?.code).toBe('InvalidCiphertext');
    }
  });

  it('refuses a ciphertext of another key (moto says AccessDenied, local-kms and AWS InvalidCiphertext)', async () => {
    const a = await key('AES_256');
    const b = await key('AES_256', undefined, 'other');
    const sealed = await p().encrypt({ uri: a.uri }, utf8('x'), {}, call());
    const error = await p()
      .decrypt({ uri: b.uri }, sealed.ciphertext, {}, call())
      .catch((e: unknown) => e);
    expect(p().mapError(error)?.code).toBe(name === 'moto' ? 'AccessDenied' : 'InvalidCiphertext');
  });

  it('generates data keys whose wrap opens to the same plaintext, with or without plaintext', async () => {
    const k = await key('AES_256');
    const dk = await p().generateDataKey({ uri: k.uri }, { context: ctx }, call());
    expect(dk.plaintext).toHaveLength(32);
    expect(dk.plaintext.buffer.byteLength).toBe(32);
    const opened = await p().decrypt({ uri: k.uri }, dk.wrapped, { context: ctx }, call());
    expect(Buffer.from(opened.plaintext).equals(Buffer.from(dk.plaintext))).toBe(true);
    const short = await p().generateDataKey({ uri: k.uri }, { bytes: 16 }, call());
    expect(short.plaintext).toHaveLength(16);
    const wrappedOnly = await p().generateDataKeyWithoutPlaintext(
      { uri: k.uri },
      { bytes: 32, context: ctx },
    );
    expect('plaintext' in wrappedOnly).toBe(false);
    expect(
      (await p().decrypt({ uri: k.uri }, wrappedOnly.wrapped, { context: ctx }, call())).plaintext,
    ).toHaveLength(32);
    await expect(p().generateDataKey({ uri: k.uri }, { bytes: 0 }, call())).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });

  it('re-encrypts under another key and context inside KMS', async () => {
    const a = await key('AES_256');
    const b = await key('AES_256', undefined, 'other');
    const sealed = await p().encrypt({ uri: a.uri }, utf8('moving'), { context: ctx }, call());
    const moved = await p().reEncrypt({ uri: a.uri }, sealed.ciphertext, {
      sourceContext: ctx,
      destination: { uri: b.uri },
      destinationContext: { to: 'b' },
    });
    expect([`aws-kms://${moved.sourceKeyArn}`, `aws-kms://${moved.keyArn}`]).toEqual([a.uri, b.uri]);
    const opened = await p().decrypt({ uri: b.uri }, moved.ciphertext, { context: { to: 'b' } }, call());
    expect(text(opened.plaintext)).toBe('moving');
  });

  it('binds a context key named __proto__ like any other', async () => {
    const k = await key('AES_256');
    const context = JSON.parse('{"__proto__": "tenant-a", "x": "1"}') as Record<string, string>;
    const sealed = await p().encrypt({ uri: k.uri }, utf8('proto'), { context }, call());
    expect(text((await p().decrypt({ uri: k.uri }, sealed.ciphertext, { context }, call())).plaintext)).toBe(
      'proto',
    );
    for (const other of [{ x: '1' }, JSON.parse('{"__proto__": "tenant-b", "x": "1"}')]) {
      const error = await p()
        .decrypt({ uri: k.uri }, sealed.ciphertext, { context: other }, call())
        .catch((e: unknown) => e);
      expect(p().mapError(error)?.code).toBe('InvalidCiphertext');
    }
  });

  it('sends one DescribeKey for a key however many first callers need its spec at once', async () => {
    const k = await key('AES_256');
    const client = sdkClientFor(target(name));
    const sent: string[] = [];
    client.middlewareStack.add(
      (next, context) => (args) => {
        sent.push(String(context.commandName));
        return next(args);
      },
      { step: 'initialize' },
    );
    const fresh = new AwsKmsProvider({ client });
    try {
      const sealed = await Promise.all(
        Array.from({ length: 16 }, (_, i) => fresh.encrypt({ uri: k.uri }, utf8(`m${i}`), {}, call())),
      );
      expect(sent.filter((c) => c === 'DescribeKeyCommand')).toHaveLength(1);
      expect(sent.filter((c) => c === 'EncryptCommand')).toHaveLength(16);
      const opened = await Promise.all(
        sealed.map((s) => fresh.decrypt({ uri: k.uri }, s.ciphertext, {}, call())),
      );
      expect(opened.map((o) => text(o.plaintext))).toEqual(Array.from({ length: 16 }, (_, i) => `m${i}`));
      expect(sent.filter((c) => c === 'DescribeKeyCommand')).toHaveLength(1);
    } finally {
      await fresh.close();
      client.destroy();
    }
  });

  it('refuses a context on an RSA key instead of dropping it (local-kms would ignore it)', async () => {
    const k = await key('RSA_2048', 'encrypt_decrypt');
    await expect(p().encrypt({ uri: k.uri }, utf8('x'), { context: ctx }, call())).rejects.toMatchObject({
      code: 'Unsupported',
      capability: 'context',
    });
  });

  it('encrypts with RSA keys (RSAES_OAEP_SHA_256) and decrypts', async () => {
    const k = await key('RSA_2048', 'encrypt_decrypt');
    const sealed = await p().encrypt({ uri: k.uri }, utf8('rsa secret'), {}, call());
    expect(text((await p().decrypt({ uri: k.uri }, sealed.ciphertext, {}, call())).plaintext)).toBe(
      'rsa secret',
    );
  });
});

describe('real RSA and signatures (checked with node:crypto)', () => {
  const { p, key } = setup('local-kms');

  it('local-kms: decrypts what node:crypto sealed with RSA-OAEP-SHA-256 under the public key', async () => {
    const k = await key('RSA_2048', 'encrypt_decrypt');
    const publicKey = await publicKeyOf('local-kms', k.uri);
    const sealed = publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      utf8('oaep'),
    );
    expect(text((await p().decrypt({ uri: k.uri }, sealed, {}, call())).plaintext)).toBe('oaep');
  });
});

describe.each(TARGET_NAMES)('signatures and MACs on %s', (name) => {
  const { p, key } = setup(name);
  const cases: ReadonlyArray<[KeySpec, SigningAlgorithm, { padding?: number; dsaEncoding?: 'der' }]> = [
    ['RSA_2048', 'RSASSA_PSS_SHA_256', { padding: constants.RSA_PKCS1_PSS_PADDING }],
    ['RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_256', {}],
    ['EC_P256', 'ECDSA_SHA_256', { dsaEncoding: 'der' }],
    ['EC_P384', 'ECDSA_SHA_384', { dsaEncoding: 'der' }],
  ];

  it.each(cases)(
    '%s signs with %s; the signature verifies in KMS and in node:crypto',
    async (spec, algorithm, nodeOpts) => {
      const k = await key(spec, 'sign_verify');
      const message = utf8(`message for ${algorithm}`);
      const signed = await p().sign({ uri: k.uri }, message, { algorithm }, call());
      expect(signed.algorithm).toBe(algorithm);
      expect(await p().verify({ uri: k.uri }, message, signed.signature, { algorithm }, call())).toBe(true);
      expect(await p().verify({ uri: k.uri }, utf8('other'), signed.signature, { algorithm }, call())).toBe(
        false,
      );
      const hash = algorithm.endsWith('384') ? 'sha384' : 'sha256';
      const publicKey = await publicKeyOf(name, k.uri);
      expect(nodeVerify(hash, message, { key: publicKey, ...nodeOpts }, signed.signature)).toBe(true);
    },
  );

  it('exposes the public key (GetPublicKey) as SPKI DER, the same one KMS returns', async () => {
    const k = await key('EC_P256', 'sign_verify');
    const spki = await p().getPublicKey({ uri: k.uri }, call());
    const expected = (await publicKeyOf(name, k.uri)).export({ format: 'der', type: 'spki' });
    expect(Buffer.from(spki).equals(expected)).toBe(true);
  });

  it('picks the default algorithm from the key spec (PSS for RSA, ECDSA_SHA_384 for P-384)', async () => {
    const rsa = await key('RSA_2048', 'sign_verify');
    const ec = await key('EC_P384', 'sign_verify');
    expect((await p().sign({ uri: rsa.uri }, utf8('m'), {}, call())).algorithm).toBe('RSASSA_PSS_SHA_256');
    expect((await p().sign({ uri: ec.uri }, utf8('m'), {}, call())).algorithm).toBe('ECDSA_SHA_384');
  });

  it('computes and verifies HMAC-SHA-256 MACs', async () => {
    const k = await key('HMAC_256');
    const tag = await p().mac({ uri: k.uri }, utf8('data'), call());
    expect(tag.mac).toHaveLength(32);
    expect(
      Buffer.from((await p().mac({ uri: k.uri }, utf8('data'), call())).mac).equals(Buffer.from(tag.mac)),
    ).toBe(true);
    expect(await p().verifyMac({ uri: k.uri }, utf8('data'), tag.mac, call())).toBe(true);
    expect(await p().verifyMac({ uri: k.uri }, utf8('date'), tag.mac, call())).toBe(false);
  });
});
