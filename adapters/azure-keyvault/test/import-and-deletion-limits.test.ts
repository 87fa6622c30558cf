/**
 * importJwk must import only keys keyport can describe truthfully, for a
 * usage their type serves, and refuse the others before any request (nothing half done);
 * scheduleKeyDeletion must not accept a waiting period the vault would cut short.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Keyport } from '@keyport/core';
import type { AzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importJwk } from '../src/index.js';
import { providerFor, sdkClient, startServer, uniqueName } from './support/server.js';

let vault: AzureKeyVaultServer;
let hsm: AzureKeyVaultServer;
let kv: Keyport;
let mhsm: Keyport;
beforeAll(async () => {
  [vault, hsm] = await Promise.all([startServer('vault'), startServer('hsm')]);
  kv = new Keyport({ providers: [providerFor(vault)], retry: { maxAttempts: 1 } });
  mhsm = new Keyport({ providers: [providerFor(hsm)], retry: { maxAttempts: 1 } });
});
afterAll(async () => {
  await Promise.all([kv.close(), mhsm.close()]);
  await Promise.all([vault.stop(), hsm.stop()]);
});

const privateJwk = (type: 'ec' | 'rsa', option: string | number) =>
  (type === 'ec'
    ? generateKeyPairSync('ec', { namedCurve: option as string })
    : generateKeyPairSync('rsa', { modulusLength: option as number })
  ).privateKey.export({ format: 'jwk' }) as { kty: string };
const absent = (server: AzureKeyVaultServer, name: string) =>
  expect(sdkClient(server).getKey(name)).rejects.toMatchObject({ statusCode: 404 });

describe('importJwk: only keys keyport can describe, for a usage they serve', () => {
  it('an EC P-521 key (no keyport spec) is refused as Unsupported before it is imported, not left behind', async () => {
    const name = uniqueName('p521');
    await expect(importJwk(kv, 'azurekeyvault', name, privateJwk('ec', 'P-521'))).rejects.toMatchObject({
      code: 'Unsupported',
      capability: 'keySpec',
    });
    await absent(vault, name);
  });

  it('an AES-128 key on a Managed HSM is refused, never imported and described as AES_256', async () => {
    const name = uniqueName('aes128');
    const jwk = { kty: 'oct', k: randomBytes(16).toString('base64url') };
    await expect(importJwk(mhsm, 'azurekeyvault', name, jwk)).rejects.toMatchObject({
      code: 'Unsupported',
      capability: 'keySpec',
    });
    await absent(hsm, name);
    // AES-256 still imports, and encrypts.
    const aes = await importJwk(mhsm, 'azurekeyvault', uniqueName('aes256'), {
      kty: 'oct',
      k: randomBytes(32).toString('base64url'),
    });
    expect(aes).toMatchObject({ spec: 'AES_256', usage: 'encrypt_decrypt' });
    await expect(mhsm.encrypt(aes.uri, randomBytes(8))).resolves.toBeDefined();
  });

  it('a usage the key type cannot serve is InvalidArgument, not silently another usage', async () => {
    const ecName = uniqueName('ec-enc');
    await expect(
      importJwk(kv, 'azurekeyvault', ecName, privateJwk('ec', 'P-256'), { usage: 'encrypt_decrypt' }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
    await absent(vault, ecName);
    const aesName = uniqueName('aes-sign');
    const aes = { kty: 'oct', k: randomBytes(32).toString('base64url') };
    await expect(
      importJwk(mhsm, 'azurekeyvault', aesName, aes, { usage: 'sign_verify' }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
    await absent(hsm, aesName);
    const rsaName = uniqueName('rsa-mac');
    await expect(
      importJwk(kv, 'azurekeyvault', rsaName, privateJwk('rsa', 2048), { usage: 'mac' }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
    await absent(vault, rsaName);
  });
});

describe('scheduleKeyDeletion: a waiting period the vault would cut short', () => {
  it('days longer than the vault retention (7 days here) is refused and the key stays live, not purged sooner', async () => {
    const key = await kv.createKey('azurekeyvault', { name: uniqueName('del30'), spec: 'RSA_2048' });
    await expect(kv.scheduleKeyDeletion(key.uri, { days: 30 })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    await expect(kv.describeKey(key.uri)).resolves.toMatchObject({ state: 'enabled' });
    // Within the retention the vault keeps the key at least as long as asked.
    const deleted = await kv.scheduleKeyDeletion(key.uri, { days: 7 });
    expect(deleted.state).toBe('pending_deletion');
  });
});
