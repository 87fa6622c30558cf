/**
 * Key Vault lifecycle beyond the shared suite: RSA 3072/4096, every version disabled together,
 * soft delete -> purge, backup/restore, JWK import, auto-rotation on the server clock, grants.
 */
import {
  constants,
  createPublicKey,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  verify,
} from 'node:crypto';
import { Keyport } from '@keyport/core';
import type { AzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzureKeyVaultProvider } from '../src/index.js';
import { call, providerFor, sdkClient, startServer, uniqueName } from './support/server.js';

let server: AzureKeyVaultServer;
let provider: AzureKeyVaultProvider;
let keyport: Keyport;
beforeAll(async () => {
  server = await startServer('vault');
  provider = providerFor(server);
  keyport = new Keyport({ providers: [provider], retry: { maxAttempts: 1 } });
});
afterAll(async () => {
  await keyport.close();
  await server.stop();
});

describe('keys', () => {
  it.each(['RSA_3072', 'RSA_4096'] as const)(
    'creates %s keys of that size, for signing too',
    async (spec) => {
      const key = await keyport.createKey('azurekeyvault', {
        name: uniqueName(spec),
        spec,
        usage: 'sign_verify',
      });
      expect(key).toMatchObject({ spec, usage: 'sign_verify', state: 'enabled' });
      const message = randomBytes(64);
      const signed = await keyport.sign(key.uri, message);
      expect(signed.algorithm).toBe('RSASSA_PSS_SHA_256');
      const spki = await keyport.getPublicKey(key.uri);
      const pub = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
      expect(pub.asymmetricKeyDetails?.modulusLength).toBe(Number(spec.slice(4)));
      const options = { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
      expect(verify('sha256', message, options, signed.signature)).toBe(true);
    },
  );

  it('refuses AES keys on a vault (UnsupportedError) and key specs keyport lacks are described as such', async () => {
    await expect(
      keyport.createKey('azurekeyvault', { name: uniqueName('aes'), spec: 'AES_256' }),
    ).rejects.toMatchObject({ code: 'Unsupported' });
    const name = uniqueName('p521');
    await sdkClient(server).createEcKey(name, { curve: 'P-521' });
    const uri = `azurekeyvault://${new URL(server.url).host}/keys/${name}`;
    await expect(keyport.describeKey(uri)).rejects.toMatchObject({ code: 'Unsupported' });
    // Listed as unmodeled, never left out: an inventory must know what it cannot judge.
    const listed = [];
    for await (const entry of provider.listKeys(call())) if (entry.uri === uri) listed.push(entry);
    expect(listed).toEqual([{ uri, unmodeled: expect.stringMatching(/no key spec/) }]);
    const heard: string[] = [];
    for await (const _ of keyport.listKeys('azurekeyvault', { onUnmodeledKey: (k) => heard.push(k.uri) }));
    expect(heard).toEqual([uri]);
  });

  it('labels are tags, the description is kept, and the versions are listed', async () => {
    const key = await keyport.createKey('azurekeyvault', {
      name: uniqueName('labels'),
      spec: 'EC_P256',
      labels: { team: 'payments' },
      description: 'card tokens',
    });
    await keyport.rotateKey(key.uri);
    const described = await keyport.describeKey(key.uri);
    expect(described.labels).toEqual({ team: 'payments' });
    expect(described.description).toBe('card tokens');
    expect(described.versions).toHaveLength(2);
    expect(described.versions?.at(-1)?.version).toBe(described.primaryVersion);
  });
});

describe('lifecycle', () => {
  it('disable covers every version; enable restores them all', async () => {
    const key = await keyport.createKey('azurekeyvault', { name: uniqueName('dis'), spec: 'RSA_2048' });
    const old = await keyport.encrypt(key.uri, randomBytes(8));
    await keyport.rotateKey(key.uri);
    const disabled = await keyport.disableKey(key.uri);
    expect(disabled.versions?.map((v) => v.state)).toEqual(['disabled', 'disabled']);
    await expect(keyport.decrypt(key.uri, old.ciphertext)).rejects.toMatchObject({
      code: 'KeyStateConflict',
    });
    const enabled = await keyport.enableKey(key.uri);
    expect(enabled.versions?.every((v) => v.state === 'enabled')).toBe(true);
    await expect(keyport.decrypt(key.uri, old.ciphertext)).resolves.toMatchObject({
      keyVersion: old.keyVersion,
    });
  });

  it('soft delete -> purge frees the name; days outside 7..90 are refused', async () => {
    const name = uniqueName('purge');
    const key = await keyport.createKey('azurekeyvault', { name, spec: 'EC_P384' });
    await expect(keyport.scheduleKeyDeletion(key.uri, { days: 3 })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    const deleted = await keyport.scheduleKeyDeletion(key.uri, { days: 7 });
    expect(deleted.state).toBe('pending_deletion');
    // The test server's retention is 7 days: the deletion date is the vault's purge date.
    expect((deleted.deletionDate?.getTime() ?? 0) - Date.now()).toBeGreaterThan(6 * 86_400_000);
    await expect(keyport.describeKey(key.uri)).resolves.toMatchObject({ state: 'pending_deletion' });
    // Listed too (Key Vault keeps it under /deletedkeys), once, pending deletion, with its date.
    const listed = async () => {
      const out = [];
      for await (const k of keyport.listKeys('azurekeyvault')) if (k.uri === key.uri) out.push(k);
      return out;
    };
    const pending = await listed();
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ state: 'pending_deletion', spec: 'EC_P384' });
    expect(pending[0]?.deletionDate?.getTime()).toBe(deleted.deletionDate?.getTime());
    await provider.purgeDeletedKey({ uri: key.uri });
    await expect(keyport.describeKey(key.uri)).rejects.toMatchObject({ code: 'NotFound' });
    expect(await listed()).toHaveLength(0);
    await expect(keyport.createKey('azurekeyvault', { name, spec: 'EC_P384' })).resolves.toBeDefined();
  });

  it('backup, delete, purge and restore bring back every version, and old ciphertexts open', async () => {
    const key = await keyport.createKey('azurekeyvault', { name: uniqueName('backup'), spec: 'RSA_2048' });
    const sealed = await keyport.encrypt(key.uri, randomBytes(32), { context: { a: 'b' } });
    await keyport.rotateKey(key.uri);
    const blob = await provider.backupKey({ uri: key.uri });
    await keyport.scheduleKeyDeletion(key.uri);
    await provider.purgeDeletedKey({ uri: key.uri });
    const restored = await provider.restoreKey(blob);
    expect(restored.uri).toBe(key.uri);
    expect(restored.versions).toHaveLength(2);
    await expect(keyport.decrypt(key.uri, sealed.ciphertext, { context: { a: 'b' } })).resolves.toBeDefined();
    await expect(provider.restoreKey(blob)).rejects.toMatchObject({ code: 'AlreadyExists' });
  });

  it('the rotation policy rotates on the server clock', async () => {
    const key = await keyport.createKey('azurekeyvault', {
      name: uniqueName('auto'),
      spec: 'RSA_2048',
      rotation: { periodDays: 30 },
    });
    expect(key.rotation?.periodDays).toBe(30);
    server.clock.advance(31 * 86_400);
    const described = await keyport.describeKey(key.uri);
    expect(described.versions?.length).toBe(2);
    expect(described.primaryVersion).not.toBe(key.primaryVersion);
  });
});

describe('JWK import (importJwk)', () => {
  it('imports an RSA private key: ciphertexts made with its public key open through the vault', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const name = uniqueName('import');
    const jwk = privateKey.export({ format: 'jwk' }) as { kty: string };
    const key = await provider.importJwk(name, jwk, { labels: { source: 'on-prem' } }, call());
    expect(key).toMatchObject({ spec: 'RSA_2048', usage: 'encrypt_decrypt', labels: { source: 'on-prem' } });
    const spki = await keyport.getPublicKey(key.uri);
    expect(Buffer.from(spki).equals(publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    // The vault unwraps what the known public key wrapped: the imported material is in use.
    const contentKey = randomBytes(32);
    const wrapped = publicEncrypt({ key: publicKey, oaepHash: 'sha256' }, contentKey);
    const unwrapped = await sdkClient(server).getCryptographyClient(name).unwrapKey('RSA-OAEP-256', wrapped);
    expect(Buffer.from(unwrapped.result).equals(contentKey)).toBe(true);
    await expect(provider.importJwk(name, jwk, {}, call())).rejects.toMatchObject({ code: 'AlreadyExists' });
  });
});

describe('grants', () => {
  it('the driver has no grant methods: every grant call through Keyport is Unsupported (grants)', async () => {
    const ref = { uri: `azurekeyvault://${new URL(server.url).host}/keys/any` };
    for (const method of ['createGrant', 'listGrants', 'revokeGrant']) expect(method in provider).toBe(false);
    await expect(
      keyport.createGrant(ref.uri, { grantee: 'x', operations: ['encrypt'] }),
    ).rejects.toMatchObject({
      code: 'Unsupported',
      capability: 'grants',
    });
    await expect(keyport.revokeGrant(ref.uri, 'g')).rejects.toMatchObject({ capability: 'grants' });
    const listing = async () => {
      for await (const _ of keyport.listGrants(ref.uri)) return;
    };
    await expect(listing()).rejects.toMatchObject({ code: 'Unsupported' });
  });
});
