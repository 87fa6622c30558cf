/**
 * What importHsmKey refuses before the HSM generates or wraps anything: a wrapping public key
 * that hands the key material to whoever can factor it (or unmask it, with exponent 1), given
 * parameters it would refuse anyway, and an `hsm` that cannot wrap.
 */
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { type KeyOperations, KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { type ImportHsmKeyOptions, importHsmKey, readManifest } from '../src/index.js';
import { countingWraps, openLocal, tempDir, uniqueName, useHsmKeyport } from './support.js';

describe('importHsmKey refuses before the HSM generates or wraps', () => {
  const t = useHsmKeyport(async (dir) => [await openLocal(dir)]);

  const pendingLocal = async () =>
    (await t.keyport.createKey('local', { name: uniqueName('local'), spec: 'AES_256', external: true })).uri;

  const spki = (bits: number, e?: string): Uint8Array => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
    if (e === undefined) return new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }));
    const jwk = publicKey.export({ format: 'jwk' });
    return new Uint8Array(
      // createPublicKey accepts a JWK with any exponent, e = 1 included.
      createPublicKey({ key: { ...jwk, e }, format: 'jwk' }).export({ format: 'der', type: 'spki' }),
    );
  };

  it('a weak wrapping public key (RSA-1024, RSA-768, exponent 1 or even, not RSA) is refused before the HSM wraps the key under it', async () => {
    const uri = await pendingLocal();
    const real = await t.keyport.getImportParameters(uri, { algorithm: 'RSAES_OAEP_SHA_1' });
    const hsmKey = {
      uri: (
        await t.keyport.createKey('pkcs11', {
          name: uniqueName('hsm'),
          spec: 'AES_256',
          exportable: true,
        } as never)
      ).uri,
    };
    const manifestPath = join(t.dir, 'weak.json');
    // Before: the HSM wrapped the key under each, and whoever holds (or factors) the private half
    // reads the key material out of the wrapped bytes; with e = 1 the "ciphertext" is the OAEP
    // encoding itself, which anyone unmasks.
    for (const [name, weak] of [
      ['RSA-1024', spki(1024)],
      ['RSA-768', spki(768)],
      ['RSA-2048 with e = 1', spki(2048, 'AQ')],
      ['RSA-2048 with an even exponent (e = 65538)', spki(2048, 'AQAC')],
      [
        'an EC P-256 key, not RSA',
        new Uint8Array(
          generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
            format: 'der',
            type: 'spki',
          }),
        ),
      ],
    ] as const) {
      const { exporter, wraps } = countingWraps(t.hsm);
      await expect(
        importHsmKey({
          keyport: t.keyport,
          hsm: exporter,
          hsmKey,
          target: { uri },
          manifestPath,
          importParameters: { ...real, wrappingPublicKey: weak },
        }),
        name,
      ).rejects.toMatchObject({ code: 'InvalidArgument', provider: 'byok' });
      expect(wraps(), name).toBe(0);
      expect((await t.keyport.describeKey(uri)).state).toBe('pending_import');
    }
    expect((await readManifest(manifestPath)).pairings).toEqual([]);
  });

  /** An RSA public key of `bits` bits, e = 65537: a random odd modulus (no primes are searched). */
  const hugeSpki = (bits: number): Uint8Array => {
    const n = randomBytes(bits / 8);
    n[0] = (n[0] as number) | 0x80;
    n[n.length - 1] = (n[n.length - 1] as number) | 1;
    return new Uint8Array(
      createPublicKey({
        key: { kty: 'RSA', n: n.toString('base64url'), e: 'AQAB' },
        format: 'jwk',
      }).export({ format: 'der', type: 'spki' }),
    );
  };

  it('a wrapping public key larger than any target hands out (RSA-8192 to RSA-65536) is refused before an HSM key is generated: nothing half-made, the same import then succeeds', async () => {
    const uri = await pendingLocal();
    const real = await t.keyport.getImportParameters(uri, { algorithm: 'RSAES_OAEP_SHA_1' });
    const name = uniqueName('root');
    const manifestPath = join(t.dir, 'huge.json');
    // Before: 16384 bits and more passed the check, the HSM generated the key, and C_WrapKey then
    // failed as Internal CKR_GENERAL_ERROR, leaving that key in the token and a generating entry.
    for (const bits of [8192, 16384, 32768, 65536]) {
      const { exporter, wraps } = countingWraps(t.hsm);
      await expect(
        importHsmKey({
          keyport: t.keyport,
          hsm: exporter,
          hsmKey: { create: { name } },
          target: { uri },
          manifestPath,
          importParameters: { ...real, wrappingPublicKey: hugeSpki(bits) },
        }),
        `RSA-${bits}`,
      ).rejects.toMatchObject({
        code: 'InvalidArgument',
        provider: 'byok',
        message: expect.stringContaining(`RSA-${bits}`),
      });
      expect(wraps(), `RSA-${bits}`).toBe(0);
      expect((await t.keyport.describeKey(uri)).state).toBe('pending_import');
      const made: string[] = [];
      for await (const k of t.keyport.listKeys('pkcs11')) if (k.uri.includes(name)) made.push(k.uri);
      expect(made, `RSA-${bits}`).toEqual([]);
    }
    expect(await readManifest(manifestPath)).toEqual({ format: 'keyport-byok-manifest/1', pairings: [] });
    // The target's own parameters (RSA-3072) are taken, and the name is free.
    const pairing = await importHsmKey({
      keyport: t.keyport,
      hsm: t.hsm,
      hsmKey: { create: { name } },
      target: { uri },
      manifestPath,
      importParameters: real,
    });
    expect(pairing.hsm.label).toBe(name);
  });

  it('given parameters that are refused do not leave a new HSM key behind: the same import then succeeds', async () => {
    const uri = await pendingLocal();
    const name = uniqueName('root');
    const manifestPath = join(t.dir, 'retry.json');
    const sha256 = await t.keyport.getImportParameters(uri, { algorithm: 'RSAES_OAEP_SHA_256' });
    const sha1 = await t.keyport.getImportParameters(uri, { algorithm: 'RSAES_OAEP_SHA_1' });
    for (const importParameters of [sha256, { ...sha1, expiresAt: new Date(Date.now() - 1000) }]) {
      await expect(
        importHsmKey({
          keyport: t.keyport,
          hsm: t.hsm,
          hsmKey: { create: { name } },
          target: { uri },
          manifestPath,
          importParameters,
        }),
      ).rejects.toMatchObject({ code: 'InvalidArgument', provider: 'byok' });
    }
    // Before: the first refusal came after C_GenerateKey, so the retry met AlreadyExists (and an
    // orphan extractable key sat in the token, paired with nothing).
    const pairing = await importHsmKey({
      keyport: t.keyport,
      hsm: t.hsm,
      hsmKey: { create: { name } },
      target: { uri },
      manifestPath,
    });
    expect(pairing.hsm.label).toBe(name);
    expect(await t.keyport.describeKey(uri)).toMatchObject({ state: 'enabled' });
  });
});

describe('importHsmKey review: the hsm option', () => {
  it('an hsm without wrapKeyForExport is InvalidArgument before anything is called', async () => {
    // Before: it passed the options check, the target was read and a new HSM key generated, and
    // only then did the wrap fail as a TypeError (not a KeyportError), leaving that key behind.
    const calls: string[] = [];
    const record = (name: string) => async (): Promise<never> => {
      calls.push(name);
      throw new Error(`${name} must not be reached`);
    };
    const keyport = {
      capabilities: () => ({ import: ['RSAES_OAEP_SHA_1'] }),
      describeKey: record('describeKey'),
      createKey: record('createKey'),
      getImportParameters: record('getImportParameters'),
      importKeyMaterial: record('importKeyMaterial'),
    } as unknown as KeyOperations;
    const error = await importHsmKey({
      keyport,
      hsm: { scheme: 'pkcs11', oaepHashes: ['sha1'] },
      hsmKey: { create: { name: 'root' } },
      target: { uri: 'aws-kms://arn:aws:kms:us-east-1:111122223333:key/k' },
      manifestPath: join(await tempDir(), 'manifest.json'),
    } as unknown as ImportHsmKeyOptions).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KeyportError);
    expect(error).toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('options.hsm') });
    expect(calls).toEqual([]);
  });
});
