/**
 * What Cloud KMS adds beyond the portable suite, over gRPC against keyport's test server: key
 * rings on demand, protection level, versions as first-class (pinned enable/disable, destroy
 * window, restore, automatic rotation on the server clock), IAM bindings behind grants, opt-in
 * emulated data keys, import jobs with 4096-bit keys.
 */
import { randomBytes } from 'node:crypto';
import { wrapForImport } from '@keyport/conformance';
import { Keyport, MemoryAuditSink } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { gcpKmsCapabilities, restoreKeyVersion } from '../src/index.js';
import { keyportOf, kmsSuite } from './support/suite.js';
import { grpcProvider, signal } from './support/targets.js';

const RING = 'projects/keyport-features/locations/us-east1/keyRings/features';
const suite = kmsSuite(RING);
const { name, policyOf } = suite;

describe('keys and key rings', () => {
  it('creates the key ring on demand when a key names a new ring', async () => {
    const uri = 'gcp-kms://projects/keyport-features/locations/global/keyRings/fresh-ring/cryptoKeys/first';
    const key = await suite.kp.createKey('gcp-kms', { name: uri, spec: 'AES_256', labels: { team: 'a' } });
    expect(key).toMatchObject({ uri, state: 'enabled', primaryVersion: '1', labels: { team: 'a' } });
    const [ring] = await (await suite.provider.client()).getKeyRing({
      name: 'projects/keyport-features/locations/global/keyRings/fresh-ring',
    });
    expect(ring.name).toContain('fresh-ring');
    const second = await suite.kp.createKey('gcp-kms', {
      name: uri.replace('first', 'second'),
      spec: 'AES_256',
    });
    expect(second.state).toBe('enabled');
  });

  it('creates keys at the configured protection level', async () => {
    const hsm = suite.providerOn(grpcProvider, { protectionLevel: 'HSM' });
    const key = await hsm.createKey({ name: name('hsm'), spec: 'EC_P256' }, signal());
    const [raw] = await (await hsm.client()).getCryptoKey({ name: key.uri.slice('gcp-kms://'.length) });
    expect(raw.versionTemplate?.protectionLevel).toBe('HSM');
    await hsm.close();
  });

  it('refuses deletion honestly and a listing without a key ring', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('nodelete'), spec: 'AES_256' });
    await expect(suite.kp.scheduleKeyDeletion(key.uri, { days: 7 })).rejects.toMatchObject({
      code: 'Unsupported',
      capability: 'scheduledDeletion',
    });
    const bare = grpcProvider(suite.server);
    const listing = (async () => {
      for await (const _ of bare.listKeys({ signal: new AbortController().signal })) break;
    })();
    await expect(listing).rejects.toMatchObject({ code: 'InvalidArgument' });
    await bare.close();
  });
});

describe('keys keyport has no spec for', () => {
  it('are listed as unmodeled, and the listing goes on (it ended with Unsupported)', async () => {
    const ring = 'projects/keyport-features/locations/us-east1/keyRings/unmodeled';
    const own = grpcProvider(suite.server, { keyRing: ring });
    try {
      const aes = await own.createKey({ name: 'aes', spec: 'AES_256' }, signal());
      const client = await own.client();
      await client
        .createKeyRing({ parent: 'projects/keyport-features/locations/us-east1', keyRingId: 'unmodeled' })
        .catch(() => undefined);
      await client.createCryptoKey({
        parent: ring,
        cryptoKeyId: 'k1',
        cryptoKey: { purpose: 'MAC', versionTemplate: { algorithm: 'HMAC_SHA512' } },
      });
      const listed = [];
      for await (const entry of own.listKeys(signal())) listed.push(entry);
      expect(listed).toEqual([
        expect.objectContaining({ uri: aes.uri, spec: 'AES_256' }),
        {
          uri: `gcp-kms://${ring}/cryptoKeys/k1`,
          unmodeled: expect.stringMatching(/HMAC_SHA512/),
        },
      ]);
    } finally {
      await own.close();
    }
  });
});

describe('versions', () => {
  it('enable/disable act on a pinned version; the primary keeps working', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('pinned'), spec: 'AES_256' });
    const old = await suite.kp.encrypt(key.uri, randomBytes(16));
    await suite.kp.rotateKey(key.uri);
    const after = await suite.kp.disableKey({ uri: key.uri, version: '1' });
    expect(after.state).toBe('enabled'); // the key's state is its primary's (version 2)
    expect(after.versions?.find((v) => v.version === '1')?.state).toBe('disabled');
    await expect(suite.kp.decrypt(key.uri, old.ciphertext)).rejects.toMatchObject({
      code: 'KeyStateConflict',
    });
    expect((await suite.kp.encrypt(key.uri, randomBytes(16))).keyVersion).toBe('2');
    await suite.kp.enableKey({ uri: key.uri, version: '1' });
    expect((await suite.kp.decrypt(key.uri, old.ciphertext)).keyVersion).toBe('1');
  });

  it('destroy schedules destruction after the key’s window; restore brings the version back disabled', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('destroy'), spec: 'AES_256' });
    const old = await suite.kp.encrypt(key.uri, randomBytes(16));
    await suite.kp.rotateKey(key.uri);
    const destroyed = await suite.kp.destroyKeyVersion({ uri: key.uri, version: '1' });
    const v1 = destroyed.versions?.find((v) => v.version === '1');
    expect(v1?.state).toBe('destroy_scheduled');
    const window = (v1?.destroyAt?.getTime() ?? 0) - suite.server.clock.now().getTime();
    expect(window).toBeGreaterThan(29 * 86_400_000); // Cloud KMS's default: 30 days
    const restored = await suite.provider.restoreKeyVersion({ uri: key.uri, version: '1' }, signal());
    expect(restored.versions?.find((v) => v.version === '1')?.state).toBe('disabled');
    await suite.kp.enableKey({ uri: key.uri, version: '1' });
    await expect(suite.kp.decrypt(key.uri, old.ciphertext)).resolves.toMatchObject({ keyVersion: '1' });
  });

  it('restoreKeyVersion through a Keyport runs on core’s call path (audited, unversioned URI refused)', async () => {
    const audit = new MemoryAuditSink();
    const audited = new Keyport({ providers: [suite.provider], retry: { maxAttempts: 1 }, audit: [audit] });
    const key = await audited.createKey('gcp-kms', { name: name('restore-op'), spec: 'AES_256' });
    await audited.rotateKey(key.uri);
    await audited.destroyKeyVersion({ uri: key.uri, version: '1' });
    const restored = await restoreKeyVersion(audited, { uri: key.uri, version: '1' });
    expect(restored.versions?.find((v) => v.version === '1')?.state).toBe('disabled');
    expect(audit.events.map((e) => e.op)).toContain('gcp-kms:restoreKeyVersion');
    await expect(restoreKeyVersion(audited, key.uri)).rejects.toMatchObject({ code: 'InvalidArgument' });
  });

  it('automatic rotation: period and next rotation time are kept, and the service rotates on time', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('auto'), spec: 'AES_256' });
    const nextRotationAt = new Date(suite.server.clock.now().getTime() + 2 * 86_400_000);
    const set = await suite.kp.setRotationPolicy(key.uri, { periodDays: 30, nextRotationAt });
    expect(set.rotation).toEqual({ periodDays: 30, nextRotationAt });
    suite.server.clock.advance(3 * 86_400_000);
    const rotated = await suite.kp.describeKey(key.uri);
    expect(rotated.primaryVersion).toBe('2');
    expect(rotated.rotation?.nextRotationAt?.getTime()).toBe(nextRotationAt.getTime() + 30 * 86_400_000);
  });

  it('keys without a primary (signing) use their newest version; older versions stay verifiable', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('ec'), spec: 'EC_P256' });
    const message = randomBytes(40);
    const first = await suite.kp.sign(key.uri, message, { algorithm: 'ECDSA_SHA_256' });
    expect(first.keyVersion).toBe('1');
    expect((await suite.kp.rotateKey(key.uri)).primaryVersion).toBe('2');
    expect((await suite.kp.sign(key.uri, message, { algorithm: 'ECDSA_SHA_256' })).keyVersion).toBe('2');
    const pinned = { uri: key.uri, version: '1' };
    expect(await suite.kp.verify(pinned, message, first.signature, { algorithm: 'ECDSA_SHA_256' })).toBe(
      true,
    );
  });

  it('RSA_3072 decryption and RSA_4096 signing keys work (the suite exercises RSA_2048 only, for time)', async () => {
    const enc = await suite.kp.createKey('gcp-kms', {
      name: name('rsa3072'),
      spec: 'RSA_3072',
      usage: 'encrypt_decrypt',
    });
    const plaintext = randomBytes(64);
    const sealed = await suite.kp.encrypt(enc.uri, plaintext);
    const opened = await suite.kp.decrypt(enc.uri, sealed.ciphertext);
    expect(Buffer.from(opened.plaintext).equals(plaintext)).toBe(true);
    expect(opened.keyVersion).toBe(sealed.keyVersion);
    const signer = await suite.kp.createKey('gcp-kms', {
      name: name('rsa4096'),
      spec: 'RSA_4096',
      usage: 'sign_verify',
    });
    const signed = await suite.kp.sign(signer.uri, plaintext, { algorithm: 'RSASSA_PSS_SHA_256' });
    expect(
      await suite.kp.verify(signer.uri, plaintext, signed.signature, { algorithm: 'RSASSA_PSS_SHA_256' }),
    ).toBe(true);
    expect(
      await suite.kp.verify(signer.uri, randomBytes(64), signed.signature, {
        algorithm: 'RSASSA_PSS_SHA_256',
      }),
    ).toBe(false);
  });

  it('RSA encryption keys refuse a context rather than drop it', async () => {
    const key = await suite.kp.createKey('gcp-kms', {
      name: name('rsa'),
      spec: 'RSA_2048',
      usage: 'encrypt_decrypt',
    });
    await expect(suite.kp.encrypt(key.uri, randomBytes(16), { context: { a: 'b' } })).rejects.toMatchObject({
      code: 'Unsupported',
      capability: 'context',
    });
  });
});

describe('grants are IAM bindings', () => {
  it('one binding per role with a condition scoped to the key and expiring by request.time', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('iam'), spec: 'AES_256' });
    const expiresAt = new Date(suite.server.clock.now().getTime() + 3_600_000);
    const grant = await suite.kp.createGrant(key.uri, {
      grantee: 'serviceAccount:app@p.iam.gserviceaccount.com',
      operations: ['encrypt', 'decrypt'],
      expiresAt,
      name: 'app',
    });
    const resource = key.uri.slice('gcp-kms://'.length);
    const policy = await policyOf(key.uri);
    const bindings = (policy.bindings ?? []).filter((b) => b.condition?.title === grant.id);
    expect(bindings.map((b) => b.role).sort()).toEqual([
      'roles/cloudkms.cryptoKeyDecrypter',
      'roles/cloudkms.cryptoKeyEncrypter',
    ]);
    expect(bindings[0]?.condition?.expression).toBe(
      `resource.name.startsWith("${resource}") && request.time < timestamp("${expiresAt.toISOString()}")`,
    );
    const listed = await suite.listed(key.uri);
    expect(listed).toEqual([
      expect.objectContaining({ id: grant.id, name: 'app', operations: ['encrypt', 'decrypt'], expiresAt }),
    ]);
    await suite.kp.revokeGrant(key.uri, grant.id);
    const after = await policyOf(key.uri);
    expect((after.bindings ?? []).filter((b) => b.condition?.title === grant.id)).toEqual([]);
  });

  it('refuses context constraints (IAM cannot see AAD) and grantees that are not IAM members', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('iam-bad'), spec: 'AES_256' });
    const constraints = { contextEquals: { tenant: 'acme' } };
    await expect(
      suite.kp.createGrant(key.uri, { grantee: 'user:a@example.com', operations: ['decrypt'], constraints }),
    ).rejects.toMatchObject({ code: 'Unsupported', capability: 'grantConstraints' });
    await expect(
      suite.kp.createGrant(key.uri, { grantee: 'alice', operations: ['decrypt'] }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
  });
});

describe('data keys (opt-in emulation)', () => {
  it('are Unsupported by default and drawn locally then wrapped with Encrypt when emulated', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('dk'), spec: 'AES_256' });
    await expect(suite.kp.generateDataKey(key.uri)).rejects.toMatchObject({
      code: 'Unsupported',
      capability: 'dataKeys',
    });
    const emulating = suite.providerOn(grpcProvider, { dataKeys: 'emulated' });
    expect(emulating.capabilities).toEqual(gcpKmsCapabilities({ dataKeys: 'emulated' }));
    const ek = keyportOf(emulating);
    const context = { purpose: 'dk' };
    const dk = await ek.generateDataKey(key.uri, { context, bytes: 24 });
    expect(dk.plaintext.length).toBe(24);
    const opened = await ek.decrypt(key.uri, dk.wrapped, { context });
    expect(Buffer.from(opened.plaintext).equals(Buffer.from(dk.plaintext))).toBe(true);
    await expect(ek.decrypt(key.uri, dk.wrapped, { context: { purpose: 'other' } })).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
    await ek.close();
  });
});

describe('import jobs', () => {
  it('imports through an RSA_OAEP_4096_SHA256_AES_256 job and the key works', async () => {
    const importer = suite.providerOn(grpcProvider, { importJobKeyBits: 4096 });
    const ik = keyportOf(importer);
    const key = await ik.createKey('gcp-kms', { name: name('byok'), spec: 'AES_256', external: true });
    const params = await ik.getImportParameters(key.uri, { algorithm: 'RSA_AES_KEY_WRAP_SHA_256' });
    const token = new TextDecoder().decode(params.importToken);
    const [job] = await (await importer.client()).getImportJob({ name: token });
    expect(job.importMethod).toBe('RSA_OAEP_4096_SHA256_AES_256');
    const wrapped = wrapForImport('RSA_AES_KEY_WRAP_SHA_256', params.wrappingPublicKey, randomBytes(32));
    const imported = await ik.importKeyMaterial(key.uri, {
      algorithm: 'RSA_AES_KEY_WRAP_SHA_256',
      wrappedMaterial: wrapped,
      ...(params.importToken !== undefined ? { importToken: params.importToken } : {}),
    });
    expect(imported).toMatchObject({ state: 'enabled', origin: 'external', primaryVersion: '1' });
    const sealed = await ik.encrypt(key.uri, randomBytes(8), { context: { a: 'b' } });
    await expect(ik.decrypt(key.uri, sealed.ciphertext, { context: { a: 'b' } })).resolves.toMatchObject({
      keyVersion: '1',
    });
    await ik.close();
  });
});
