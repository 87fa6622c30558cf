// One real call through @azure/keyvault-keys against keyport's Key Vault test server as the
// harness started it: HTTPS with a CA trusted by this process only, the server's admin token.
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { CryptographyClient, KeyClient } from '@azure/keyvault-keys';
import { describe, expect, it } from 'vitest';
import { requireTarget } from '../harness/env.js';

describe('smoke: keyport Azure Key Vault test server', () => {
  it('creates an RSA key and encrypts and decrypts with RSA-OAEP-256', async () => {
    const env = requireTarget('azure-keyvault');
    const credential = {
      getToken: async () => ({
        token: env.KEYPORT_AZUREKV_TOKEN,
        expiresOnTimestamp: Date.now() + 3_600_000,
      }),
    };
    const options = {
      agent: new Agent({ ca: readFileSync(env.KEYPORT_AZUREKV_CA), keepAlive: false }),
      // The 401 challenge names vault.azure.net while the server is 127.0.0.1.
      disableChallengeResourceVerification: true,
      retryOptions: { maxRetries: 0 },
    };
    const keys = new KeyClient(env.KEYPORT_AZUREKV_URL, credential, options);
    const key = await keys.createRsaKey(`smoke-${Date.now()}`, { keySize: 2048 });
    expect(key.id).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/keys\/smoke-/);
    const crypto = new CryptographyClient(key.id ?? '', credential, options);
    const encrypted = await crypto.encrypt({
      algorithm: 'RSA-OAEP-256',
      plaintext: Buffer.from('azure smoke'),
    });
    expect(encrypted.result.length).toBe(256);
    const decrypted = await crypto.decrypt({ algorithm: 'RSA-OAEP-256', ciphertext: encrypted.result });
    expect(Buffer.from(decrypted.result).toString()).toBe('azure smoke');
  });
});
