/**
 * An import into a pending (announced) key whose answer is lost after OpenBao made the key from
 * the material: a proxy in front of the real OpenBao drops the connection once OpenBao has
 * answered `/import`. The pending record is this process's memory only; the provider must ask the
 * server rather than keep answering `pending_import`, refusing the key's use, or answering a retry
 * with a bare "HTTP 500 exists" (what made @keyport/byok drop its record of the import).
 */
import { createDecipheriv, randomBytes } from 'node:crypto';
import { Keyport } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type VaultTransitProvider, wrapForImport } from '../src/index.js';
import { bytes, keyName, openbao, provider, rejection, text } from './helpers.js';
import { droppingProxy } from './support/dropping-proxy.js';

/** Opens a transit aes256-gcm96 ciphertext with the raw key: vault:vN:base64(nonce12 || ct || tag16). */
function openLocally(key: Uint8Array, ciphertext: Uint8Array): string {
  const raw = Buffer.from(text(ciphertext).split(':')[2] ?? '', 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString();
}

describe('an import whose answer is lost after OpenBao made the key', () => {
  let proxy: Awaited<ReturnType<typeof droppingProxy>>;
  let p: VaultTransitProvider;
  let keyport: Keyport;
  beforeAll(async () => {
    proxy = await droppingProxy(openbao().addr);
    p = provider({ endpoint: proxy.url });
    keyport = new Keyport({ providers: [p], retry: { maxAttempts: 3, baseDelayMs: 0 } });
  });
  afterAll(async () => {
    await keyport.close();
    proxy.server.closeAllConnections();
    proxy.server.close();
  });

  /** A pending AES key, its material, and that material wrapped for it. */
  async function announced(hint: string) {
    const { uri } = await keyport.createKey('hcvault', {
      name: keyName(hint),
      spec: 'AES_256',
      external: true,
    });
    const params = await keyport.getImportParameters(uri);
    const material = new Uint8Array(randomBytes(32));
    const req = {
      wrappedMaterial: wrapForImport(params.wrappingPublicKey, material),
      algorithm: params.algorithm,
    };
    return { uri, material, req };
  }

  it('describeKey answers the key as it is (not pending_import), and it is used', async () => {
    const { uri, material, req } = await announced('lost');
    proxy.state.dropImports = 1;
    await expect(keyport.importKeyMaterial(uri, req)).rejects.toMatchObject({ code: 'Unavailable' });
    expect(await keyport.describeKey(uri)).toMatchObject({
      state: 'enabled',
      origin: 'external',
      spec: 'AES_256',
      primaryVersion: '1',
    });
    const sealed = await keyport.encrypt(uri, bytes('landed'));
    expect(openLocally(material, sealed.ciphertext)).toBe('landed');
  });

  it('the failure keeps its code (no refusal) and says the key now exists', async () => {
    const { uri, req } = await announced('said');
    proxy.state.dropImports = 1;
    const error = await rejection(p, keyport.importKeyMaterial(uri, req));
    expect(error.code).toBe('Unavailable');
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/the key now exists \(enabled, imported material, latest version 1\)/);
    expect(error.message).toMatch(/most likely landed/);
  });

  it('a retry is refused as AlreadyExists naming the key, never imported as a new version; the key is used', async () => {
    const { uri, material, req } = await announced('retried');
    proxy.state.dropImports = 1;
    await expect(keyport.importKeyMaterial(uri, req)).rejects.toMatchObject({ code: 'Unavailable' });
    for (let i = 0; i < 2; i++) {
      const error = await rejection(p, keyport.importKeyMaterial(uri, req));
      expect(error.code).toBe('AlreadyExists');
      expect(error.message).toMatch(/^the key exists \(enabled, imported material, latest version 1\)/);
      expect(error.message).toMatch(/this material was not imported/);
    }
    // Used without being described first: the server holds the key, whatever this process recorded.
    const sealed = await keyport.encrypt(uri, bytes('once'));
    expect(openLocally(material, sealed.ciphertext)).toBe('once');
    expect((await p.readTransitKey({ uri })).latest_version).toBe(1);
    expect((await keyport.describeKey(uri)).state).toBe('enabled');
  });

  it('a pending key whose import never reached OpenBao stays pending_import, asked of the server', async () => {
    const { uri } = await announced('not-sent');
    expect((await keyport.describeKey(uri)).state).toBe('pending_import');
    await expect(keyport.encrypt(uri, bytes('x'))).rejects.toMatchObject({ code: 'KeyStateConflict' });
  });
});
