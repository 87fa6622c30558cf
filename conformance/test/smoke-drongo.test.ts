// One real call through @google-cloud/kms (REST fallback) against drongo, configured as
// DESIGN.md records: fallback + http protocol, apiEndpoint and port, and an OAuth2 client
// holding a static access token so the client never looks for real credentials.
import { KeyManagementServiceClient } from '@google-cloud/kms';
import { OAuth2Client } from 'google-auth-library';
import { describe, expect, it } from 'vitest';
import { requireTarget } from '../harness/env.js';

describe('smoke: drongo (Cloud KMS REST)', () => {
  it('creates a key ring and crypto key and encrypts and decrypts with AAD', async () => {
    const env = requireTarget('drongo');
    const endpoint = new URL(env.KEYPORT_DRONGO_ENDPOINT);
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'keyport-smoke', expiry_date: Date.now() + 3_600_000 });
    const kms = new KeyManagementServiceClient({
      fallback: true,
      protocol: 'http',
      apiEndpoint: endpoint.hostname,
      port: Number(endpoint.port),
      authClient,
    });
    try {
      const parent = 'projects/keyport-smoke/locations/global';
      const ringId = `ring-${Date.now()}`;
      const [ring] = await kms.createKeyRing({ parent, keyRingId: ringId, keyRing: {} });
      expect(ring.name).toBe(`${parent}/keyRings/${ringId}`);
      const [key] = await kms.createCryptoKey({
        parent: ring.name ?? '',
        cryptoKeyId: 'smoke',
        cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
      });
      const aad = Buffer.from('purpose=smoke');
      const [encrypted] = await kms.encrypt({
        name: key.name ?? '',
        plaintext: Buffer.from('drongo smoke'),
        additionalAuthenticatedData: aad,
      });
      const [decrypted] = await kms.decrypt({
        name: key.name ?? '',
        ciphertext: encrypted.ciphertext ?? Buffer.alloc(0),
        additionalAuthenticatedData: aad,
      });
      expect(Buffer.from(decrypted.plaintext ?? []).toString()).toBe('drongo smoke');
    } finally {
      await kms.close();
    }
  });
});
