/**
 * HSM -> OpenBao transit through Keyport, and the proof that both hold the same key: data
 * encrypted by transit with the imported key decrypts inside the HSM (the `vault:vN:` body is
 * nonce | ct | tag, AES-GCM, AAD = the associated data), and HSM ciphertexts decrypt in transit.
 *
 * SoftHSM2 2.6.1 wraps with OAEP SHA-1 only, so the ephemeral AES key goes to transit under
 * OAEP SHA-1: `RSA_AES_KEY_WRAP_SHA_1`, which @keyport/vault-transit sends as
 * `hash_function: SHA1`.
 */
import { join } from 'node:path';
import { Keyport } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { hsmToTransitCiphertext, importHsmKey, readManifest, transitToHsmCiphertext } from '../src/index.js';
import { text, transitProvider, transitUri, uniqueName, useHsmKeyport, utf8 } from './support.js';

describe('importHsmKey into OpenBao transit', () => {
  const t = useHsmKeyport(() => [transitProvider()]);

  it('imports through Keyport (OAEP SHA-1 + AES-KWP) and both sides decrypt each other', async () => {
    const uri = transitUri(uniqueName('bao'));
    const pending = await t.keyport.createKey('hcvault', { name: uri, spec: 'AES_256', external: true });
    expect(pending.state).toBe('pending_import');
    const manifestPath = join(t.dir, 'transit.json');
    const pairing = await importHsmKey({
      keyport: t.keyport,
      hsm: t.hsm,
      hsmKey: { create: { name: uniqueName('root') } },
      target: { uri },
      manifestPath,
    });
    expect(pairing.target).toEqual({
      uri,
      version: '1',
      scheme: 'hcvault',
      spec: 'AES_256',
      wrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_1',
    });
    expect((await readManifest(manifestPath)).pairings).toEqual([pairing]);
    // The key exists on the server now, not only in the provider: a second provider sees it.
    const fresh = new Keyport({ providers: [transitProvider()] });
    try {
      expect(await fresh.describeKey(uri)).toMatchObject({
        state: 'enabled',
        spec: 'AES_256',
        origin: 'external',
      });
    } finally {
      await fresh.close();
    }

    const context = { tenant: 'acme', table: 'orders' };
    // transit -> HSM
    const fromTransit = await t.keyport.encrypt(uri, utf8('sealed by OpenBao'), { context });
    const vaultText = text(fromTransit.ciphertext);
    expect(vaultText).toMatch(/^vault:v1:/);
    const inHsm = transitToHsmCiphertext(vaultText, Number(pairing.hsm.version));
    const opened = await t.keyport.decrypt(pairing.hsm.uri, inHsm, { context });
    expect(text(opened.plaintext)).toBe('sealed by OpenBao');
    // The associated data is bound: another context fails inside the HSM.
    await expect(
      t.keyport.decrypt(pairing.hsm.uri, inHsm, { context: { ...context, tenant: 'evil' } }),
    ).rejects.toMatchObject({ code: 'InvalidCiphertext' });

    // HSM -> transit
    const fromHsm = await t.keyport.encrypt(pairing.hsm.uri, utf8('sealed in the HSM'), { context });
    const asVault = hsmToTransitCiphertext(fromHsm.ciphertext, Number(pairing.target.version));
    const back = await t.keyport.decrypt(uri, utf8(asVault), { context });
    expect(text(back.plaintext)).toBe('sealed in the HSM');
    await expect(
      t.keyport.decrypt(uri, utf8(asVault), { context: { tenant: 'evil' } }),
    ).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
  });
});
