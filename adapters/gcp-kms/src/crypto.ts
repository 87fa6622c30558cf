/**
 * Encrypt/decrypt and data keys. Symmetric keys use Encrypt/Decrypt with the context as
 * additional authenticated data (core's canonical encoding) and CRC32C on every field both ways;
 * RSA keys encrypt locally under the version's public key (Cloud KMS has no asymmetric Encrypt)
 * and decrypt with AsymmetricDecrypt. Results name the version (see frame.ts).
 */
import { constants, publicEncrypt } from 'node:crypto';
import {
  type DecryptResult,
  type EncryptRequest,
  type EncryptResult,
  encodeContext,
  KeyportError,
  type KeyRef,
  type ProviderCallOptions,
  UnsupportedError,
} from '@keyport/core';
import { crc32c, int64Value, own, toBytes } from './crc32c.js';
import { integrityError } from './errors.js';
import { frame, unframe } from './frame.js';
import { purposeOf } from './key-info.js';
import type { KeyService } from './keys.js';
import { type KeyTarget, targetOf, versionIdOf, versionName } from './names.js';
import type { VersionCache } from './public-keys.js';
import type { Rpc } from './rpc.js';
import { describeAlgorithm } from './specs.js';

const checksum = (data: Uint8Array) => ({ value: crc32c(data) });

export class CryptoService {
  /** Keys known to be ASYMMETRIC_DECRYPT (purpose never changes), learnt on first use. */
  private readonly asymmetric = new Set<string>();

  constructor(
    private readonly rpc: Rpc,
    private readonly keys: KeyService,
    private readonly versions: VersionCache,
  ) {}

  async encrypt(
    ref: KeyRef,
    plaintext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<EncryptResult> {
    const t = targetOf(ref);
    if (this.asymmetric.has(t.keyName)) return this.encryptAsymmetric(t, plaintext, req, o);
    try {
      return await this.encryptSymmetric(t, plaintext, req, o);
    } catch (e) {
      if (await this.isAsymmetric(e, t, o)) return this.encryptAsymmetric(t, plaintext, req, o);
      throw e;
    }
  }

  async decrypt(
    ref: KeyRef,
    ciphertext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<DecryptResult> {
    const t = targetOf(ref);
    const framed = unframe(ciphertext);
    if (framed?.kind === 2 || this.asymmetric.has(t.keyName))
      return this.decryptAsymmetric(t, ciphertext, req, o);
    try {
      return await this.decryptSymmetric(t, framed?.body ?? ciphertext, framed?.version, req, o);
    } catch (e) {
      if (await this.isAsymmetric(e, t, o)) return this.decryptAsymmetric(t, ciphertext, req, o);
      throw e;
    }
  }

  /** After a FAILED_PRECONDITION: is the key an RSA decryption key (learnt once, then remembered)? */
  private async isAsymmetric(e: unknown, t: KeyTarget, o: ProviderCallOptions): Promise<boolean> {
    if (!(e instanceof KeyportError && e.code === 'KeyStateConflict')) return false;
    let key: Awaited<ReturnType<KeyService['getKey']>>;
    try {
      key = await this.keys.getKey(t, o);
    } catch {
      return false; // the original error says more than a failed lookup
    }
    if (purposeOf(key) !== 'ASYMMETRIC_DECRYPT') return false;
    this.asymmetric.add(t.keyName);
    return true;
  }

  private async encryptSymmetric(
    t: KeyTarget,
    plaintext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<EncryptResult> {
    const aad = encodeContext(req.context);
    const request = {
      name: t.version === undefined ? t.keyName : versionName(t.keyName, t.version),
      plaintext: own(plaintext),
      plaintextCrc32c: checksum(plaintext),
      ...(aad.length > 0
        ? { additionalAuthenticatedData: aad, additionalAuthenticatedDataCrc32c: checksum(aad) }
        : {}),
    };
    const res = await this.rpc.call(o, (co, kms) => kms.encrypt(request, co), { keyUri: t.uri });
    const ciphertext = toBytes(res.ciphertext);
    if (res.verifiedPlaintextCrc32c !== true)
      throw integrityError('Cloud KMS did not verify the plaintext checksum');
    if (aad.length > 0 && res.verifiedAdditionalAuthenticatedDataCrc32c !== true) {
      throw integrityError('Cloud KMS did not verify the AAD checksum');
    }
    if (int64Value(res.ciphertextCrc32c) !== crc32c(ciphertext)) throw integrityError('ciphertext');
    const keyVersion = versionIdOf(res.name);
    return { ciphertext: frame(1, keyVersion, ciphertext), keyVersion };
  }

  private async decryptSymmetric(
    t: KeyTarget,
    body: Uint8Array,
    version: string | undefined,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<DecryptResult> {
    const aad = encodeContext(req.context);
    const request = {
      name: t.keyName,
      ciphertext: own(body),
      ciphertextCrc32c: checksum(body),
      ...(aad.length > 0
        ? { additionalAuthenticatedData: aad, additionalAuthenticatedDataCrc32c: checksum(aad) }
        : {}),
    };
    const res = await this.rpc.call(o, (co, kms) => kms.decrypt(request, co), {
      keyUri: t.uri,
      op: 'decrypt',
    });
    const plaintext = toBytes(res.plaintext);
    if (int64Value(res.plaintextCrc32c) !== crc32c(plaintext)) throw integrityError('plaintext');
    return { plaintext, keyVersion: version };
  }

  private async encryptAsymmetric(
    t: KeyTarget,
    plaintext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<EncryptResult> {
    refuseContext(req, t);
    const { id } = await this.versions.resolve(t, o);
    const pub = await this.versions.publicKey(t, id, o);
    const hash = describeAlgorithm(pub.algorithm).hash ?? 'sha256';
    let ciphertext: Buffer;
    try {
      ciphertext = publicEncrypt(
        { key: pub.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash },
        plaintext,
      );
    } catch {
      throw new KeyportError('InvalidArgument', 'the plaintext is too long for this RSA key', {
        keyUri: t.uri,
      });
    }
    return { ciphertext: frame(2, id, ciphertext), keyVersion: id };
  }

  private async decryptAsymmetric(
    t: KeyTarget,
    ciphertext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<DecryptResult> {
    refuseContext(req, t);
    const framed = unframe(ciphertext);
    const body = framed?.kind === 2 ? framed.body : ciphertext;
    const id = (framed?.kind === 2 ? framed.version : undefined) ?? (await this.versions.resolve(t, o)).id;
    const request = {
      name: versionName(t.keyName, id),
      ciphertext: own(body),
      ciphertextCrc32c: checksum(body),
    };
    const res = await this.rpc.call(o, (co, kms) => kms.asymmetricDecrypt(request, co), {
      keyUri: t.uri,
      op: 'decrypt',
    });
    const plaintext = toBytes(res.plaintext);
    if (res.verifiedCiphertextCrc32c !== true)
      throw integrityError('Cloud KMS did not verify the ciphertext checksum');
    if (int64Value(res.plaintextCrc32c) !== crc32c(plaintext)) throw integrityError('plaintext');
    return { plaintext, keyVersion: id };
  }
}

/** RSA-OAEP in Cloud KMS takes no label, so a context could not be bound: refuse it, never drop it. */
function refuseContext(req: EncryptRequest, t: KeyTarget): void {
  if (req.context !== undefined && Object.keys(req.context).length > 0) {
    throw new UnsupportedError('context', 'Cloud KMS RSA decryption keys cannot bind an encryption context', {
      keyUri: t.uri,
    });
  }
}
