/**
 * BYOK on local-kms (moto has no GetParametersForImport: it answers an HTML page, so import is
 * not emulated there). local-kms offers RSA_2048 wrapping keys with RSAES_OAEP_SHA_1 and _SHA_256;
 * RSA_4096 wrapping keys are checked with the stubbed transport (transport.test.ts).
 */
import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { AwsKmsProvider } from '../src/index.js';
import { call, providerFor, target, text, uniqueName, utf8 } from './support/targets.js';

describe('import (BYOK) on local-kms', () => {
  let provider: AwsKmsProvider | undefined;
  const p = (): AwsKmsProvider => {
    provider ??= providerFor(target('local-kms'));
    return provider;
  };
  afterAll(async () => provider?.close());

  it.each(['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'] as const)(
    'imports material wrapped with %s, with an expiry, and deletes it again',
    async (algorithm) => {
      const created = await p().createKey(
        { name: uniqueName('byok'), spec: 'AES_256', external: true },
        call(),
      );
      expect(created).toMatchObject({ state: 'pending_import', origin: 'external' });
      const { uri } = created;
      const params = await p().getImportParameters({ uri }, { algorithm }, call());
      expect(params).toMatchObject({ keyUri: uri, algorithm });
      expect(params.expiresAt?.getTime()).toBeGreaterThan(Date.now());
      const material = randomBytes(32);
      const wrappedMaterial = publicEncrypt(
        {
          key: createPublicKey({ key: Buffer.from(params.wrappingPublicKey), format: 'der', type: 'spki' }),
          padding: constants.RSA_PKCS1_OAEP_PADDING,
          oaepHash: algorithm === 'RSAES_OAEP_SHA_256' ? 'sha256' : 'sha1',
        },
        material,
      );
      const imported = await p().importKeyMaterial(
        { uri },
        {
          wrappedMaterial,
          algorithm,
          ...(params.importToken !== undefined ? { importToken: params.importToken } : {}),
          expiresAt: new Date(Date.now() + 86_400_000),
        },
        call(),
      );
      expect(imported.state).toBe('enabled');
      const sealed = await p().encrypt({ uri }, utf8('byok'), { context: { k: 'v' } }, call());
      expect(
        text((await p().decrypt({ uri }, sealed.ciphertext, { context: { k: 'v' } }, call())).plaintext),
      ).toBe('byok');

      expect((await p().deleteImportedKeyMaterial({ uri })).state).toBe('pending_import');
      const error = await p()
        .encrypt({ uri }, utf8('x'), {}, call())
        .catch((e: unknown) => e);
      expect(p().mapError(error)?.code).toBe('KeyStateConflict');
    },
  );

  it('refuses material that was not wrapped under the import parameters', async () => {
    const { uri } = await p().createKey(
      { name: uniqueName('byok-bad'), spec: 'AES_256', external: true },
      call(),
    );
    const params = await p().getImportParameters({ uri }, {}, call());
    const error = await p()
      .importKeyMaterial(
        { uri },
        {
          wrappedMaterial: randomBytes(256),
          algorithm: 'RSAES_OAEP_SHA_256',
          importToken: params.importToken as Uint8Array,
        },
        call(),
      )
      .catch((e: unknown) => e);
    // AWS (and local-kms) answer InvalidCiphertextException when the wrap does not open
    expect(p().mapError(error)?.code).toBe('InvalidCiphertext');
  });

  it('needs the import token and a future expiry before calling AWS', async () => {
    const uri = 'aws-kms://alias/never-called';
    await expect(
      p().importKeyMaterial({ uri }, { wrappedMaterial: utf8('w'), algorithm: 'RSAES_OAEP_SHA_256' }, call()),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(
      p().importKeyMaterial(
        { uri },
        {
          wrappedMaterial: utf8('w'),
          algorithm: 'RSAES_OAEP_SHA_256',
          importToken: utf8('t'),
          expiresAt: new Date(0),
        },
        call(),
      ),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
  });
});
