/**
 * The adapter against the server the harness started (target `azure-keyvault`), reached only
 * through the variables it writes: KEYPORT_AZUREKV_URL, KEYPORT_AZUREKV_CA, KEYPORT_AZUREKV_TOKEN.
 */
import { randomBytes } from 'node:crypto';
import { Keyport } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { AzureKeyVaultProvider } from '../src/index.js';
import { clientOptions, staticToken, uniqueName } from './support/server.js';

function target(): { url: string; ca: string; token: string } {
  const url = process.env.KEYPORT_AZUREKV_URL;
  const ca = process.env.KEYPORT_AZUREKV_CA;
  const token = process.env.KEYPORT_AZUREKV_TOKEN;
  if (!url || !ca || !token) {
    throw new Error(
      'target azure-keyvault is not running: run "pnpm emulators up azure-keyvault" (KEYPORT_AZUREKV_URL, KEYPORT_AZUREKV_CA or KEYPORT_AZUREKV_TOKEN is not set)',
    );
  }
  return { url, ca, token };
}

describe('harness target azure-keyvault', () => {
  it('creates an RSA key, encrypts with a context and decrypts it', async () => {
    const t = target();
    const provider = new AzureKeyVaultProvider({
      vaultUrl: t.url,
      credential: staticToken(t.token),
      clientOptions: clientOptions(t.ca),
      pollIntervalMs: 5,
    });
    const keyport = new Keyport({ providers: [provider] });
    const key = await keyport.createKey('azurekeyvault', { name: uniqueName('harness'), spec: 'RSA_2048' });
    const plaintext = randomBytes(48);
    const sealed = await keyport.encrypt(key.uri, plaintext, { context: { app: 'harness' } });
    const opened = await keyport.decrypt(key.uri, sealed.ciphertext, { context: { app: 'harness' } });
    expect(Buffer.from(opened.plaintext).equals(plaintext)).toBe(true);
    await keyport.close();
  });
});
