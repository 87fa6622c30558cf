import {
  constants,
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
  publicDecrypt,
  publicEncrypt,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { KeyVaultKey } from '@azure/keyvault-keys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { ADMIN, CRYPTO_ONLY, cryptoClient, failure, keyClient, PRINCIPALS, READER } from './azure-helpers.js';

// CRYPTO_ONLY lacks `get`, so CryptographyClient cannot fetch the public key and sends every
// operation (encrypt and verify included) to the server.
let server: AzureKeyVaultServer;
let rsa: KeyVaultKey;
let rsaPublic: KeyObject;
beforeAll(async () => {
  server = await startAzureKeyVaultServer({ principals: PRINCIPALS });
  rsa = await keyClient(server, ADMIN).createRsaKey('rsa', { keySize: 2048 });
  rsaPublic = publicKeyOf(rsa);
});
afterAll(() => server?.stop());

function publicKeyOf(key: KeyVaultKey): KeyObject {
  const j = key.key ?? {};
  const b = (x: Uint8Array | undefined) => Buffer.from(x ?? []).toString('base64url');
  return j.kty?.startsWith('EC')
    ? createPublicKey({
        key: { kty: 'EC', crv: j.crv === 'P-256K' ? 'secp256k1' : (j.crv ?? ''), x: b(j.x), y: b(j.y) },
        format: 'jwk',
      })
    : createPublicKey({ key: { kty: 'RSA', n: b(j.n), e: b(j.e) }, format: 'jwk' });
}

const LOCAL_ENCRYPT = {
  'RSA-OAEP': (pt: Buffer) =>
    publicEncrypt({ key: rsaPublic, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, pt),
  'RSA-OAEP-256': (pt: Buffer) =>
    publicEncrypt({ key: rsaPublic, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, pt),
  RSA1_5: (pt: Buffer) => publicEncrypt({ key: rsaPublic, padding: constants.RSA_PKCS1_PADDING }, pt),
} as const;

describe('encrypt / decrypt and wrapKey / unwrapKey (RSA)', () => {
  for (const algorithm of ['RSA-OAEP', 'RSA-OAEP-256', 'RSA1_5'] as const) {
    it(`${algorithm}: round trips on the server and decrypts standard ciphertext`, async () => {
      const crypto = cryptoClient(server, rsa.id ?? '', CRYPTO_ONLY);
      const plaintext = Buffer.from(`secret for ${algorithm}`);
      const enc = await crypto.encrypt({ algorithm, plaintext });
      expect(enc.keyID).toBe(rsa.id);
      expect(Buffer.from(enc.result).equals(plaintext)).toBe(false);
      const dec = await crypto.decrypt({ algorithm, ciphertext: enc.result });
      expect(Buffer.from(dec.result).toString()).toBe(`secret for ${algorithm}`);
      const local = await crypto.decrypt({ algorithm, ciphertext: LOCAL_ENCRYPT[algorithm](plaintext) });
      expect(Buffer.from(local.result).equals(plaintext)).toBe(true);

      const dataKey = Buffer.alloc(32, 7);
      const wrapped = await crypto.wrapKey(algorithm, dataKey);
      expect(Buffer.from((await crypto.unwrapKey(algorithm, wrapped.result)).result).equals(dataKey)).toBe(
        true,
      );
      const localWrapped = LOCAL_ENCRYPT[algorithm](dataKey);
      expect(Buffer.from((await crypto.unwrapKey(algorithm, localWrapped)).result).equals(dataKey)).toBe(
        true,
      );
    });
  }

  it('rejects bad ciphertext, wrong algorithms and oversize plaintext with 400', async () => {
    const crypto = cryptoClient(server, rsa.id ?? '', CRYPTO_ONLY);
    expect(
      await failure(crypto.decrypt({ algorithm: 'RSA-OAEP', ciphertext: Buffer.alloc(256, 1) })),
    ).toMatchObject({ status: 400, code: 'BadParameter' });
    expect(
      await failure(crypto.encrypt({ algorithm: 'A256GCM', plaintext: Buffer.from('x') })),
    ).toMatchObject({ status: 400 });
    expect(
      await failure(crypto.encrypt({ algorithm: 'RSA-OAEP', plaintext: Buffer.alloc(300) })),
    ).toMatchObject({ status: 400 });
    expect(await failure(crypto.wrapKey('A256KW', Buffer.alloc(32)))).toMatchObject({ status: 400 });
  });
});

const HASHES = { 256: 'sha256', 384: 'sha384', 512: 'sha512' } as const;

describe('sign / verify over a digest', () => {
  for (const bits of [256, 384, 512] as const) {
    for (const family of ['RS', 'PS'] as const) {
      it(`${family}${bits}: the server's signature verifies with node:crypto and vice versa`, async () => {
        const algorithm = `${family}${bits}` as const;
        const crypto = cryptoClient(server, rsa.id ?? '', CRYPTO_ONLY);
        const message = Buffer.from(`message ${algorithm}`);
        const digest = createHash(HASHES[bits]).update(message).digest();
        const padding = family === 'PS' ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
        const saltLength = bits / 8;
        const signed = await crypto.sign(algorithm, digest);
        expect(
          nodeVerify(HASHES[bits], message, { key: rsaPublic, padding, saltLength }, signed.result),
        ).toBe(true);
        expect((await crypto.verify(algorithm, digest, signed.result)).result).toBe(true);
        const other = createHash(HASHES[bits]).update('other').digest();
        expect((await crypto.verify(algorithm, other, signed.result)).result).toBe(false);
        expect(await failure(crypto.sign(algorithm, digest.subarray(1)))).toMatchObject({
          status: 400,
          code: 'BadParameter',
        });
      });
    }
  }

  for (const [curve, algorithm, bits] of [
    ['P-256', 'ES256', 256],
    ['P-384', 'ES384', 384],
    ['P-521', 'ES512', 512],
    ['P-256K', 'ES256K', 256],
  ] as const) {
    it(`${algorithm} on ${curve}: raw r||s signatures interoperate with node:crypto`, async () => {
      const key = await keyClient(server, ADMIN).createEcKey(`ec-${curve}`, { curve });
      const pub = publicKeyOf(key);
      const crypto = cryptoClient(server, key.id ?? '', CRYPTO_ONLY);
      const message = Buffer.from(`message ${algorithm}`);
      const digest = createHash(HASHES[bits]).update(message).digest();
      const signed = await crypto.sign(algorithm, digest);
      expect(signed.result.length).toBe({ 256: 64, 384: 96, 512: 132 }[bits]);
      expect(nodeVerify(HASHES[bits], message, { key: pub, dsaEncoding: 'ieee-p1363' }, signed.result)).toBe(
        true,
      );
      expect((await crypto.verify(algorithm, digest, signed.result)).result).toBe(true);
      const tampered = Buffer.from(signed.result);
      tampered[5] = (tampered[5] ?? 0) ^ 1;
      expect((await crypto.verify(algorithm, digest, tampered)).result).toBe(false);
      expect(await failure(crypto.sign(algorithm === 'ES256' ? 'ES384' : 'ES256', digest))).toMatchObject({
        status: 400,
      });
      expect(
        await failure(crypto.encrypt({ algorithm: 'RSA-OAEP', plaintext: Buffer.from('x') })),
      ).toMatchObject({ status: 403, code: 'Forbidden' });
    });
  }

  it('a 4096-bit RSA key (imported: generating one is slow) encrypts and signs', async () => {
    const jwk = JSON.parse(
      readFileSync(new URL('./fixtures/azure-rsa-4096.jwk.json', import.meta.url), 'utf8'),
    ) as Record<string, string>;
    const b = (name: string) => Buffer.from(jwk[name] ?? '', 'base64url');
    const key = await keyClient(server, ADMIN).importKey('rsa-4096', {
      kty: 'RSA',
      n: b('n'),
      e: b('e'),
      d: b('d'),
      p: b('p'),
      q: b('q'),
      dp: b('dp'),
      dq: b('dq'),
      qi: b('qi'),
    });
    expect(key.key?.n?.length).toBe(512);
    const crypto = cryptoClient(server, key.id ?? '', CRYPTO_ONLY);
    const enc = await crypto.encrypt({ algorithm: 'RSA-OAEP-256', plaintext: Buffer.from('big key') });
    expect(enc.result.length).toBe(512);
    expect(
      Buffer.from(
        (await crypto.decrypt({ algorithm: 'RSA-OAEP-256', ciphertext: enc.result })).result,
      ).toString(),
    ).toBe('big key');
    const digest = createHash('sha512').update('big').digest();
    const sig = await crypto.sign('PS512', digest);
    const pub = publicKeyOf(key);
    expect(
      nodeVerify(
        'sha512',
        Buffer.from('big'),
        { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 },
        sig.result,
      ),
    ).toBe(true);
  });

  it('RSNULL signs the value as given (PKCS#1 v1.5 without DigestInfo)', async () => {
    const crypto = cryptoClient(server, rsa.id ?? '', CRYPTO_ONLY);
    const value = Buffer.alloc(36, 4);
    const signed = await crypto.sign('RSNULL', value);
    const recovered = publicDecrypt({ key: rsaPublic, padding: constants.RSA_PKCS1_PADDING }, signed.result);
    expect(recovered.equals(value)).toBe(true);
    expect((await crypto.verify('RSNULL', value, signed.result)).result).toBe(true);
    expect((await crypto.verify('RSNULL', Buffer.alloc(36, 5), signed.result)).result).toBe(false);
    expect(await failure(crypto.sign('RSNULL', Buffer.alloc(250)))).toMatchObject({ status: 400 });
  });

  it('verifies a signature made elsewhere over the same digest', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const jwk = privateKey.export({ format: 'jwk' });
    const b = (s: string | undefined) => Buffer.from(s ?? '', 'base64url');
    const imported = await keyClient(server, ADMIN).importKey('ec-imported', {
      kty: 'EC',
      crv: 'P-256',
      x: b(jwk.x),
      y: b(jwk.y),
      d: b(jwk.d),
    });
    const message = Buffer.from('signed locally');
    const sig = nodeSign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const digest = createHash('sha256').update(message).digest();
    const crypto = cryptoClient(server, imported.id ?? '', CRYPTO_ONLY);
    expect((await crypto.verify('ES256', digest, sig)).result).toBe(true);
  });
});

describe('key state enforcement', () => {
  it('a disabled key refuses every operation with 403 Forbidden', async () => {
    const admin = keyClient(server, ADMIN);
    const key = await admin.createRsaKey('disabled', { enabled: false });
    const crypto = cryptoClient(server, key.id ?? '', CRYPTO_ONLY);
    const e = await failure(crypto.encrypt({ algorithm: 'RSA-OAEP', plaintext: Buffer.from('x') }));
    expect(e).toMatchObject({ status: 403, code: 'Forbidden' });
    expect(e.message).toContain('Operation encrypt is not allowed on a disabled key');
    await admin.updateKeyProperties('disabled', key.properties.version ?? '', { enabled: true });
    await expect(
      crypto.encrypt({ algorithm: 'RSA-OAEP', plaintext: Buffer.from('x') }),
    ).resolves.toBeDefined();
  });

  it('key_ops limit the operations: 403 KeyOperationForbidden', async () => {
    const key = await keyClient(server, ADMIN).createRsaKey('sign-only', { keyOps: ['sign', 'verify'] });
    const crypto = cryptoClient(server, key.id ?? '', CRYPTO_ONLY);
    const e = await failure(crypto.encrypt({ algorithm: 'RSA-OAEP', plaintext: Buffer.from('x') }));
    expect(e).toMatchObject({ status: 403, code: 'Forbidden' });
    expect(e.message).toContain('not permitted on this key');
    await expect(crypto.sign('RS256', Buffer.alloc(32))).resolves.toBeDefined();
  });

  it('past exp a key no longer encrypts or signs but still decrypts and verifies', async () => {
    const other = await startAzureKeyVaultServer({ principals: PRINCIPALS });
    try {
      const expiresOn = new Date((Math.floor(Date.now() / 1000) + 3600) * 1000);
      const key = await keyClient(other, ADMIN).createRsaKey('expiring', { expiresOn });
      const crypto = cryptoClient(other, key.id ?? '', CRYPTO_ONLY);
      const enc = await crypto.encrypt({
        algorithm: 'RSA-OAEP-256',
        plaintext: Buffer.from('before expiry'),
      });
      const sig = await crypto.sign('RS256', Buffer.alloc(32, 2));
      other.clock.advance(7200);
      const e = await failure(crypto.encrypt({ algorithm: 'RSA-OAEP-256', plaintext: Buffer.from('late') }));
      expect(e).toMatchObject({ status: 403, code: 'Forbidden' });
      expect(e.message).toContain('expired');
      expect(await failure(crypto.sign('RS256', Buffer.alloc(32, 2)))).toMatchObject({ status: 403 });
      expect(
        Buffer.from(
          (await crypto.decrypt({ algorithm: 'RSA-OAEP-256', ciphertext: enc.result })).result,
        ).toString(),
      ).toBe('before expiry');
      expect((await crypto.verify('RS256', Buffer.alloc(32, 2), sig.result)).result).toBe(true);
    } finally {
      await other.stop();
    }
  });

  it('before nbf a key does not sign', async () => {
    const notBefore = new Date((Math.floor(Date.now() / 1000) + 3600) * 1000);
    const key = await keyClient(server, ADMIN).createEcKey('not-yet', { notBefore });
    const crypto = cryptoClient(server, key.id ?? '', CRYPTO_ONLY);
    const e = await failure(crypto.sign('ES256', Buffer.alloc(32)));
    expect(e).toMatchObject({ status: 403, code: 'Forbidden' });
    expect(e.message).toContain('not yet valid');
  });

  it('a principal without the permission gets 403 ForbiddenByPolicy', async () => {
    const crypto = cryptoClient(server, rsa.id ?? '', READER);
    const e = await failure(crypto.decrypt({ algorithm: 'RSA-OAEP', ciphertext: Buffer.alloc(256) }));
    expect(e).toMatchObject({ status: 403, code: 'Forbidden' });
    expect(e.message).toContain('does not have keys decrypt permission');
    const unknown = cryptoClient(server, rsa.id ?? '', 'token-nobody');
    expect(await failure(unknown.sign('RS256', Buffer.alloc(32)))).toMatchObject({ status: 403 });
  });
});
