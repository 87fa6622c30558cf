/**
 * Sizes AWS refuses, refused before any request: plaintexts and messages of 1 to 4096 bytes (less
 * for RSA keys), ciphertexts of 1 to 6144. local-kms quotes a refused plaintext or message whole
 * in its ValidationException, so sent, it would end up in the error's cause (printed by every
 * log that prints the error); moto answers an oversized ciphertext AccessDenied.
 */
import { inspect } from 'node:util';
import { Keyport } from '@keyport/core';
import { afterAll, describe, expect, it } from 'vitest';
import { type AwsKmsProvider, awsKms } from '../src/index.js';
import { stubTransport } from './support/stub-transport.js';
import {
  call,
  providerFor,
  TARGET_NAMES,
  TEST_CREDENTIALS,
  target,
  uniqueName,
  utf8,
} from './support/targets.js';

const KEY = 'aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

describe('a plaintext or message too long for AWS, on local-kms (which echoes it)', () => {
  let provider: AwsKmsProvider | undefined;
  afterAll(async () => provider?.close());

  it('is refused (InvalidArgument) without the bytes anywhere in the error', async () => {
    provider = providerFor(target('local-kms'));
    const keys = new Keyport({ providers: [provider], retry: { maxAttempts: 1 } });
    const secret = utf8(`top-secret-${'s'.repeat(4096)}`);
    const aes = await provider.createKey({ name: uniqueName('size-aes'), spec: 'AES_256' }, call());
    const ec = await provider.createKey({ name: uniqueName('size-ec'), spec: 'EC_P256' }, call());
    for (const failed of [keys.encrypt(aes.uri, secret), keys.sign(ec.uri, secret)]) {
      const error = await failed.catch((e: unknown) => e);
      expect(`${inspect(error, { depth: 10 })} ${JSON.stringify(error)}`).not.toContain('top-secret');
      expect(error).toMatchObject({ code: 'InvalidArgument' });
      expect((error as Error).message).toContain('1 to 4096 bytes, not 4107');
    }
    // 4096 bytes are taken
    const sealed = await keys.encrypt(aes.uri, secret.subarray(0, 4096));
    expect((await keys.decrypt(aes.uri, sealed.ciphertext)).plaintext).toEqual(secret.subarray(0, 4096));
  });

  it('an RSA plaintext over the OAEP limit is InvalidArgument, not a retried InternalFailure', async () => {
    provider ??= providerFor(target('local-kms'));
    const keys = new Keyport({ providers: [provider], retry: { maxAttempts: 1 } });
    const rsa = await provider.createKey({ name: uniqueName('size-rsa'), spec: 'RSA_2048' }, call());
    const error = await keys.encrypt(rsa.uri, new Uint8Array(191)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'InvalidArgument', retryable: false });
    const sealed = await keys.encrypt(rsa.uri, new Uint8Array(190).fill(7));
    expect((await keys.decrypt(rsa.uri, sealed.ciphertext)).plaintext).toEqual(new Uint8Array(190).fill(7));
  });
});

describe.each(TARGET_NAMES)('a ciphertext of a size no AWS ciphertext has, on %s', (name) => {
  let provider: AwsKmsProvider | undefined;
  afterAll(async () => provider?.close());

  it('is InvalidCiphertext, like any ciphertext that does not open (moto said AccessDenied)', async () => {
    provider = providerFor(target(name));
    const key = await provider.createKey({ name: uniqueName('size-ct'), spec: 'AES_256' }, call());
    for (const ciphertext of [new Uint8Array(0), new Uint8Array(6145)]) {
      const error = await provider.decrypt({ uri: key.uri }, ciphertext, {}, call()).catch((e: unknown) => e);
      expect(provider.mapError(error)?.code, `${ciphertext.length} bytes`).toBe('InvalidCiphertext');
    }
  });
});

describe('sizes refused before any request (stubbed transport)', () => {
  it('plaintexts, messages and ciphertexts AWS would refuse send nothing', async () => {
    const stub = stubTransport(() => ({ json: {} }));
    const provider = awsKms({
      region: 'us-east-1',
      credentials: TEST_CREDENTIALS,
      clientConfig: stub.clientConfig,
    });
    const ref = { uri: KEY };
    const empty = new Uint8Array(0);
    const long = new Uint8Array(4097);
    const codes = await Promise.all(
      [
        provider.encrypt(ref, empty, {}, call()),
        provider.encrypt(ref, long, {}, call()),
        provider.decrypt(ref, empty, {}, call()),
        provider.decrypt(ref, new Uint8Array(6145), {}, call()),
        provider.reEncrypt(ref, new Uint8Array(6145), { destination: ref }),
        provider.sign(ref, long, {}, call()),
        provider.verify(ref, empty, utf8('s'), { algorithm: 'ECDSA_SHA_256' }, call()),
        provider.mac(ref, long, call()),
        provider.verifyMac(ref, empty, utf8('t'), call()),
      ].map((p) =>
        p.then(
          () => 'ok',
          (e: unknown) => provider.mapError(e)?.code,
        ),
      ),
    );
    expect(codes).toEqual([
      'InvalidArgument',
      'InvalidArgument',
      'InvalidCiphertext',
      'InvalidCiphertext',
      'InvalidCiphertext',
      'InvalidArgument',
      'InvalidArgument',
      'InvalidArgument',
      'InvalidArgument',
    ]);
    expect(stub.requests).toEqual([]);
  });
});
