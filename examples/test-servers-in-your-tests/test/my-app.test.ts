/**
 * An application's own tests, offline: the code under test uses the official Azure and Google
 * SDKs exactly as in production; only the endpoint (and, for Azure, the CA the test trusts)
 * points at keyport's test servers. Start a server per suite, stop it after.
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { CryptographyClient, KeyClient } from '@azure/keyvault-keys';
import { KeyManagementServiceClient } from '@google-cloud/kms';
import * as grpc from '@grpc/grpc-js';
import {
  type AzureKeyVaultServer,
  type CloudKmsServer,
  DEFAULT_AZURE_TOKEN,
  startAzureKeyVaultServer,
  startCloudKmsServer,
} from '@keyport/test-servers';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// --- the application code under test: it only ever sees SDK clients -------------------------

async function sealWithCloudKms(kms: KeyManagementServiceClient, keyName: string, secret: string) {
  const [res] = await kms.encrypt({
    name: keyName,
    plaintext: Buffer.from(secret),
    additionalAuthenticatedData: Buffer.from('orders'),
  });
  return res.ciphertext as Uint8Array;
}

async function openWithCloudKms(kms: KeyManagementServiceClient, keyName: string, ciphertext: Uint8Array) {
  const [res] = await kms.decrypt({
    name: keyName,
    ciphertext,
    additionalAuthenticatedData: Buffer.from('orders'),
  });
  return Buffer.from(res.plaintext as Uint8Array).toString();
}

async function wrapWithKeyVault(crypto: CryptographyClient, dataKey: Uint8Array) {
  return (await crypto.wrapKey('RSA-OAEP-256', dataKey)).result;
}

// --- the tests ----------------------------------------------------------------------------

describe('my app against Cloud KMS (keyport test server)', () => {
  let server: CloudKmsServer;
  let kms: KeyManagementServiceClient;
  const parent = 'projects/my-app/locations/global';

  beforeAll(async () => {
    server = await startCloudKmsServer();
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'test' }); // no GCE metadata lookups
    kms = new KeyManagementServiceClient({
      apiEndpoint: '127.0.0.1',
      port: server.port,
      sslCreds: grpc.credentials.createInsecure(),
      authClient,
    });
  });
  afterAll(async () => {
    await kms.close();
    await server.stop();
  });

  it('round-trips a secret and refuses a tampered ciphertext', async () => {
    await kms.createKeyRing({ parent, keyRingId: 'app' });
    const [key] = await kms.createCryptoKey({
      parent: `${parent}/keyRings/app`,
      cryptoKeyId: 'orders',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
    });
    const name = key.name as string;
    const sealed = await sealWithCloudKms(kms, name, 'card 4111');
    expect(await openWithCloudKms(kms, name, sealed)).toBe('card 4111');
    const tampered = Uint8Array.from(sealed);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    await expect(openWithCloudKms(kms, name, tampered)).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
  });
});

describe('my app against Azure Key Vault (keyport test server)', () => {
  let server: AzureKeyVaultServer;
  let sdkOptions: ConstructorParameters<typeof KeyClient>[2];
  const credential = {
    getToken: async () => ({ token: DEFAULT_AZURE_TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 }),
  };

  beforeAll(async () => {
    server = await startAzureKeyVaultServer();
    sdkOptions = {
      // Trust the server's certificate for these clients only; TLS stays verified.
      agent: new Agent({ ca: readFileSync(server.caFile) }),
      // The challenge names vault.azure.net while the server is 127.0.0.1: a test-only setting.
      disableChallengeResourceVerification: true,
    };
  });
  afterAll(() => server.stop());

  it('wraps and unwraps a data key at the vault', async () => {
    const keys = new KeyClient(server.url, credential, sdkOptions);
    const key = await keys.createRsaKey('app-kek', { keySize: 2048 });
    const crypto = new CryptographyClient(key.id as string, credential, sdkOptions);
    const dataKey = new Uint8Array(32).fill(7);
    const wrapped = await wrapWithKeyVault(crypto, dataKey);
    expect(Buffer.from((await crypto.unwrapKey('RSA-OAEP-256', wrapped)).result)).toEqual(
      Buffer.from(dataKey),
    );
  });
});
