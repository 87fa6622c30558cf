// One real call through @google-cloud/kms over gRPC against keyport's Cloud KMS test server as
// the harness started it (an insecure channel on loopback, a static access token).
import { KeyManagementServiceClient } from '@google-cloud/kms';
import { credentials } from '@grpc/grpc-js';
import { OAuth2Client } from 'google-auth-library';
import { describe, expect, it } from 'vitest';
import { requireTarget } from '../harness/env.js';

describe('smoke: keyport Cloud KMS gRPC test server', () => {
  it('creates a key ring and crypto key and encrypts and decrypts with AAD', async () => {
    const env = requireTarget('gcp-kms');
    const port = Number(env.KEYPORT_GCPKMS_GRPC.split(':').pop());
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'keyport-smoke', expiry_date: Date.now() + 3_600_000 });
    const kms = new KeyManagementServiceClient({
      apiEndpoint: '127.0.0.1',
      port,
      sslCreds: credentials.createInsecure(),
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
        plaintext: Buffer.from('gcp smoke'),
        additionalAuthenticatedData: aad,
      });
      expect(encrypted.name).toBe(`${key.name}/cryptoKeyVersions/1`);
      const [decrypted] = await kms.decrypt({
        name: key.name ?? '',
        ciphertext: encrypted.ciphertext ?? Buffer.alloc(0),
        additionalAuthenticatedData: aad,
      });
      expect(Buffer.from(decrypted.plaintext ?? []).toString()).toBe('gcp smoke');
    } finally {
      await kms.close();
    }
  });

  it('answers over REST (HTTP/JSON) at KEYPORT_GCPKMS_REST', async () => {
    const env = requireTarget('gcp-kms');
    const parent = 'projects/keyport-smoke/locations/global';
    const ringId = `rest-${Date.now()}`;
    const res = await fetch(`${env.KEYPORT_GCPKMS_REST}/v1/${parent}/keyRings?keyRingId=${ringId}`, {
      method: 'POST',
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { name: string }).name).toBe(`${parent}/keyRings/${ringId}`);
  });
});
