/**
 * Azure RSA keys have no AAD: keyport binds the context with AES-256-GCM under a fresh content key
 * the vault wraps (RSA-OAEP-256). These tests prove a context mismatch fails exactly as on native
 * providers (InvalidCiphertext), and that the documented format opens with only the SDK and
 * node:crypto.
 */
import { createDecipheriv, randomBytes } from 'node:crypto';
import { CryptographyClient } from '@azure/keyvault-keys';
import { encodeContext, FRAME_MECHANISMS, Keyport, parseBoundBody, readFrame } from '@keyport/core';
import type { AzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzureKeyVaultProvider } from '../src/index.js';
import {
  clientOptions,
  providerFor,
  startServer,
  staticToken,
  TOKENS,
  uniqueName,
} from './support/server.js';

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

const context = { tenant: 'acme', record: 'r-1' };

describe('emulated context on RSA keys (vault)', () => {
  it('round-trips with a context, any pair order, and plaintexts larger than RSA-OAEP allows', async () => {
    const key = await keyport.createKey('azurekeyvault', { name: uniqueName('ctx'), spec: 'RSA_2048' });
    const plaintext = randomBytes(64 * 1024);
    const sealed = await keyport.encrypt(key.uri, plaintext, { context });
    expect(sealed.keyVersion).toBe(key.primaryVersion);
    const opened = await keyport.decrypt(key.uri, sealed.ciphertext, {
      context: { record: 'r-1', tenant: 'acme' },
    });
    expect(Buffer.from(opened.plaintext).equals(plaintext)).toBe(true);
    expect(opened.keyVersion).toBe(key.primaryVersion);
  });

  it('a changed, extra, dropped or missing pair fails with InvalidCiphertext, values never in the error', async () => {
    const key = await keyport.createKey('azurekeyvault', { name: uniqueName('ctx-bad'), spec: 'RSA_2048' });
    const bound = { ...context, marker: 'secret-value-91ac' };
    const { ciphertext } = await keyport.encrypt(key.uri, randomBytes(40), { context: bound });
    for (const wrong of [{ ...bound, tenant: 'globex' }, { ...bound, extra: 'x' }, context, {}]) {
      const error = await keyport.decrypt(key.uri, ciphertext, { context: wrong }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'InvalidCiphertext', retryable: false });
      expect(JSON.stringify(error) + String(error)).not.toMatch(/secret-value-91ac|globex/);
    }
    await expect(keyport.decrypt(key.uri, ciphertext)).rejects.toMatchObject({ code: 'InvalidCiphertext' });
  });

  it('a ciphertext made without a context does not open with one', async () => {
    const key = await keyport.createKey('azurekeyvault', { name: uniqueName('ctx-none'), spec: 'RSA_2048' });
    const { ciphertext } = await keyport.encrypt(key.uri, randomBytes(16));
    await expect(keyport.decrypt(key.uri, ciphertext, { context })).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
  });

  it('data keys are bound to the context the same way', async () => {
    const key = await keyport.createKey('azurekeyvault', { name: uniqueName('dk'), spec: 'RSA_3072' });
    const dk = await keyport.generateDataKey(key.uri, { context, bytes: 32 });
    expect(dk.plaintext.length).toBe(32);
    expect(dk.keyVersion).toBe(key.primaryVersion);
    const opened = await keyport.decrypt(key.uri, dk.wrapped, { context });
    expect(Buffer.from(opened.plaintext).equals(Buffer.from(dk.plaintext))).toBe(true);
    await expect(keyport.decrypt(key.uri, dk.wrapped, { context: { tenant: 'acme' } })).rejects.toMatchObject(
      {
        code: 'InvalidCiphertext',
      },
    );
  });

  it('the documented format opens with the Azure SDK (unwrapKey at the vault) and node:crypto alone', async () => {
    const key = await keyport.createKey('azurekeyvault', { name: uniqueName('fmt'), spec: 'RSA_2048' });
    const plaintext = randomBytes(100);
    const { ciphertext, keyVersion } = await keyport.encrypt(key.uri, plaintext, { context });
    // Core's keyport frame (readFrame), whose body is core's context-bound body (parseBoundBody).
    const frame = readFrame(ciphertext);
    expect(frame).toMatchObject({ mechanism: FRAME_MECHANISMS.WRAPPED_KEY_AES_256_GCM, keyVersion });
    const parsed = parseBoundBody(frame.body);
    const kid = `${server.url}/keys/${key.uri.split('/keys/')[1]}/${frame.keyVersion}`;
    const sdk = new CryptographyClient(kid, staticToken(TOKENS.admin), clientOptions(server.caFile));
    const contentKey = (await sdk.unwrapKey('RSA-OAEP-256', parsed.wrappedKey)).result;
    const decipher = createDecipheriv('aes-256-gcm', contentKey, parsed.iv);
    decipher.setAAD(encodeContext(context));
    decipher.setAuthTag(parsed.tag);
    const opened = Buffer.concat([decipher.update(parsed.ciphertext), decipher.final()]);
    expect(opened.equals(plaintext)).toBe(true);
  });

  it('a ciphertext in the first format ("KV" | mode | version | body) still decrypts through the driver', async () => {
    const key = await keyport.createKey('azurekeyvault', { name: uniqueName('kv1'), spec: 'RSA_2048' });
    const plaintext = randomBytes(48);
    const { ciphertext } = await keyport.encrypt(key.uri, plaintext, { context });
    const frame = readFrame(ciphertext);
    const version = Buffer.from(frame.keyVersion, 'latin1');
    const first = Buffer.concat([Buffer.from([0x4b, 0x56, 0x01, version.length]), version, frame.body]);
    const opened = await keyport.decrypt(key.uri, first, { context });
    expect(Buffer.from(opened.plaintext).equals(plaintext)).toBe(true);
    await expect(keyport.decrypt(key.uri, first, { context: {} })).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
    // A version that is not a Key Vault version id never reaches a request path.
    const hostile = Buffer.concat([Buffer.from([0x4b, 0x56, 0x01, 2]), Buffer.from('..'), frame.body]);
    await expect(keyport.decrypt(key.uri, hostile, { context })).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
  });

  it('a ciphertext pinned to another version of the same key is refused (InvalidCiphertext)', async () => {
    const key = await keyport.createKey('azurekeyvault', { name: uniqueName('pin'), spec: 'RSA_2048' });
    const { ciphertext } = await keyport.encrypt(key.uri, randomBytes(16));
    const rotated = await keyport.rotateKey(key.uri);
    const pinned = { uri: key.uri, version: rotated.primaryVersion ?? '' };
    await expect(keyport.decrypt(pinned, ciphertext)).rejects.toMatchObject({ code: 'InvalidCiphertext' });
    await expect(keyport.decrypt(key.uri, ciphertext)).resolves.toMatchObject({
      keyVersion: key.primaryVersion,
    });
  });
});

describe('native context on oct-HSM keys (Managed HSM)', () => {
  it('AES-GCM at the HSM: the context is the AAD, a mismatch is refused by the HSM', async () => {
    const hsm = await startServer('hsm');
    const hsmKeyport = new Keyport({ providers: [providerFor(hsm)], retry: { maxAttempts: 1 } });
    try {
      const key = await hsmKeyport.createKey('azurekeyvault', { name: uniqueName('aes'), spec: 'AES_256' });
      const secret = randomBytes(24);
      const { ciphertext } = await hsmKeyport.encrypt(key.uri, secret, { context });
      expect(readFrame(ciphertext).mechanism).toBe(FRAME_MECHANISMS.AES_256_GCM);
      const opened = await hsmKeyport.decrypt(key.uri, ciphertext, { context });
      expect(Buffer.from(opened.plaintext).equals(secret)).toBe(true);
      // Its own memory, not a view of the Buffer pool the SDK decoded it into.
      expect(opened.plaintext.buffer.byteLength).toBe(24);
      await expect(
        hsmKeyport.decrypt(key.uri, ciphertext, { context: { tenant: 'acme' } }),
      ).rejects.toMatchObject({
        code: 'InvalidCiphertext',
      });
      // RSA-HSM keys on the same HSM bind the context the emulated way.
      const rsa = await hsmKeyport.createKey('azurekeyvault', {
        name: uniqueName('rsa-hsm'),
        spec: 'RSA_2048',
      });
      const sealed = await hsmKeyport.encrypt(rsa.uri, randomBytes(24), { context });
      expect(readFrame(sealed.ciphertext).mechanism).toBe(FRAME_MECHANISMS.WRAPPED_KEY_AES_256_GCM);
      await expect(hsmKeyport.decrypt(rsa.uri, sealed.ciphertext, { context: {} })).rejects.toMatchObject({
        code: 'InvalidCiphertext',
      });
    } finally {
      await hsmKeyport.close();
      await hsm.stop();
    }
  });
});
