/**
 * The cryptographic steps on one borrowed session, each Init followed by the *Async call so the
 * work runs on a libuv thread, not the event loop. No abort checks between an Init and its
 * operation: an abandoned Init would leave the session with an active operation.
 */
import { createHash } from 'node:crypto';
import { KeyportError, type KeySpec, type SigningAlgorithm } from '@keyport/core';
import type { GcmParams, RsaPSS } from 'pkcs11js';
import { type OaepHash, oaepMechanism } from './capabilities.js';
import {
  FORMAT,
  frameHeader,
  GCM_IV_BYTES,
  GCM_TAG_BYTES,
  type ParsedCiphertext,
  writeCiphertext,
} from './ciphertext.js';
import { CURVES, ecdsaDerToRaw, ecdsaRawToDer, SHA256_DIGEST_INFO } from './der.js';
import { asDecryptFailure, invalidCiphertext, PROVIDER_NAME } from './errors.js';
import { ckrOf, type Handle, type Mechanism, P, type Pkcs11 } from './p11.js';

function gcm(iv: Buffer, aad: Uint8Array): Mechanism {
  const parameter: GcmParams = { type: P.CK_PARAMS_GCM, iv, ivBits: GCM_IV_BYTES * 8, tagBits: 128 };
  if (aad.length > 0) parameter.aad = Buffer.from(aad);
  return { mechanism: P.CKM_AES_GCM, parameter };
}

/** `bytes` from the token's RNG (a fresh 96-bit IV, a data key). */
export function tokenRandom(p11: Pkcs11, session: Handle, bytes: number): Buffer {
  return p11.C_GenerateRandom(session, Buffer.alloc(bytes));
}

/** A Buffer over the same memory (pkcs11js takes Buffers; copying key material leaves copies behind). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Seals under `key` with a fresh token IV. The frame is one allocation: the token writes the IV
 * and the sealed bytes into it in place (no copies, as few allocations as a bare call's).
 */
export function encryptAesGcm(
  p11: Pkcs11,
  session: Handle,
  key: Handle,
  version: number,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Promise<{ ciphertext: Uint8Array; keyVersion: string }> {
  const header = frameHeader(FORMAT.AES_GCM, version);
  const sealedAt = header.length + GCM_IV_BYTES;
  const frame = Buffer.alloc(sealedAt + plaintext.length + GCM_TAG_BYTES);
  frame.set(header);
  const iv = p11.C_GenerateRandom(session, frame.subarray(header.length, sealedAt));
  p11.C_EncryptInit(session, gcm(iv, aad), key);
  return p11.C_EncryptAsync(session, asBuffer(plaintext), frame.subarray(sealedAt)).then((sealed) => {
    if (sealed.length !== plaintext.length + GCM_TAG_BYTES)
      throw new KeyportError('Internal', 'the module returned an AES-GCM result of the wrong length', {
        provider: PROVIDER_NAME,
      });
    return {
      ciphertext: new Uint8Array(frame.buffer, frame.byteOffset, frame.length),
      keyVersion: String(version),
    };
  });
}

export function decryptAesGcm(
  p11: Pkcs11,
  session: Handle,
  key: Handle,
  parsed: ParsedCiphertext,
  aad: Uint8Array,
  keyUri: string,
): Promise<{ plaintext: Uint8Array; keyVersion: string }> {
  const iv = parsed.body.subarray(0, GCM_IV_BYTES);
  const sealed = parsed.body.subarray(GCM_IV_BYTES);
  p11.C_DecryptInit(session, gcm(iv, aad), key);
  // Room for the tag too: SoftHSM answers CKR_BUFFER_TOO_SMALL to a plaintext-sized output. The
  // plaintext is a view of its first bytes (the rest stays zero).
  return p11.C_DecryptAsync(session, sealed, Buffer.alloc(sealed.length)).then(
    (plaintext) => ({
      plaintext: new Uint8Array(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength),
      keyVersion: String(parsed.version),
    }),
    (e: unknown) => {
      throw asDecryptFailure(e, keyUri);
    },
  );
}

export async function encryptRsaOaep(
  p11: Pkcs11,
  session: Handle,
  publicKey: Handle,
  version: number,
  hash: OaepHash,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  p11.C_EncryptInit(session, oaepMechanism(hash), publicKey);
  const block = await p11.C_EncryptAsync(session, Buffer.from(plaintext), Buffer.alloc(1024));
  return writeCiphertext(hash === 'sha1' ? FORMAT.RSA_OAEP_SHA1 : FORMAT.RSA_OAEP_SHA256, version, block);
}

export async function decryptRsaOaep(
  p11: Pkcs11,
  session: Handle,
  privateKey: Handle,
  parsed: ParsedCiphertext,
  keyUri: string,
  accepted: readonly OaepHash[],
): Promise<Uint8Array> {
  const hash: OaepHash = parsed.format === FORMAT.RSA_OAEP_SHA1 ? 'sha1' : 'sha256';
  if (!accepted.includes(hash)) throw invalidCiphertext(keyUri, 'made with an OAEP hash this module lacks');
  const [bits] = p11.C_GetAttributeValue(session, privateKey, [{ type: P.CKA_MODULUS }]);
  // A block of the wrong length is refused here, before the module sees it.
  if (bits !== undefined && bits.value.length !== parsed.body.length) {
    throw invalidCiphertext(keyUri, 'wrong length for this key');
  }
  p11.C_DecryptInit(session, oaepMechanism(hash), privateKey);
  try {
    return new Uint8Array(await p11.C_DecryptAsync(session, parsed.body, Buffer.alloc(parsed.body.length)));
  } catch (e) {
    throw asDecryptFailure(e, keyUri);
  }
}

function pss(mechanism: number): Mechanism {
  const parameter: RsaPSS = {
    type: P.CK_PARAMS_RSA_PSS,
    hashAlg: P.CKM_SHA256,
    mgf: P.CKG_MGF1_SHA256,
    saltLen: 32,
  };
  return { mechanism, parameter };
}

const digestBytes = (algorithm: SigningAlgorithm): number => (algorithm === 'ECDSA_SHA_384' ? 48 : 32);

/**
 * The mechanism and the bytes to feed it. Messages go to the combined RSA mechanisms (the module
 * hashes); digests and all ECDSA input go to the raw mechanisms (SoftHSM2 has no CKM_ECDSA_SHA256,
 * so keyport hashes for ECDSA — hashing is public computation).
 */
function signingInput(
  algorithm: SigningAlgorithm,
  data: Uint8Array,
  messageType: 'message' | 'digest',
): { mechanism: Mechanism; input: Buffer } {
  const isDigest = messageType === 'digest';
  if (isDigest && data.length !== digestBytes(algorithm)) {
    throw new KeyportError('InvalidArgument', `a ${algorithm} digest is ${digestBytes(algorithm)} bytes`, {
      provider: PROVIDER_NAME,
    });
  }
  switch (algorithm) {
    case 'RSASSA_PSS_SHA_256':
      return isDigest
        ? { mechanism: pss(P.CKM_RSA_PKCS_PSS), input: Buffer.from(data) }
        : { mechanism: pss(P.CKM_SHA256_RSA_PKCS_PSS), input: Buffer.from(data) };
    case 'RSASSA_PKCS1_V1_5_SHA_256':
      return isDigest
        ? { mechanism: { mechanism: P.CKM_RSA_PKCS }, input: Buffer.concat([SHA256_DIGEST_INFO, data]) }
        : { mechanism: { mechanism: P.CKM_SHA256_RSA_PKCS }, input: Buffer.from(data) };
    case 'ECDSA_SHA_256':
    case 'ECDSA_SHA_384': {
      const hash = algorithm === 'ECDSA_SHA_256' ? 'sha256' : 'sha384';
      const digest = isDigest ? Buffer.from(data) : createHash(hash).update(data).digest();
      return { mechanism: { mechanism: P.CKM_ECDSA }, input: digest };
    }
  }
}

export async function signWith(
  p11: Pkcs11,
  session: Handle,
  privateKey: Handle,
  algorithm: SigningAlgorithm,
  data: Uint8Array,
  messageType: 'message' | 'digest',
): Promise<Uint8Array> {
  const { mechanism, input } = signingInput(algorithm, data, messageType);
  p11.C_SignInit(session, mechanism, privateKey);
  const signature = await p11.C_SignAsync(session, input, Buffer.alloc(1024));
  return new Uint8Array(algorithm.startsWith('ECDSA') ? ecdsaRawToDer(signature) : signature);
}

const SIGNATURE_REFUSALS = new Set([P.CKR_SIGNATURE_INVALID, P.CKR_SIGNATURE_LEN_RANGE]);

async function verifyOnToken(
  p11: Pkcs11,
  session: Handle,
  key: Handle,
  mechanism: Mechanism,
  input: Buffer,
  signature: Buffer,
): Promise<boolean> {
  p11.C_VerifyInit(session, mechanism, key);
  try {
    return await p11.C_VerifyAsync(session, input, signature);
  } catch (e) {
    const code = ckrOf(e);
    if (code !== undefined && SIGNATURE_REFUSALS.has(code)) return false;
    throw e;
  }
}

export function verifyWith(
  p11: Pkcs11,
  session: Handle,
  publicKey: Handle,
  spec: KeySpec,
  algorithm: SigningAlgorithm,
  data: Uint8Array,
  signature: Uint8Array,
  messageType: 'message' | 'digest',
): Promise<boolean> {
  const { mechanism, input } = signingInput(algorithm, data, messageType);
  let sig: Buffer = Buffer.from(signature);
  if (algorithm.startsWith('ECDSA')) {
    const raw = ecdsaDerToRaw(signature, CURVES[spec === 'EC_P384' ? 'EC_P384' : 'EC_P256'].size);
    if (raw === undefined) return Promise.resolve(false);
    sig = raw;
  }
  return verifyOnToken(p11, session, publicKey, mechanism, input, sig);
}

const HMAC: Mechanism = { mechanism: P.CKM_SHA256_HMAC };

export async function hmac(
  p11: Pkcs11,
  session: Handle,
  key: Handle,
  message: Uint8Array,
): Promise<Uint8Array> {
  p11.C_SignInit(session, HMAC, key);
  return new Uint8Array(await p11.C_SignAsync(session, Buffer.from(message), Buffer.alloc(64)));
}

export function verifyHmac(
  p11: Pkcs11,
  session: Handle,
  key: Handle,
  message: Uint8Array,
  mac: Uint8Array,
): Promise<boolean> {
  return verifyOnToken(p11, session, key, HMAC, Buffer.from(message), Buffer.from(mac));
}
