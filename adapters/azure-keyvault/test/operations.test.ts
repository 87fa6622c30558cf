/**
 * The Key Vault-only operations through a Keyport: they run on core's call path, so they are
 * audited under `azurekeyvault:<name>`, honour the caller's signal and map errors like the
 * neutral operations; and they refuse a key of another driver.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { type AuditEvent, Keyport, type KmsProvider } from '@keyport/core';
import type { AzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  azureKeyVault,
  backupKey,
  importJwk,
  KEY_VAULT_CAPABILITIES,
  purgeDeletedKey,
  restoreKey,
  setValidity,
} from '../src/index.js';
import { clientOptions, startServer, staticToken, TOKENS, uniqueName } from './support/server.js';

let server: AzureKeyVaultServer;
let keyport: Keyport;
const events: AuditEvent[] = [];
beforeAll(async () => {
  server = await startServer('vault');
  const driver = azureKeyVault({
    vaultUrl: server.url,
    credential: staticToken(TOKENS.admin),
    clientOptions: clientOptions(server.caFile),
    pollIntervalMs: 5,
  });
  keyport = new Keyport({
    providers: [driver],
    retry: { maxAttempts: 1 },
    audit: [{ write: (e) => void events.push(e) }],
  });
});
afterAll(async () => {
  await keyport.close();
  await server.stop();
});

describe('Key Vault-only operations through a Keyport', () => {
  it('backup, purge and restore run on the call path and are audited by name', async () => {
    const key = await keyport.createKey('azurekeyvault', { name: uniqueName('ops'), spec: 'RSA_2048' });
    const sealed = await keyport.encrypt(key.uri, randomBytes(32));
    const blob = await backupKey(keyport, key.uri);
    await keyport.scheduleKeyDeletion(key.uri);
    await purgeDeletedKey(keyport, key.uri);
    const restored = await restoreKey(keyport, 'azurekeyvault', blob);
    expect(restored.uri).toBe(key.uri);
    await expect(keyport.decrypt(key.uri, sealed.ciphertext)).resolves.toBeDefined();
    const ops = events.filter((e) => e.op.startsWith('azurekeyvault:')).map((e) => [e.op, e.outcome]);
    expect(ops).toEqual([
      ['azurekeyvault:backupKey', 'success'],
      ['azurekeyvault:purgeDeletedKey', 'success'],
      ['azurekeyvault:restoreKey', 'success'],
    ]);
    // The name is live again: a second restore is mapped (409 -> AlreadyExists) and audited as a failure.
    await expect(restoreKey(keyport, 'azurekeyvault', blob)).rejects.toMatchObject({ code: 'AlreadyExists' });
    expect(events.at(-1)).toMatchObject({
      op: 'azurekeyvault:restoreKey',
      outcome: 'failure',
      errorCode: 'AlreadyExists',
    });
  });

  it('importJwk and setValidity: the imported key encrypts until its validity ends', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = privateKey.export({ format: 'jwk' }) as { kty: string };
    const name = uniqueName('ops-jwk');
    const imported = await importJwk(keyport, 'azurekeyvault', name, jwk);
    expect(imported).toMatchObject({ spec: 'RSA_2048', usage: 'encrypt_decrypt' });
    await expect(importJwk(keyport, 'azurekeyvault', name, jwk)).rejects.toMatchObject({
      code: 'AlreadyExists',
    });
    const sealed = await keyport.encrypt(imported.uri, randomBytes(16));
    await setValidity(keyport, imported.uri, { expiresOn: new Date(Date.now() - 60_000) });
    await expect(keyport.encrypt(imported.uri, randomBytes(16))).rejects.toMatchObject({
      code: 'KeyStateConflict',
    });
    await expect(keyport.decrypt(imported.uri, sealed.ciphertext)).resolves.toBeDefined();
  });

  it('an aborted signal stops the operation before the vault is called', async () => {
    const key = await keyport.createKey('azurekeyvault', { name: uniqueName('ops-abort'), spec: 'RSA_2048' });
    await expect(backupKey(keyport, key.uri, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'Aborted',
    });
  });

  it('a key of another driver is refused', async () => {
    const other: KmsProvider = {
      scheme: 'otherkms',
      capabilities: KEY_VAULT_CAPABILITIES,
      parseUri: (uri) => ({ uri }),
      formatUri: (ref) => ref.uri,
      encrypt: async () => ({ ciphertext: new Uint8Array(1), keyVersion: '1' }),
      decrypt: async () => ({ plaintext: new Uint8Array(1), keyVersion: '1' }),
      mapError: () => undefined,
      close: async () => undefined,
    };
    const mixed = new Keyport({ providers: [other] });
    await expect(backupKey(mixed, 'otherkms://k')).rejects.toMatchObject({ code: 'InvalidArgument' });
    await mixed.close();
  });
});
