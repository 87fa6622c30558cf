/**
 * The cryptography itself, on material the caller decoded (and wipes afterwards). Every
 * failure to open is InvalidCiphertext with a fixed message: which check failed (tag,
 * context, padding) is not revealed.
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPublicKey,
  sign as nodeSign,
  verify as nodeVerify,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import {
  FRAME_MECHANISMS,
  GCM_IV_BYTES as IV_LEN,
  type SigningAlgorithm,
  secretKey,
  GCM_TAG_BYTES as TAG_LEN,
} from '@keyport/core';
import { frameCiphertext, type ParsedCiphertext } from './ciphertext.js';
import { localError } from './errors.js';
import { privateKeyFrom } from './key-material.js';

function openFailed(keyUri: string): never {
  throw localError(
    'InvalidCiphertext',
    'ciphertext cannot be decrypted: wrong key, altered bytes or a different context',
    keyUri,
  );
}

export function aesGcmEncrypt(key: Buffer, version: number, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const iv = randomBytes(IV_LEN);
  const cipher = createCipheriv('aes-256-gcm', secretKey(key), iv);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return frameCiphertext(FRAME_MECHANISMS.AES_256_GCM, version, iv, ct, cipher.getAuthTag());
}

export function aesGcmDecrypt(
  key: Buffer,
  parsed: ParsedCiphertext,
  aad: Uint8Array,
  keyUri: string,
): Buffer {
  const { payload } = parsed;
  const iv = payload.subarray(0, IV_LEN);
  const tag = payload.subarray(payload.length - TAG_LEN);
  const decipher = createDecipheriv('aes-256-gcm', secretKey(key), iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const plain = decipher.update(payload.subarray(IV_LEN, payload.length - TAG_LEN));
  try {
    decipher.final();
  } catch {
    plain.fill(0);
    openFailed(keyUri);
  }
  return plain;
}

function oaep(label: Uint8Array): { padding: number; oaepHash: string; oaepLabel?: Buffer } {
  return {
    padding: constants.RSA_PKCS1_OAEP_PADDING,
    oaepHash: 'sha256',
    ...(label.length > 0 ? { oaepLabel: Buffer.from(label) } : {}),
  };
}

export function rsaEncrypt(
  material: Buffer,
  version: number,
  plaintext: Uint8Array,
  label: Uint8Array,
  keyUri: string,
): Buffer {
  const publicKey = createPublicKey(privateKeyFrom(material));
  const modulusBytes = (publicKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
  // RSAES-OAEP with SHA-256 carries at most k - 2·32 - 2 bytes.
  if (plaintext.length > modulusBytes - 66) {
    throw localError(
      'InvalidArgument',
      `plaintext too long for RSA-OAEP (max ${modulusBytes - 66} bytes)`,
      keyUri,
    );
  }
  const ct = publicEncrypt({ key: publicKey, ...oaep(label) }, plaintext);
  return frameCiphertext(FRAME_MECHANISMS.RSA_OAEP_SHA_256, version, ct);
}

export function rsaDecrypt(
  material: Buffer,
  parsed: ParsedCiphertext,
  label: Uint8Array,
  keyUri: string,
): Buffer {
  try {
    return privateDecrypt({ key: privateKeyFrom(material), ...oaep(label) }, parsed.payload);
  } catch {
    return openFailed(keyUri);
  }
}

function signParams(algorithm: SigningAlgorithm): { hash: string; pss: boolean } {
  return {
    hash: algorithm === 'ECDSA_SHA_384' ? 'sha384' : 'sha256',
    pss: algorithm === 'RSASSA_PSS_SHA_256',
  };
}

/** RSA-PSS uses MGF1 with the same hash and a 32-byte salt (as AWS KMS and GCP KMS do); ECDSA is DER. */
export function signMessage(material: Buffer, algorithm: SigningAlgorithm, message: Uint8Array): Buffer {
  const { hash, pss } = signParams(algorithm);
  const key = privateKeyFrom(material);
  return pss
    ? nodeSign(hash, message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
    : nodeSign(hash, message, { key, dsaEncoding: 'der' });
}

export function verifyMessage(
  material: Buffer,
  algorithm: SigningAlgorithm,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  const { hash, pss } = signParams(algorithm);
  const key = createPublicKey(privateKeyFrom(material));
  try {
    return pss
      ? nodeVerify(
          hash,
          message,
          { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
          signature,
        )
      : nodeVerify(hash, message, { key, dsaEncoding: 'der' }, signature);
  } catch {
    return false; // malformed signature bytes
  }
}

export function hmacSha256(key: Buffer, message: Uint8Array): Buffer {
  return createHmac('sha256', secretKey(key)).update(message).digest();
}

export function hmacEquals(expected: Buffer, given: Uint8Array): boolean {
  return expected.length === given.length && timingSafeEqual(expected, given);
}
