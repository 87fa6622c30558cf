/**
 * HSM -> AWS KMS (local-kms): the key generated in SoftHSM2 is wrapped inside the token with
 * CKM_RSA_PKCS_OAEP (SHA-1: SoftHSM2 wraps with nothing else) under local-kms's import key and
 * imported. An envelope sealed to both opens with either one alone. (AWS ciphertext blobs are
 * opaque, so that the two hold the same bits is proven with OpenBao: import-transit.test.ts.)
 */
import { join } from 'node:path';
import { Keyport } from '@keyport/core';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { describe, expect, it } from 'vitest';
import { importHsmKey, readManifest } from '../src/index.js';
import { localKms, text, uniqueName, useHsmKeyport, utf8 } from './support.js';

describe('importHsmKey into AWS KMS (local-kms)', () => {
  const t = useHsmKeyport(() => [localKms()]);

  it('imports the HSM key and records the pairing; an envelope to both opens with either alone', async () => {
    const target = await t.keyport.createKey('aws-kms', {
      name: uniqueName('aws'),
      spec: 'AES_256',
      external: true,
    });
    expect(target.state).toBe('pending_import');
    const manifestPath = join(t.dir, 'aws.json');
    const pairing = await importHsmKey({
      keyport: t.keyport,
      hsm: t.hsm,
      hsmKey: { create: { name: uniqueName('root') } },
      target: { uri: target.uri },
      manifestPath,
    });
    expect(pairing.target).toMatchObject({
      uri: target.uri,
      scheme: 'aws-kms',
      wrappingAlgorithm: 'RSAES_OAEP_SHA_1',
    });
    expect(pairing.hsm).toMatchObject({ version: '1', id: '6b70763100000001' });
    expect(pairing.hsm.uri).toContain(`object=${pairing.hsm.label}`);
    expect((await readManifest(manifestPath)).pairings).toEqual([pairing]);
    expect((await t.keyport.describeKey(target.uri)).state).toBe('enabled');

    const context = { tenant: 'acme' };
    const sealed = await sealEnvelope(utf8('born in the HSM'), {
      recipients: [pairing.hsm.uri, target.uri],
      context,
      keys: t.keyport,
    });
    // Each side alone: a Keyport holding only that provider, trusting only that key.
    const hsmOnly = new Keyport({ providers: [t.hsm] });
    const awsOnly = new Keyport({ providers: t.targets });
    const byHsm = await openEnvelope(sealed, { trust: [pairing.hsm.uri], keys: hsmOnly });
    const byAws = await openEnvelope(sealed, { trust: [target.uri], keys: awsOnly });
    expect(text(byHsm.plaintext)).toBe('born in the HSM');
    expect(text(byAws.plaintext)).toBe('born in the HSM');
  });
});
