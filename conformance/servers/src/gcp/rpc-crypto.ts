import { randomBytes } from 'node:crypto';
import { type AlgorithmSpec, algorithmSpec, isPqc, type Purpose } from './algorithms.js';
import { open, seal, versionOf } from './ciphertext.js';
import type { CallContext, Handler } from './context.js';
import { PERMISSION } from './iam-roles.js';
import {
  constantTimeEqual,
  decapsulateWith,
  hmac,
  oaepDecrypt,
  publicKeyDer,
  publicKeyNistPqc,
  publicKeyPem,
  signWith,
} from './key-material.js';
import type { CryptoKeyRecord, VersionRecord } from './model.js';
import { parseCryptoKey, parseKeyOrVersion, parseLocation, parseVersion } from './names.js';
import { invalid, precondition } from './rpc-error.js';
import { checksum, type Int64Value, verifyChecksum } from './wire.js';

// The cryptographic RPCs. Each checks, in the service's order: the name, the caller's
// permission, that the key exists, the key's purpose (FAILED_PRECONDITION), the version's state
// (FAILED_PRECONDITION unless ENABLED), the request checksums (INVALID_ARGUMENT), then runs.
const MAX_DATA = 64 * 1024;
const MAX_HSM_COMBINED = 8 * 1024;
// "When you use a Cloud HSM key, the maximum file size for which you can create a MAC signature is
// 16 KiB. For all other keys, the maximum file size is 64 KiB." (Creating and validating MAC
// digital signatures, cloud.google.com/kms/docs/create-validate-mac-signatures)
const MAX_HSM_MAC_DATA = 16 * 1024;

interface Usable {
  key: CryptoKeyRecord;
  version: VersionRecord;
  spec: AlgorithmSpec;
}

function usable(
  ctx: CallContext,
  keyName: string,
  version: VersionRecord | undefined,
  purpose: Purpose,
): Usable {
  const key = ctx.state.cryptoKey(keyName);
  if (key.purpose !== purpose) {
    throw precondition(`${key.name} has purpose ${key.purpose}; this operation requires ${purpose}.`);
  }
  if (!version) throw precondition(`${key.name} has no primary version.`);
  if (version.state !== 'ENABLED' || !version.material) {
    throw precondition(`${version.name} is not enabled, current state is: ${version.state}.`);
  }
  return { key, version, spec: algorithmSpec(version.algorithm)! };
}

function usableVersion(
  ctx: CallContext,
  name: string | undefined,
  purpose: Purpose,
  permission: string,
): Usable {
  const { key, versionId } = parseVersion('name', name);
  ctx.authorize(key, permission);
  return usable(ctx, key, ctx.state.version(key, versionId).version, purpose);
}

function required(field: string, data: Buffer | undefined): Buffer {
  if (!data || data.length === 0) throw invalid(`${field} is required.`);
  return data;
}

function checkSize(field: string, data: Buffer): void {
  if (data.length > MAX_DATA) throw invalid(`${field} must be no larger than 64KiB.`);
}

function checkMacSize(data: Buffer, version: VersionRecord): void {
  checkSize('data', data);
  if (version.protectionLevel === 'HSM' && data.length > MAX_HSM_MAC_DATA)
    throw invalid('data must be no larger than 16KiB for HSM keys.');
}

interface EncryptRequest {
  name?: string;
  plaintext?: Buffer;
  additionalAuthenticatedData?: Buffer;
  plaintextCrc32c?: Int64Value | null;
  additionalAuthenticatedDataCrc32c?: Int64Value | null;
}
interface DecryptRequest {
  name?: string;
  ciphertext?: Buffer;
  additionalAuthenticatedData?: Buffer;
  ciphertextCrc32c?: Int64Value | null;
  additionalAuthenticatedDataCrc32c?: Int64Value | null;
}
interface SignRequest {
  name?: string;
  digest?: { sha256?: Buffer; sha384?: Buffer; sha512?: Buffer; externalMu?: Buffer; digest?: string } | null;
  digestCrc32c?: Int64Value | null;
  data?: Buffer;
  dataCrc32c?: Int64Value | null;
}

export const cryptoHandlers: Record<string, Handler> = {
  Encrypt(request, ctx) {
    const req = request as EncryptRequest;
    const target = parseKeyOrVersion('name', req.name);
    ctx.authorize(target.key, PERMISSION.encrypt);
    const key = ctx.state.cryptoKey(target.key);
    const version =
      target.versionId === undefined
        ? key.primaryId === undefined
          ? undefined
          : key.versions.get(key.primaryId)
        : ctx.state.version(target.key, target.versionId).version;
    const { spec } = usable(ctx, target.key, version, 'ENCRYPT_DECRYPT');
    const plaintext = required('plaintext', req.plaintext);
    const aad = req.additionalAuthenticatedData ?? Buffer.alloc(0);
    checkSize('plaintext', plaintext);
    checkSize('additional_authenticated_data', aad);
    if (version!.protectionLevel === 'HSM' && plaintext.length + aad.length > MAX_HSM_COMBINED) {
      throw invalid(
        'The combined length of plaintext and additional_authenticated_data must be no larger than 8KiB for HSM keys.',
      );
    }
    const verifiedPlaintext = verifyChecksum('plaintext_crc32c', 'plaintext', plaintext, req.plaintextCrc32c);
    const verifiedAad = verifyChecksum(
      'additional_authenticated_data_crc32c',
      'additional_authenticated_data',
      aad,
      req.additionalAuthenticatedDataCrc32c,
    );
    if (spec.kind !== 'aes-256-gcm' || version!.material?.kind !== 'secret') throw new Error('unreachable');
    const ciphertext = seal(key.name, version!.id, version!.material.key, plaintext, aad);
    return {
      name: version!.name,
      ciphertext,
      ciphertextCrc32c: checksum(ciphertext),
      verifiedPlaintextCrc32c: verifiedPlaintext,
      verifiedAdditionalAuthenticatedDataCrc32c: verifiedAad,
      protectionLevel: version!.protectionLevel,
    };
  },

  Decrypt(request, ctx) {
    const req = request as DecryptRequest;
    const { key: keyName } = parseCryptoKey('name', req.name);
    ctx.authorize(keyName, PERMISSION.decrypt);
    const key = ctx.state.cryptoKey(keyName);
    const ciphertext = required('ciphertext', req.ciphertext);
    const aad = req.additionalAuthenticatedData ?? Buffer.alloc(0);
    verifyChecksum('ciphertext_crc32c', 'ciphertext', ciphertext, req.ciphertextCrc32c);
    verifyChecksum(
      'additional_authenticated_data_crc32c',
      'additional_authenticated_data',
      aad,
      req.additionalAuthenticatedDataCrc32c,
    );
    if (key.purpose !== 'ENCRYPT_DECRYPT') usable(ctx, keyName, undefined, 'ENCRYPT_DECRYPT');
    const versionId = versionOf(ciphertext);
    const version = versionId === undefined ? undefined : key.versions.get(versionId);
    if (!version) throw invalid('Decryption failed: the ciphertext is invalid.');
    usable(ctx, keyName, version, 'ENCRYPT_DECRYPT');
    if (version.material?.kind !== 'secret') throw new Error('unreachable');
    const plaintext = open(key.name, version.material.key, ciphertext, aad);
    if (!plaintext) throw invalid("Decryption failed: verify that 'name' refers to the correct CryptoKey.");
    return {
      plaintext,
      plaintextCrc32c: checksum(plaintext),
      usedPrimary: key.primaryId === version.id,
      protectionLevel: version.protectionLevel,
    };
  },

  GetPublicKey(request, ctx) {
    const req = request as { name?: string; publicKeyFormat?: string };
    const { key, versionId } = parseVersion('name', req.name);
    ctx.authorize(key, PERMISSION.viewPublicKey);
    const record = ctx.state.cryptoKey(key);
    const { version } = ctx.state.version(key, versionId);
    if (
      record.purpose !== 'ASYMMETRIC_SIGN' &&
      record.purpose !== 'ASYMMETRIC_DECRYPT' &&
      record.purpose !== 'KEY_ENCAPSULATION'
    ) {
      throw precondition(
        `${record.name} has purpose ${record.purpose}; only asymmetric keys have a public key.`,
      );
    }
    const { version: v, spec } = usable(ctx, key, version, record.purpose);
    const format = req.publicKeyFormat ?? 'PUBLIC_KEY_FORMAT_UNSPECIFIED';
    // The API returns the version's own resource name here (clients compare it with the request).
    const base = { name: v.name, algorithm: v.algorithm, protectionLevel: v.protectionLevel };
    if (isPqc(spec)) {
      // Post-quantum keys come only as NIST_PQC, and the format must be named (no PEM default).
      if (format === 'PUBLIC_KEY_FORMAT_UNSPECIFIED')
        throw invalid(`public_key_format must be specified for algorithm ${v.algorithm}.`);
      if (format !== 'NIST_PQC')
        throw invalid(`public_key_format ${format} is not valid for ${v.algorithm}.`);
      const data = publicKeyNistPqc(v.material!);
      return { ...base, publicKeyFormat: format, publicKey: { data, crc32cChecksum: checksum(data) } };
    }
    const pem = publicKeyPem(v.material!);
    if (format === 'PUBLIC_KEY_FORMAT_UNSPECIFIED') {
      return { ...base, pem, pemCrc32c: checksum(Buffer.from(pem)) };
    }
    if (format !== 'PEM' && format !== 'DER')
      throw invalid(`public_key_format ${format} is not valid for ${v.algorithm}.`);
    const data = format === 'PEM' ? Buffer.from(pem) : publicKeyDer(v.material!);
    return { ...base, publicKeyFormat: format, publicKey: { data, crc32cChecksum: checksum(data) } };
  },

  AsymmetricSign(request, ctx) {
    const req = request as SignRequest;
    const { version, spec } = usableVersion(ctx, req.name, 'ASYMMETRIC_SIGN', PERMISSION.sign);
    const field = req.digest?.digest;
    const digest =
      field === undefined ? undefined : req.digest?.[field as 'sha256' | 'sha384' | 'sha512' | 'externalMu'];
    const data = req.data && req.data.length > 0 ? req.data : undefined;
    if (digest !== undefined && data !== undefined)
      throw invalid('Only one of digest and data may be supplied.');
    const takesData = spec.kind === 'ed25519' || spec.kind === 'rsa-raw-pkcs1' || spec.kind === 'pqc-sign';
    let verifiedDigest = false;
    let verifiedData = false;
    let input: Buffer;
    if (digest !== undefined) {
      if (takesData) throw invalid(`Algorithm ${version.algorithm} signs data, not a digest.`);
      const expected = 'hash' in spec ? spec.hash : undefined;
      const lengths: Record<string, number> = { sha256: 32, sha384: 48, sha512: 64 };
      if (field !== expected || digest.length !== lengths[field ?? '']) {
        throw invalid(
          `The digest must be a ${expected?.toUpperCase()} digest for algorithm ${version.algorithm}.`,
        );
      }
      verifiedDigest = verifyChecksum('digest_crc32c', 'digest', digest, req.digestCrc32c);
      input = digest;
    } else {
      if (data === undefined) throw invalid('One of digest or data must be supplied.');
      checkSize('data', data);
      if (spec.kind === 'rsa-raw-pkcs1' && data.length > spec.bits / 8 - 11)
        throw invalid('data is too long for the key size.');
      verifiedData = verifyChecksum('data_crc32c', 'data', data, req.dataCrc32c);
      input = data;
    }
    const signature = signWith(spec, version.material!, input, digest !== undefined);
    return {
      signature,
      signatureCrc32c: checksum(signature),
      verifiedDigestCrc32c: verifiedDigest,
      verifiedDataCrc32c: verifiedData,
      name: version.name,
      protectionLevel: version.protectionLevel,
    };
  },

  AsymmetricDecrypt(request, ctx) {
    const req = request as { name?: string; ciphertext?: Buffer; ciphertextCrc32c?: Int64Value | null };
    const { version, spec } = usableVersion(ctx, req.name, 'ASYMMETRIC_DECRYPT', PERMISSION.decrypt);
    const ciphertext = required('ciphertext', req.ciphertext);
    const verified = verifyChecksum('ciphertext_crc32c', 'ciphertext', ciphertext, req.ciphertextCrc32c);
    let plaintext: Buffer;
    try {
      plaintext = oaepDecrypt(spec, version.material!, ciphertext);
    } catch {
      throw invalid('Decryption failed: the ciphertext is invalid.');
    }
    return {
      plaintext,
      plaintextCrc32c: checksum(plaintext),
      verifiedCiphertextCrc32c: verified,
      protectionLevel: version.protectionLevel,
    };
  },

  Decapsulate(request, ctx) {
    const req = request as { name?: string; ciphertext?: Buffer; ciphertextCrc32c?: Int64Value | null };
    const { version, spec } = usableVersion(ctx, req.name, 'KEY_ENCAPSULATION', PERMISSION.decapsulate);
    const ciphertext = required('ciphertext', req.ciphertext);
    const verified = verifyChecksum('ciphertext_crc32c', 'ciphertext', ciphertext, req.ciphertextCrc32c);
    const sharedSecret = decapsulateWith(spec, version.material!, ciphertext);
    return {
      name: version.name,
      sharedSecret,
      // A plain `optional int64` here, not an Int64Value wrapper as elsewhere.
      sharedSecretCrc32c: checksum(sharedSecret).value,
      verifiedCiphertextCrc32c: verified,
      protectionLevel: version.protectionLevel,
    };
  },

  MacSign(request, ctx) {
    const req = request as { name?: string; data?: Buffer; dataCrc32c?: Int64Value | null };
    const { version, spec } = usableVersion(ctx, req.name, 'MAC', PERMISSION.sign);
    const data = req.data ?? Buffer.alloc(0);
    checkMacSize(data, version);
    const verified = verifyChecksum('data_crc32c', 'data', data, req.dataCrc32c);
    const mac = hmac(spec, version.material!, data);
    return {
      name: version.name,
      mac,
      macCrc32c: checksum(mac),
      verifiedDataCrc32c: verified,
      protectionLevel: version.protectionLevel,
    };
  },

  MacVerify(request, ctx) {
    const req = request as {
      name?: string;
      data?: Buffer;
      dataCrc32c?: Int64Value | null;
      mac?: Buffer;
      macCrc32c?: Int64Value | null;
    };
    const { version, spec } = usableVersion(ctx, req.name, 'MAC', PERMISSION.verify);
    const data = req.data ?? Buffer.alloc(0);
    checkMacSize(data, version);
    const mac = required('mac', req.mac);
    const verifiedData = verifyChecksum('data_crc32c', 'data', data, req.dataCrc32c);
    const verifiedMac = verifyChecksum('mac_crc32c', 'mac', mac, req.macCrc32c);
    const success = constantTimeEqual(hmac(spec, version.material!, data), mac);
    return {
      name: version.name,
      success,
      verifiedDataCrc32c: verifiedData,
      verifiedMacCrc32c: verifiedMac,
      // Mirrors `success` (clients discard a response where the two disagree).
      verifiedSuccessIntegrity: success,
      protectionLevel: version.protectionLevel,
    };
  },

  GenerateRandomBytes(request, ctx) {
    const req = request as { location?: string; lengthBytes?: number; protectionLevel?: string };
    const location = parseLocation('location', req.location);
    ctx.authorize(location, PERMISSION.random);
    const length = req.lengthBytes ?? 0;
    if (length < 8 || length > 1024) throw invalid('length_bytes must be between 8 and 1024.');
    if (req.protectionLevel !== 'HSM') throw invalid('Only protection_level HSM is supported.');
    const data = randomBytes(length);
    return { data, dataCrc32c: checksum(data) };
  },
};
