/**
 * Answers that name the resource they came from, checked as Google's data-integrity samples
 * check them (`response.name == key_version_name`): a public key, a signature or a MAC from
 * another version, or from none named, is Integrity, never used as the requested version's; a
 * key, a new version or an import job answered for another resource steers nothing.
 */
import { randomBytes } from 'node:crypto';
import { wrapForImport } from '@keyport/conformance';
import { describe, expect, it } from 'vitest';
import {
  type Answer,
  alterAnswer,
  keyportOf,
  kmsSuite,
  type MakeProvider,
  resourceOf,
  TRANSPORTS,
  wrapClient,
} from './support/suite.js';
import { grpcProvider, signal } from './support/targets.js';

const RING = 'projects/keyport-answers/locations/global/keyRings/answers';
const suite = kmsSuite(RING);
const { name } = suite;

/** A provider whose client method `method` has its answers changed by `alter` on the way back. */
async function altered(make: MakeProvider, method: string, alter: (r: Answer) => void) {
  const p = suite.providerOn(make);
  await wrapClient(p, { [method]: alterAnswer(alter) });
  return { p, kp: keyportOf(p) };
}

describe('a GetPublicKey answer from another key version', () => {
  for (const [transport, make] of TRANSPORTS) {
    it(`is refused over ${transport}: nothing is encrypted to it, verified under it or returned`, async () => {
      const mine = await suite.kp.createKey('gcp-kms', {
        name: name('rsa'),
        spec: 'RSA_2048',
        usage: 'encrypt_decrypt',
      });
      const theirs = await suite.kp.createKey('gcp-kms', {
        name: name('rsa'),
        spec: 'RSA_2048',
        usage: 'encrypt_decrypt',
      });
      const ec = await suite.kp.createKey('gcp-kms', { name: name('ec'), spec: 'EC_P256' });
      const kms = await suite.provider.client();
      const [other] = await kms.getPublicKey({ name: `${resourceOf(theirs.uri)}/cryptoKeyVersions/1` });
      const swaps: Array<[string, (r: Answer) => void]> = [
        // Another key's whole answer, its checksum intact: encrypting to it hands the data to that key.
        [
          'another key',
          (r) => Object.assign(r, { name: other.name, pem: other.pem, pemCrc32c: other.pemCrc32c }),
        ],
        ['no name', (r) => Object.assign(r, { name: '' })],
      ];
      for (const [what, alter] of swaps) {
        const w = await altered(make, 'getPublicKey', alter);
        await expect(w.kp.encrypt(mine.uri, randomBytes(16)), what).rejects.toMatchObject({
          code: 'Integrity',
        });
        await expect(w.p.getPublicKey({ uri: mine.uri }, signal()), what).rejects.toMatchObject({
          code: 'Integrity',
        });
        const verify = w.kp.verify(ec.uri, Uint8Array.of(1), Uint8Array.of(2), {
          algorithm: 'ECDSA_SHA_256',
        });
        await expect(verify, what).rejects.toMatchObject({ code: 'Integrity' });
        await w.kp.close();
      }
      // The honest answer passes.
      const { ciphertext } = await suite.kp.encrypt(mine.uri, Uint8Array.of(7));
      expect((await suite.kp.decrypt(mine.uri, ciphertext)).plaintext).toEqual(Uint8Array.of(7));
    });
  }
});

describe('a signature or MAC answer that names no key version', () => {
  it('is refused (Integrity), as one naming another version is', async () => {
    const ec = await suite.kp.createKey('gcp-kms', { name: name('ec'), spec: 'EC_P256' });
    const hmac = await suite.kp.createKey('gcp-kms', { name: name('hmac'), spec: 'HMAC_256' });
    const unnamed = (r: Answer) => {
      r.name = '';
    };
    const signer = await altered(grpcProvider, 'asymmetricSign', unnamed);
    await expect(
      signer.kp.sign(ec.uri, Uint8Array.of(1), { algorithm: 'ECDSA_SHA_256' }),
    ).rejects.toMatchObject({ code: 'Integrity', retryable: true });
    const macer = await altered(grpcProvider, 'macSign', unnamed);
    await expect(macer.kp.mac(hmac.uri, Uint8Array.of(1))).rejects.toMatchObject({
      code: 'Integrity',
      retryable: true,
    });
    await Promise.all([signer.kp.close(), macer.kp.close()]);
  });
});

describe('a MacVerify answer from another key version', () => {
  for (const [transport, make] of TRANSPORTS) {
    it(`is refused over ${transport} (Integrity), as a MacSign answer from one is`, async () => {
      const hmac = await suite.kp.createKey('gcp-kms', { name: name('hmac'), spec: 'HMAC_256' });
      const theirs = await suite.kp.createKey('gcp-kms', { name: name('hmac'), spec: 'HMAC_256' });
      await suite.kp.rotateKey(hmac.uri); // versions 1 and 2
      const message = Uint8Array.of(1, 2, 3);
      const { mac } = await suite.kp.mac(hmac.uri, message);
      const answers = [
        `${resourceOf(hmac.uri)}/cryptoKeyVersions/1`, // another version of the same key
        `${resourceOf(theirs.uri)}/cryptoKeyVersions/1`, // a version of another key
        '',
      ];
      for (const answered of answers) {
        const w = await altered(make, 'macVerify', (r) => {
          r.name = answered;
        });
        // Its verdict, true or false, is never reported as version 2's.
        for (const tag of [mac, Uint8Array.of(9)]) {
          await expect(w.kp.verifyMac(hmac.uri, message, tag), answered).rejects.toMatchObject({
            code: 'Integrity',
            retryable: true,
            keyUri: hmac.uri,
          });
        }
        await w.kp.close();
      }
      // Honest answers pass, a MAC that does not verify included.
      const p = suite.providerOn(make);
      const kp = keyportOf(p);
      expect(await kp.verifyMac(hmac.uri, message, mac)).toBe(true);
      expect(await kp.verifyMac(hmac.uri, message, Uint8Array.of(9))).toBe(false);
      await kp.close();
    });
  }
});

describe('answers naming another key, version or import job', () => {
  it('a GetCryptoKey answer for another key is Integrity: never described as the requested key', async () => {
    const mine = await suite.kp.createKey('gcp-kms', { name: name('key'), spec: 'AES_256' });
    const theirs = await suite.kp.createKey('gcp-kms', { name: name('key'), spec: 'AES_256' });
    for (const answered of [resourceOf(theirs.uri), '']) {
      const w = await altered(grpcProvider, 'getCryptoKey', (r) => {
        r.name = answered;
      });
      await expect(w.kp.describeKey(mine.uri), answered).rejects.toMatchObject({
        code: 'Integrity',
        keyUri: mine.uri,
      });
      await w.kp.close();
    }
    await expect(suite.kp.describeKey(mine.uri)).resolves.toMatchObject({ uri: mine.uri });
  });

  it('a CreateCryptoKeyVersion answer naming a version of another key makes no version of this key primary', async () => {
    const mine = await suite.kp.createKey('gcp-kms', { name: name('rot'), spec: 'AES_256' });
    const theirs = await suite.kp.createKey('gcp-kms', { name: name('rot'), spec: 'AES_256' });
    await suite.kp.rotateKey(mine.uri); // versions 1 and 2; 2 is primary
    for (const answered of [`${resourceOf(theirs.uri)}/cryptoKeyVersions/1`, '']) {
      const w = await altered(grpcProvider, 'createCryptoKeyVersion', (r) => {
        r.name = answered;
      });
      const error = await w.kp.rotateKey(mine.uri).catch((e: unknown) => e);
      expect(error, answered).toMatchObject({ code: 'Internal', retryable: false });
      expect((error as Error).message).toContain('describe the key before rotating again');
      await w.kp.close();
    }
    // Version 1 (the id the other key's answer named) was never made primary.
    expect((await suite.kp.describeKey(mine.uri)).primaryVersion).toBe('2');
  });

  it("an import job answered under another job's name: its wrapping key is not handed out", async () => {
    const uri = (await suite.kp.createKey('gcp-kms', { name: name('imp'), spec: 'AES_256', external: true }))
      .uri;
    const other = `${RING}/importJobs/someone-elses`;
    for (const method of ['createImportJob', 'getImportJob']) {
      const w = await altered(grpcProvider, method, (r) => {
        r.name = other;
        if (method === 'createImportJob') r.state = 'PENDING_GENERATION';
      });
      if (method === 'createImportJob') {
        // A pending answer's name steers nothing: the job is polled by the name keyport gave it.
        const params = await w.kp.getImportParameters(uri, { algorithm: 'RSA_AES_KEY_WRAP_SHA_256' });
        expect(new TextDecoder().decode(params.importToken)).toMatch(/\/importJobs\/kpi-[0-9a-f]{16}$/);
      } else {
        const error = await w.kp
          .getImportParameters(uri, { algorithm: 'RSA_AES_KEY_WRAP_SHA_256' })
          .catch((e: unknown) => e);
        expect(error).toMatchObject({ code: 'Integrity', keyUri: uri });
      }
      await w.kp.close();
    }
  });

  it('an ImportCryptoKeyVersion answer naming a version of another key is Internal: that id is neither polled nor made primary', async () => {
    const uri = (await suite.kp.createKey('gcp-kms', { name: name('imp'), spec: 'AES_256', external: true }))
      .uri;
    const theirs = await suite.kp.createKey('gcp-kms', { name: name('imp'), spec: 'AES_256' });
    const params = await suite.kp.getImportParameters(uri, { algorithm: 'RSA_AES_KEY_WRAP_SHA_256' });
    const req = {
      algorithm: 'RSA_AES_KEY_WRAP_SHA_256',
      wrappedMaterial: wrapForImport('RSA_AES_KEY_WRAP_SHA_256', params.wrappingPublicKey, randomBytes(32)),
      ...(params.importToken !== undefined ? { importToken: params.importToken } : {}),
    } as const;
    const w = await altered(grpcProvider, 'importCryptoKeyVersion', (r) => {
      r.name = `${resourceOf(theirs.uri)}/cryptoKeyVersions/1`;
    });
    const error = await w.kp.importKeyMaterial(uri, req).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'Internal', retryable: false });
    expect((error as Error).message).toContain('describe the key before importing again');
    await w.kp.close();
  });
});

describe('a key listing', () => {
  it('naming a key outside the configured key ring is refused (Internal), never listed as one of its keys', async () => {
    await suite.kp.createKey('gcp-kms', { name: name('listed'), spec: 'AES_256' });
    const elsewhere = 'projects/keyport-answers/locations/global/keyRings/other/cryptoKeys/planted';
    for (const planted of [elsewhere, `${RING}/cryptoKeys/a/b`, '']) {
      const w = await altered(grpcProvider, 'listCryptoKeys', (r) => {
        const keys = r as unknown as Answer[];
        if (keys[0] !== undefined) keys[0].name = planted;
      });
      const seen: string[] = [];
      const listing = (async () => {
        for await (const k of w.kp.listKeys('gcp-kms')) seen.push(k.uri);
      })();
      await expect(listing, planted).rejects.toMatchObject({ code: 'Internal' });
      expect(seen.some((uri) => uri.includes('planted') || uri.endsWith('/a/b'))).toBe(false);
      await w.kp.close();
    }
  });
});

describe('versions and primaries of another key', () => {
  it("a version listing naming another key's version (or none) is Internal: never described, signed with or taken as newest", async () => {
    const mine = await suite.kp.createKey('gcp-kms', { name: name('ec'), spec: 'EC_P256' });
    const theirs = await suite.kp.createKey('gcp-kms', { name: name('ec'), spec: 'EC_P256' });
    await suite.kp.rotateKey(theirs.uri);
    await suite.kp.rotateKey(theirs.uri); // the other key has versions 1 to 3, this one only 1
    for (const planted of [
      `${resourceOf(theirs.uri)}/cryptoKeyVersions/3`,
      `${resourceOf(mine.uri)}/x/3`,
      '',
    ]) {
      const w = await altered(grpcProvider, 'listCryptoKeyVersions', (r) => {
        const versions = r as unknown as Answer[];
        versions.push({ ...(versions[0] as Answer), name: planted });
      });
      await expect(w.kp.describeKey(mine.uri), planted).rejects.toMatchObject({
        code: 'Internal',
        retryable: false,
        keyUri: mine.uri,
      });
      const signed = w.kp.sign(mine.uri, Uint8Array.of(1), { algorithm: 'ECDSA_SHA_256' });
      await expect(signed, planted).rejects.toMatchObject({ code: 'Internal' });
      await w.kp.close();
    }
    const honest = await suite.kp.describeKey(mine.uri);
    expect(honest.versions?.map((v) => v.version)).toEqual(['1']);
  });

  it("a key answered with another key's version as its primary steers no enable/disable, describe or listing", async () => {
    const mine = await suite.kp.createKey('gcp-kms', { name: name('aes'), spec: 'AES_256' });
    await suite.kp.rotateKey(mine.uri); // versions 1 and 2; 2 is primary
    const theirs = await suite.kp.createKey('gcp-kms', { name: name('aes'), spec: 'AES_256' });
    const planted = (r: Answer) => {
      (r.primary as Answer).name = `${resourceOf(theirs.uri)}/cryptoKeyVersions/1`;
    };
    const w = await altered(grpcProvider, 'getCryptoKey', planted);
    // Version 1 of this key is the id the other key's version names: it must stay enabled.
    await expect(w.kp.disableKey(mine.uri)).rejects.toMatchObject({ code: 'Internal', retryable: false });
    await expect(w.kp.describeKey(mine.uri)).rejects.toMatchObject({ code: 'Internal' });
    await w.kp.close();
    const listing = await altered(grpcProvider, 'listCryptoKeys', (r) => {
      for (const key of r as unknown as Answer[]) if (key.name === resourceOf(mine.uri)) planted(key);
    });
    await expect(
      (async () => {
        for await (const _ of listing.kp.listKeys('gcp-kms'));
      })(),
    ).rejects.toMatchObject({ code: 'Internal' });
    await listing.kp.close();
    const described = await suite.kp.describeKey(mine.uri);
    expect(described.primaryVersion).toBe('2');
    expect(described.versions?.map((v) => v.state)).toEqual(['enabled', 'enabled']);
  });

  it('a CreateCryptoKey answer for another key (or none) is Internal, not retryable: that key is never handed back', async () => {
    const theirs = await suite.kp.createKey('gcp-kms', { name: name('made'), spec: 'AES_256' });
    for (const answered of [resourceOf(theirs.uri), '']) {
      const w = await altered(grpcProvider, 'createCryptoKey', (r) => {
        r.name = answered;
      });
      const id = name('made');
      const error = await w.kp.createKey('gcp-kms', { name: id, spec: 'AES_256' }).catch((e: unknown) => e);
      expect(error, answered).toMatchObject({
        code: 'Internal',
        retryable: false,
        keyUri: `gcp-kms://${RING}/cryptoKeys/${id}`,
      });
      expect((error as Error).message).toContain('describe it before creating it again');
      await w.kp.close();
    }
  });
});
