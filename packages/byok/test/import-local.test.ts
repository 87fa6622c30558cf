/**
 * HSM -> the local keystore: SoftHSM2 2.6.1 wraps the key inside the token with
 * CKM_RSA_PKCS_OAEP over SHA-1 under the keystore's import key (`RSAES_OAEP_SHA_1`). Both sides
 * then hold the same AES-256 key, and since @keyport/local and @keyport/pkcs11 write AES-GCM
 * ciphertexts in the same layout (`0x01 | version u32be | IV | ct | tag`, AAD =
 * `encodeContext(context)`), a ciphertext of one decrypts on the other once the header names
 * the other side's key version — proven here with an HSM key at version 2 and its copy at 1.
 */
import { join } from 'node:path';
import { Keyport } from '@keyport/core';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { describe, expect, it } from 'vitest';
import { hsmToLocalCiphertext, importHsmKey, localToHsmCiphertext, readManifest } from '../src/index.js';
import { openLocal, text, uniqueName, useHsmKeyport, utf8 } from './support.js';

describe('importHsmKey into the local keystore', () => {
  const t = useHsmKeyport(async (dir) => [await openLocal(dir)]);

  it('imports with RSAES_OAEP_SHA_1; ciphertexts of each side decrypt on the other, with the context bound', async () => {
    // An existing HSM key at version 2, so the two sides' version numbers differ.
    const created = await t.keyport.createKey('pkcs11', {
      name: uniqueName('root'),
      spec: 'AES_256',
      exportable: true,
    } as never);
    const rotated = await t.keyport.rotateKey(created.uri);
    expect(rotated.primaryVersion).toBe('2');
    const target = await t.keyport.createKey('local', {
      name: uniqueName('copy'),
      spec: 'AES_256',
      external: true,
    });
    const manifestPath = join(t.dir, 'local.json');
    const pairing = await importHsmKey({
      keyport: t.keyport,
      hsm: t.hsm,
      hsmKey: { uri: created.uri },
      target: { uri: target.uri },
      manifestPath,
    });
    expect(pairing.hsm).toMatchObject({ version: '2', id: '6b70763100000002' });
    expect(pairing.target).toEqual({
      uri: target.uri,
      version: '1',
      scheme: 'local',
      spec: 'AES_256',
      wrappingAlgorithm: 'RSAES_OAEP_SHA_1',
    });
    expect((await readManifest(manifestPath)).pairings).toEqual([pairing]);
    expect(await t.keyport.describeKey(target.uri)).toMatchObject({ state: 'enabled', origin: 'external' });

    const hsmVersion = Number(pairing.hsm.version);
    const localVersion = Number(pairing.target.version);
    const context = { tenant: 'acme', table: 'orders' };

    // local -> HSM
    const fromLocal = await t.keyport.encrypt(target.uri, utf8('sealed by the keystore'), { context });
    expect(fromLocal.keyVersion).toBe('1');
    const inHsm = localToHsmCiphertext(fromLocal.ciphertext, hsmVersion);
    expect(text((await t.keyport.decrypt(pairing.hsm.uri, inHsm, { context })).plaintext)).toBe(
      'sealed by the keystore',
    );
    await expect(
      t.keyport.decrypt(pairing.hsm.uri, inHsm, { context: { ...context, tenant: 'evil' } }),
    ).rejects.toMatchObject({ code: 'InvalidCiphertext' });
    // Unchanged, the header names HSM version 1 — another key — and the tag check fails.
    await expect(t.keyport.decrypt(pairing.hsm.uri, fromLocal.ciphertext, { context })).rejects.toMatchObject(
      {
        code: 'InvalidCiphertext',
      },
    );

    // HSM -> local
    const fromHsm = await t.keyport.encrypt(pairing.hsm.uri, utf8('sealed in the HSM'), { context });
    expect(fromHsm.keyVersion).toBe('2');
    const inLocal = hsmToLocalCiphertext(fromHsm.ciphertext, localVersion);
    expect(text((await t.keyport.decrypt(target.uri, inLocal, { context })).plaintext)).toBe(
      'sealed in the HSM',
    );
    await expect(
      t.keyport.decrypt(target.uri, inLocal, { context: { tenant: 'evil' } }),
    ).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
  });

  it('an envelope sealed to the HSM key and its local copy opens with either alone', async () => {
    const target = await t.keyport.createKey('local', {
      name: uniqueName('env'),
      spec: 'AES_256',
      external: true,
    });
    const pairing = await importHsmKey({
      keyport: t.keyport,
      hsm: t.hsm,
      hsmKey: { create: { name: uniqueName('env-root') } },
      target: { uri: target.uri },
      manifestPath: join(t.dir, 'envelope.json'),
    });
    const context = { purpose: 'byok-local' };
    const sealed = await sealEnvelope(utf8('born in the HSM'), {
      recipients: [pairing.hsm.uri, target.uri],
      context,
      keys: t.keyport,
    });
    const byHsm = await openEnvelope(sealed, {
      trust: [pairing.hsm.uri],
      keys: new Keyport({ providers: [t.hsm] }),
    });
    const byLocal = await openEnvelope(sealed, {
      trust: [target.uri],
      keys: new Keyport({ providers: t.targets }),
    });
    expect(text(byHsm.plaintext)).toBe('born in the HSM');
    expect(text(byLocal.plaintext)).toBe('born in the HSM');
  });
});
