/**
 * AsymmetricSign (always over a digest keyport computes or is given), local verification under
 * the version's public key (Cloud KMS has no asymmetric Verify), and MacSign/MacVerify, with the
 * CRC32C integrity fields checked both ways.
 */
import { constants, createHash, verify as nodeVerify } from 'node:crypto';
import {
  KeyportError,
  type KeyRef,
  type MacResult,
  type ProviderCallOptions,
  type SigningAlgorithm,
  type SignRequest,
  type SignResult,
  UnsupportedError,
} from '@keyport/core';
import { GCP_KMS_CAPABILITIES } from './capabilities.js';
import { crc32c, int64Value, own, toBytes } from './crc32c.js';
import { integrityError } from './errors.js';
import { type KeyTarget, targetOf, versionIdOf, versionName } from './names.js';
import type { VersionCache } from './public-keys.js';
import type { Rpc } from './rpc.js';
import { type AlgorithmInfo, describeAlgorithm } from './specs.js';

const checksum = (data: Uint8Array) => ({ value: crc32c(data) });
const DIGEST_LENGTH = { sha256: 32, sha384: 48, sha512: 64, sha1: 20 } as const;

export class SigningService {
  constructor(
    private readonly rpc: Rpc,
    private readonly versions: VersionCache,
  ) {}

  /** The version's signing algorithm, checked against the one asked for. */
  private signingInfo(
    t: KeyTarget,
    algorithm: string,
    requested: SigningAlgorithm | undefined,
  ): AlgorithmInfo & { signing: SigningAlgorithm; hash: 'sha256' | 'sha384' | 'sha512' | 'sha1' } {
    refuseUndeclared(t, requested);
    const info = describeAlgorithm(algorithm);
    if (info.signing === undefined || info.hash === undefined) {
      throw new KeyportError('InvalidArgument', 'the key is not a signing key', { keyUri: t.uri });
    }
    if (requested !== undefined && requested !== info.signing) {
      throw new KeyportError(
        'InvalidArgument',
        `the key version signs with ${info.signing}, not ${requested}`,
        { keyUri: t.uri },
      );
    }
    return { ...info, signing: info.signing, hash: info.hash };
  }

  async sign(
    ref: KeyRef,
    message: Uint8Array,
    req: SignRequest,
    o: ProviderCallOptions,
  ): Promise<SignResult> {
    const t = targetOf(ref);
    refuseUndeclared(t, req.algorithm); // before any call
    const { id, algorithm } = await this.versions.resolve(t, o);
    const info = this.signingInfo(t, algorithm, req.algorithm);
    let digest: Uint8Array;
    if (req.messageType === 'digest') {
      if (message.length !== DIGEST_LENGTH[info.hash]) {
        throw new KeyportError(
          'InvalidArgument',
          `a ${info.hash} digest is ${DIGEST_LENGTH[info.hash]} bytes`,
          { keyUri: t.uri },
        );
      }
      digest = message;
    } else {
      digest = createHash(info.hash).update(message).digest();
    }
    const name = versionName(t.keyName, id);
    const request = { name, digest: { [info.hash]: own(digest) }, digestCrc32c: checksum(digest) };
    const res = await this.rpc.call(o, (co, kms) => kms.asymmetricSign(request, co), {
      keyUri: t.uri,
    });
    const signature = toBytes(res.signature);
    if (res.verifiedDigestCrc32c !== true)
      throw integrityError('Cloud KMS did not verify the digest checksum');
    if (int64Value(res.signatureCrc32c) !== crc32c(signature)) throw integrityError('signature');
    if (res.name && res.name !== name) throw integrityError('the signature came from another key version');
    return { signature, algorithm: info.signing, keyVersion: id };
  }

  async verify(
    ref: KeyRef,
    message: Uint8Array,
    signature: Uint8Array,
    req: SignRequest & { algorithm: SigningAlgorithm },
    o: ProviderCallOptions,
  ): Promise<boolean> {
    const t = targetOf(ref);
    refuseUndeclared(t, req.algorithm);
    if (req.messageType === 'digest') {
      throw new UnsupportedError(
        'verifyDigest',
        'keyport verifies Cloud KMS signatures over the message, not a digest',
        { keyUri: t.uri },
      );
    }
    const { id } = await this.versions.resolve(t, o);
    const pub = await this.versions.publicKey(t, id, o);
    const info = this.signingInfo(t, pub.algorithm, req.algorithm);
    try {
      if (info.signing === 'RSASSA_PSS_SHA_256') {
        // Cloud KMS signs RSA-PSS with a salt as long as the digest.
        return nodeVerify(
          info.hash,
          message,
          { key: pub.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: DIGEST_LENGTH[info.hash] },
          signature,
        );
      }
      return nodeVerify(info.hash, message, pub.key, signature);
    } catch {
      return false; // a malformed signature is a signature that does not verify
    }
  }

  /** SPKI DER of a version's public key (the pinned version, or the current one). */
  async getPublicKey(ref: KeyRef, o: ProviderCallOptions): Promise<Uint8Array> {
    const t = targetOf(ref);
    const { id } = await this.versions.resolve(t, o);
    return (await this.versions.publicKey(t, id, o)).spki;
  }

  async mac(ref: KeyRef, message: Uint8Array, o: ProviderCallOptions): Promise<MacResult> {
    const t = targetOf(ref);
    const { id } = await this.versions.resolve(t, o);
    const request = { name: versionName(t.keyName, id), data: own(message), dataCrc32c: checksum(message) };
    const res = await this.rpc.call(o, (co, kms) => kms.macSign(request, co), { keyUri: t.uri });
    const mac = toBytes(res.mac);
    if (res.verifiedDataCrc32c !== true) throw integrityError('Cloud KMS did not verify the data checksum');
    if (int64Value(res.macCrc32c) !== crc32c(mac)) throw integrityError('MAC');
    return { mac, keyVersion: versionIdOf(res.name) ?? id };
  }

  async verifyMac(
    ref: KeyRef,
    message: Uint8Array,
    mac: Uint8Array,
    o: ProviderCallOptions,
  ): Promise<boolean> {
    const t = targetOf(ref);
    const { id } = await this.versions.resolve(t, o);
    const request = {
      name: versionName(t.keyName, id),
      data: own(message),
      dataCrc32c: checksum(message),
      mac: own(mac),
      macCrc32c: checksum(mac),
    };
    const res = await this.rpc.call(o, (co, kms) => kms.macVerify(request, co), { keyUri: t.uri });
    if (res.verifiedDataCrc32c !== true || res.verifiedMacCrc32c !== true) {
      throw integrityError('Cloud KMS did not verify the request checksums');
    }
    // verified_success_integrity: the service vouches that `success` arrived as it was sent.
    if (res.verifiedSuccessIntegrity !== true) throw integrityError('MacVerify result');
    return res.success === true;
  }
}

function refuseUndeclared(t: KeyTarget, algorithm: SigningAlgorithm | undefined): void {
  if (algorithm !== undefined && !GCP_KMS_CAPABILITIES.signingAlgorithms.includes(algorithm)) {
    throw new UnsupportedError('signingAlgorithms', `keyport does not sign with ${algorithm} on Cloud KMS`, {
      keyUri: t.uri,
    });
  }
}
