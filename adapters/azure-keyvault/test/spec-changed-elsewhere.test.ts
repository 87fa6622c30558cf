/**
 * The adapter remembers a key's spec (type and size) per name. Another process can give the name
 * a version of another size or type: Key Vault's create and import on a taken name add a version
 * (`az keyvault key create` on an existing name does), and a key deleted, purged and made anew
 * is another key under the same name. This process's encrypt and sign must follow the vault, as
 * a process that never cached the old spec would, not fail with Internal "wrong size" until the
 * cache entry goes.
 */
import { Keyport } from '@keyport/core';
import type { AzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { purgeDeletedKey } from '../src/index.js';
import { providerFor, sdkClient, startServer, uniqueName, utf8 } from './support/server.js';

let server: AzureKeyVaultServer;
const opened: Keyport[] = [];
beforeAll(async () => {
  server = await startServer('vault');
});
afterAll(async () => {
  for (const k of opened) await k.close();
  await server.stop();
});

/** A Keyport over its own provider instance (its own spec cache), without core's retries. */
function instance(): Keyport {
  const keyport = new Keyport({ providers: [providerFor(server)], retry: { maxAttempts: 1 } });
  opened.push(keyport);
  return keyport;
}

describe("a key given another size or type elsewhere: this instance's cached spec is read anew", () => {
  it('encrypt after another instance deleted, purged and created the name anew with another size', async () => {
    const mine = instance();
    const other = instance();
    const name = uniqueName('remade');
    const first = await mine.createKey('azurekeyvault', { name, spec: 'RSA_2048' });
    await mine.encrypt(first.uri, utf8('before')); // caches RSA_2048

    await other.scheduleKeyDeletion(first.uri);
    await purgeDeletedKey(other, first.uri);
    const remade = await other.createKey('azurekeyvault', { name, spec: 'RSA_3072' });

    const sealed = await mine.encrypt(first.uri, utf8('after'));
    expect(sealed.keyVersion).toBe(remade.primaryVersion);
    const opened = await other.decrypt(first.uri, sealed.ciphertext);
    expect(new TextDecoder().decode(opened.plaintext)).toBe('after');
    // Read anew once: the next encrypt uses the new spec at once.
    await expect(mine.encrypt(first.uri, utf8('again'))).resolves.toMatchObject({
      keyVersion: remade.primaryVersion,
    });
  });

  it('encrypt after a version of another size was added to the name (az keyvault key create); old ciphertexts still open', async () => {
    const mine = instance();
    const name = uniqueName('new-version');
    const key = await mine.createKey('azurekeyvault', { name, spec: 'RSA_2048' });
    const old = await mine.encrypt(key.uri, utf8('old'));

    const added = await sdkClient(server).createRsaKey(name, {
      keySize: 4096,
      keyOps: ['wrapKey', 'unwrapKey'],
    });
    const sealed = await mine.encrypt(key.uri, utf8('new'));
    expect(sealed.keyVersion).toBe(added.properties.version);
    expect(new TextDecoder().decode((await mine.decrypt(key.uri, sealed.ciphertext)).plaintext)).toBe('new');
    expect(new TextDecoder().decode((await mine.decrypt(key.uri, old.ciphertext)).plaintext)).toBe('old');
    await expect(mine.describeKey(key.uri)).resolves.toMatchObject({ spec: 'RSA_4096' });
  });

  it('sign after a version of another size was added to the name', async () => {
    const mine = instance();
    const rsa = uniqueName('sign-rsa');
    const rsaKey = await mine.createKey('azurekeyvault', {
      name: rsa,
      spec: 'RSA_2048',
      usage: 'sign_verify',
    });
    await mine.sign(rsaKey.uri, utf8('before'));
    await sdkClient(server).createRsaKey(rsa, { keySize: 3072, keyOps: ['sign', 'verify'] });
    const signed = await mine.sign(rsaKey.uri, utf8('after'));
    expect(signed.signature).toHaveLength(384);
    await expect(
      mine.verify(rsaKey.uri, utf8('after'), signed.signature, { algorithm: signed.algorithm }),
    ).resolves.toBe(true);
  });

  it('sign after a version on another curve was added to the name (the vault refuses the old algorithm: 400)', async () => {
    const mine = instance();
    const ec = uniqueName('sign-ec');
    const ecKey = await mine.createKey('azurekeyvault', { name: ec, spec: 'EC_P256' });
    await mine.sign(ecKey.uri, utf8('before'));
    await sdkClient(server).createEcKey(ec, { curve: 'P-384', keyOps: ['sign', 'verify'] });
    const ecSigned = await mine.sign(ecKey.uri, utf8('after'));
    expect(ecSigned.algorithm).toBe('ECDSA_SHA_384');
    await expect(
      mine.verify(ecKey.uri, utf8('after'), ecSigned.signature, { algorithm: ecSigned.algorithm }),
    ).resolves.toBe(true);
  });
});

describe('a request the cached spec refuses is checked against the spec read anew', () => {
  it("verify of a signature by a version on another curve, with that curve's algorithm", async () => {
    const mine = instance();
    const other = instance();
    const name = uniqueName('verify-ec');
    const key = await mine.createKey('azurekeyvault', { name, spec: 'EC_P256' });
    await mine.sign(key.uri, utf8('before')); // caches EC_P256
    await sdkClient(server).createEcKey(name, { curve: 'P-384', keyOps: ['sign', 'verify'] });
    const signed = await other.sign(key.uri, utf8('after'));
    expect(signed.algorithm).toBe('ECDSA_SHA_384');
    await expect(
      mine.verify(key.uri, utf8('after'), signed.signature, { algorithm: 'ECDSA_SHA_384' }),
    ).resolves.toBe(true);
    // A signature that does not verify still says so.
    await expect(
      mine.verify(key.uri, utf8('forged'), signed.signature, { algorithm: 'ECDSA_SHA_384' }),
    ).resolves.toBe(false);
  });

  it("verify with a ref pinned to an older version on another curve than the latest's", async () => {
    const mine = instance();
    const name = uniqueName('verify-pinned');
    const key = await mine.createKey('azurekeyvault', { name, spec: 'EC_P256' });
    const signed = await mine.sign(key.uri, utf8('v1'));
    await sdkClient(server).createEcKey(name, { curve: 'P-384', keyOps: ['sign', 'verify'] });
    await mine.describeKey(key.uri); // caches the latest version's spec: EC_P384
    const pinned = `${key.uri}/${signed.keyVersion}`;
    await expect(
      mine.verify(pinned, utf8('v1'), signed.signature, { algorithm: 'ECDSA_SHA_256' }),
    ).resolves.toBe(true);
  });

  it('sign asking for the algorithm of the curve a version added elsewhere has', async () => {
    const mine = instance();
    const name = uniqueName('sign-asked');
    const key = await mine.createKey('azurekeyvault', { name, spec: 'EC_P256' });
    await mine.sign(key.uri, utf8('before'));
    await sdkClient(server).createEcKey(name, { curve: 'P-384', keyOps: ['sign', 'verify'] });
    const signed = await mine.sign(key.uri, utf8('after'), { algorithm: 'ECDSA_SHA_384' });
    expect(signed.algorithm).toBe('ECDSA_SHA_384');
    // An algorithm the key does not serve is still the caller's mistake.
    await expect(mine.sign(key.uri, utf8('x'), { algorithm: 'ECDSA_SHA_256' })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });

  it('encrypt after a signing key was deleted, purged and made anew as an encryption key', async () => {
    const mine = instance();
    const other = instance();
    const name = uniqueName('remade-usage');
    const first = await mine.createKey('azurekeyvault', { name, spec: 'EC_P256' });
    await mine.sign(first.uri, utf8('before')); // caches EC_P256
    await other.scheduleKeyDeletion(first.uri);
    await purgeDeletedKey(other, first.uri);
    const remade = await other.createKey('azurekeyvault', { name, spec: 'RSA_2048' });
    const sealed = await mine.encrypt(first.uri, utf8('after'));
    expect(sealed.keyVersion).toBe(remade.primaryVersion);
    expect(new TextDecoder().decode((await other.decrypt(first.uri, sealed.ciphertext)).plaintext)).toBe(
      'after',
    );
  });
});
