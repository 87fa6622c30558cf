import { KeyManagementServiceClient } from '@google-cloud/kms';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CloudKmsServer, startCloudKmsServer } from '../src/gcp/index.js';

// Enum values over REST (HTTP/JSON). Google's transcoder refuses a value an enum does not have
// before the method runs — 400 INVALID_ARGUMENT "Invalid value at '<field path from the request
// root>' (type.googleapis.com/<enum>), <value>" with a google.rpc.BadRequest naming the field —
// instead of reading it as the default value; names and numbers the enum has are taken.
const LOC = 'projects/keyport-rest-enums/locations/global';
const RING = `${LOC}/keyRings/enums`;
const KMS = 'type.googleapis.com/google.cloud.kms.v1';

let server: CloudKmsServer;
beforeAll(async () => {
  server = await startCloudKmsServer();
  const made = await post(`/v1/${LOC}/keyRings?keyRingId=enums`, {});
  expect(made.status).toBe(200);
  const ec = await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=ec`, {
    purpose: 'ASYMMETRIC_SIGN',
    versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' },
  });
  expect(ec.status).toBe(200);
});
afterAll(async () => {
  await server?.stop();
});

const rest = (path: string, init: RequestInit = {}) => fetch(`${server.restUrl}${path}`, init);
const post = (path: string, body: unknown) =>
  rest(path, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });

/** The service's answer to `value` in the enum field at `field`. */
function invalidValue(field: string, type: string, value: string) {
  const message = `Invalid value at '${field}' (${type}), ${value}`;
  return {
    error: {
      code: 400,
      message,
      status: 'INVALID_ARGUMENT',
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.BadRequest',
          fieldViolations: [{ field, description: message }],
        },
      ],
    },
  };
}

async function expectInvalid(res: Response, field: string, type: string, value: string): Promise<void> {
  expect(res.status).toBe(400);
  expect(await res.json()).toEqual(invalidValue(field, type, value));
}

const ALGORITHM = `${KMS}.CryptoKeyVersion.CryptoKeyVersionAlgorithm`;
const PURPOSE = `${KMS}.CryptoKey.CryptoKeyPurpose`;
const PROTECTION = `${KMS}.ProtectionLevel`;
const VIEW = `${KMS}.CryptoKeyVersion.CryptoKeyVersionView`;

describe('unknown enum values over REST are refused before the method runs', () => {
  it('a top-level enum of the body field (purpose) — not "purpose must be specified"', async () => {
    await expectInvalid(
      await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=p`, { purpose: 'foo' }),
      'crypto_key.purpose',
      PURPOSE,
      '"foo"',
    );
    // a name with a space after it is not the name
    await expectInvalid(
      await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=p`, { purpose: 'ENCRYPT_DECRYPT ' }),
      'crypto_key.purpose',
      PURPOSE,
      '"ENCRYPT_DECRYPT "',
    );
    expect((await rest(`/v1/${RING}/cryptoKeys/p`)).status).toBe(404);
  });

  it('a nested enum (versionTemplate.algorithm, versionTemplate.protectionLevel) creates no key', async () => {
    await expectInvalid(
      await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=k`, {
        purpose: 'ENCRYPT_DECRYPT',
        versionTemplate: { algorithm: 'foo' },
      }),
      'crypto_key.version_template.algorithm',
      ALGORITHM,
      '"foo"',
    );
    await expectInvalid(
      await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=k`, {
        purpose: 'ENCRYPT_DECRYPT',
        version_template: { protection_level: 'foo' },
      }),
      'crypto_key.version_template.protection_level',
      PROTECTION,
      '"foo"',
    );
    expect((await rest(`/v1/${RING}/cryptoKeys/k`)).status).toBe(404);
  });

  it('import jobs: importMethod and protectionLevel — not "import_method is required"', async () => {
    await expectInvalid(
      await post(`/v1/${RING}/importJobs?importJobId=j`, {
        importMethod: 'foo',
        protectionLevel: 'SOFTWARE',
      }),
      'import_job.import_method',
      `${KMS}.ImportJob.ImportMethod`,
      '"foo"',
    );
    await expectInvalid(
      await post(`/v1/${RING}/importJobs?importJobId=j`, {
        importMethod: 'RSA_OAEP_3072_SHA1_AES_256',
        protectionLevel: 'foo',
      }),
      'import_job.protection_level',
      PROTECTION,
      '"foo"',
    );
    expect((await rest(`/v1/${RING}/importJobs/j`)).status).toBe(404);
  });

  it('query parameters: versionView on ListCryptoKeys, view on ListCryptoKeyVersions, publicKeyFormat on GetPublicKey', async () => {
    await expectInvalid(await rest(`/v1/${RING}/cryptoKeys?versionView=foo`), 'version_view', VIEW, '"foo"');
    await expectInvalid(await rest(`/v1/${RING}/cryptoKeys?version_view=foo`), 'version_view', VIEW, '"foo"');
    await expectInvalid(
      await rest(`/v1/${RING}/cryptoKeys/ec/cryptoKeyVersions?view=foo`),
      'view',
      VIEW,
      '"foo"',
    );
    await expectInvalid(
      await rest(`/v1/${RING}/cryptoKeys/ec/cryptoKeyVersions/1/publicKey?publicKeyFormat=foo`),
      'public_key_format',
      `${KMS}.PublicKey.PublicKeyFormat`,
      '"foo"',
    );
  });

  it('names of Object.prototype members are unknown values, in a body and in a query', async () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      await expectInvalid(
        await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=proto`, {
          purpose: 'ENCRYPT_DECRYPT',
          versionTemplate: { algorithm: name },
        }),
        'crypto_key.version_template.algorithm',
        ALGORITHM,
        JSON.stringify(name),
      );
      await expectInvalid(
        await rest(`/v1/${RING}/cryptoKeys?versionView=${name}`),
        'version_view',
        VIEW,
        JSON.stringify(name),
      );
    }
    await expectInvalid(
      await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=proto`, { purpose: 'constructor' }),
      'crypto_key.purpose',
      PURPOSE,
      '"constructor"',
    );
    expect((await rest(`/v1/${RING}/cryptoKeys/proto`)).status).toBe(404);
  });

  it('repeated enums and enums in repeated messages name the element', async () => {
    await expectInvalid(
      await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=kaj`, {
        purpose: 'ENCRYPT_DECRYPT',
        keyAccessJustificationsPolicy: { allowedAccessReasons: ['CUSTOMER_INITIATED_SUPPORT', 'foo'] },
      }),
      'crypto_key.key_access_justifications_policy.allowed_access_reasons[1]',
      `${KMS}.AccessReason`,
      '"foo"',
    );
    await expectInvalid(
      await post(`/v1/${RING}/cryptoKeys/ec:setIamPolicy`, {
        policy: {
          auditConfigs: [
            { service: 'allServices', auditLogConfigs: [{ logType: 'ADMIN_READ' }, { logType: 'foo' }] },
          ],
        },
      }),
      'policy.audit_configs[0].audit_log_configs[1].log_type',
      'type.googleapis.com/google.iam.v1.AuditLogConfig.LogType',
      '"foo"',
    );
  });

  it('a valid name is taken; the same field with an unknown name is not', async () => {
    const ok = await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=named`, {
      purpose: 'ENCRYPT_DECRYPT',
      versionTemplate: { algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION', protectionLevel: 'SOFTWARE' },
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({
      purpose: 'ENCRYPT_DECRYPT',
      versionTemplate: { algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION', protectionLevel: 'SOFTWARE' },
    });
    const listed = await rest(`/v1/${RING}/cryptoKeys?versionView=FULL`);
    expect(listed.status).toBe(200);
    const pem = await rest(`/v1/${RING}/cryptoKeys/ec/cryptoKeyVersions/1/publicKey?publicKeyFormat=PEM`);
    expect(pem.status).toBe(200);
    expect(await pem.json()).toMatchObject({ publicKeyFormat: 'PEM', algorithm: 'EC_SIGN_P256_SHA256' });
    await expectInvalid(
      await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=named2`, {
        purpose: 'ENCRYPT_DECRYPT',
        versionTemplate: { algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTIONS' },
      }),
      'crypto_key.version_template.algorithm',
      ALGORITHM,
      '"GOOGLE_SYMMETRIC_ENCRYPTIONS"',
    );
  });

  it('a valid number is taken (as the official client sends them); an unknown or fractional number is not', async () => {
    const ok = await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=numbered`, {
      purpose: 1,
      versionTemplate: { algorithm: 1, protectionLevel: 1 },
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({
      purpose: 'ENCRYPT_DECRYPT',
      versionTemplate: { algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION', protectionLevel: 'SOFTWARE' },
    });
    expect((await rest(`/v1/${RING}/cryptoKeys?versionView=1`)).status).toBe(200);
    await expectInvalid(
      await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=n2`, {
        purpose: 1,
        versionTemplate: { algorithm: 999 },
      }),
      'crypto_key.version_template.algorithm',
      ALGORITHM,
      '999',
    );
    await expectInvalid(
      await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=n2`, { purpose: 1.5 }),
      'crypto_key.purpose',
      PURPOSE,
      '1.5',
    );
    await expectInvalid(await rest(`/v1/${RING}/cryptoKeys?versionView=7`), 'version_view', VIEW, '"7"');
    expect((await rest(`/v1/${RING}/cryptoKeys/n2`)).status).toBe(404);

    // The official Node client over REST sends enums as numbers, in bodies and query parameters.
    const url = new URL(server.restUrl!);
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'keyport-test-token', expiry_date: Date.now() + 3_600_000 });
    const kms = new KeyManagementServiceClient({
      fallback: true,
      protocol: 'http',
      apiEndpoint: url.hostname,
      port: Number(url.port),
      authClient,
    });
    try {
      const [key] = await kms.createCryptoKey({
        parent: RING,
        cryptoKeyId: 'client',
        cryptoKey: {
          purpose: 'ASYMMETRIC_SIGN',
          versionTemplate: { algorithm: 'EC_SIGN_P384_SHA384', protectionLevel: 'SOFTWARE' },
        },
      });
      expect(key.versionTemplate).toMatchObject({
        algorithm: 'EC_SIGN_P384_SHA384',
        protectionLevel: 'SOFTWARE',
      });
      const [keys] = await kms.listCryptoKeys({ parent: RING, versionView: 'FULL' });
      expect(keys.map((k) => k.name)).toContain(key.name);
      const [versions] = await kms.listCryptoKeyVersions({ parent: key.name!, view: 'FULL' });
      expect(versions).toHaveLength(1);
      const [pk] = await kms.getPublicKey({ name: versions[0]!.name!, publicKeyFormat: 'PEM' });
      expect(pk.publicKeyFormat).toBe('PEM');
      const [job] = await kms.createImportJob({
        parent: RING,
        importJobId: 'client',
        importJob: { importMethod: 'RSA_OAEP_3072_SHA256', protectionLevel: 'SOFTWARE' },
      });
      expect(job.importMethod).toBe('RSA_OAEP_3072_SHA256');
    } finally {
      await kms.close();
    }
  });

  it('a boolean is not an enum value', async () => {
    await expectInvalid(
      await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=b`, { purpose: true }),
      'crypto_key.purpose',
      PURPOSE,
      'true',
    );
  });
});
