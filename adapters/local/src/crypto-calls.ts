/**
 * The cryptographic operations of the provider: each checks caller, usage, state and
 * version, then runs the primitive on decoded material and wipes it.
 */
import { randomBytes } from 'node:crypto';
import {
  type DataKeyRequest,
  type DataKeyResult,
  type DecryptResult,
  type EncryptRequest,
  type EncryptResult,
  encodeContext,
  FRAME_MECHANISMS,
  type KeyRef,
  type KeyUsage,
  type MacResult,
  type SigningAlgorithm,
  type SignRequest,
  type SignResult,
  UnsupportedError,
} from '@keyport/core';
import { DATA_KEY_BYTES, LOCAL_CAPABILITIES } from './capabilities.js';
import { parseCiphertext } from './ciphertext.js';
import {
  aesGcmDecrypt,
  aesGcmEncrypt,
  hmacEquals,
  hmacSha256,
  rsaDecrypt,
  rsaEncrypt,
  signingAlgorithmFor,
  signMessage,
  verifyMessage,
} from './crypto-ops.js';
import { labelled, localError, PROVIDER_NAME } from './errors.js';
import type { KeyInUse, KeystoreAccess } from './key-access.js';
import { publicKeyDer } from './key-material.js';
import { requireState, usableVersion } from './key-state.js';
import type { StoredVersion } from './model.js';

function requireUsage(use: KeyInUse, usage: KeyUsage, op: string): void {
  if (use.key.usage !== usage) {
    throw localError(
      'InvalidArgument',
      `${op} needs a ${usage} key; this key is ${use.key.usage}`,
      use.ref.uri,
    );
  }
}

/** Runs `fn` on the version's decoded material, then wipes the decoded copy. */
function withMaterial<T>(version: StoredVersion, fn: (material: Buffer) => T): T {
  const material = Buffer.from(version.material ?? '', 'base64');
  try {
    return fn(material);
  } finally {
    material.fill(0);
  }
}

function encryptWith(use: KeyInUse, plaintext: Uint8Array, aad: Uint8Array): EncryptResult {
  requireState(use.key, use.now, ['enabled'], use.ref.uri, 'encrypt');
  const version = usableVersion(use.key, use.ref.version, use.ref.uri);
  const ciphertext = withMaterial(version, (m) =>
    use.key.spec === 'AES_256'
      ? aesGcmEncrypt(m, version.version, plaintext, aad)
      : rsaEncrypt(m, version.version, plaintext, aad, use.ref.uri),
  );
  return { ciphertext, keyVersion: String(version.version) };
}

export async function encrypt(
  access: KeystoreAccess,
  ref: KeyRef,
  plaintext: Uint8Array,
  req: EncryptRequest,
  signal: AbortSignal,
): Promise<EncryptResult> {
  const aad = labelled(ref.uri, () => encodeContext(req.context));
  const use = await access.useKey(ref, signal, 'encrypt', req.context);
  requireUsage(use, 'encrypt_decrypt', 'encrypt');
  return encryptWith(use, plaintext, aad);
}

export async function decrypt(
  access: KeystoreAccess,
  ref: KeyRef,
  ciphertext: Uint8Array,
  req: EncryptRequest,
  signal: AbortSignal,
): Promise<DecryptResult> {
  const aad = labelled(ref.uri, () => encodeContext(req.context));
  const use = await access.useKey(ref, signal, 'decrypt', req.context);
  requireUsage(use, 'encrypt_decrypt', 'decrypt');
  requireState(use.key, use.now, ['enabled'], use.ref.uri, 'decrypt');
  const parsed = parseCiphertext(ciphertext, use.ref.uri);
  const expected =
    use.key.spec === 'AES_256' ? FRAME_MECHANISMS.AES_256_GCM : FRAME_MECHANISMS.RSA_OAEP_SHA_256;
  const notOurs = (why: string) =>
    localError('InvalidCiphertext', `ciphertext is not valid for this key (${why})`, use.ref.uri);
  if (parsed.mechanism !== expected) throw notOurs('made by another key type');
  if (use.ref.version !== undefined && use.ref.version !== parsed.version)
    throw notOurs('made by another version');
  if (!use.key.versions.some((v) => v.version === parsed.version)) throw notOurs('names an unknown version');
  const version = usableVersion(use.key, parsed.version, use.ref.uri);
  const plaintext = withMaterial(version, (m) =>
    parsed.mechanism === FRAME_MECHANISMS.AES_256_GCM
      ? aesGcmDecrypt(m, parsed, aad, use.ref.uri)
      : rsaDecrypt(m, parsed, aad, use.ref.uri),
  );
  return { plaintext, keyVersion: String(version.version) };
}

export async function generateDataKey(
  access: KeystoreAccess,
  ref: KeyRef,
  req: DataKeyRequest,
  signal: AbortSignal,
): Promise<DataKeyResult> {
  const bytes = req.bytes ?? DATA_KEY_BYTES.default;
  if (!Number.isInteger(bytes) || bytes < DATA_KEY_BYTES.min || bytes > DATA_KEY_BYTES.max) {
    throw localError(
      'InvalidArgument',
      `data keys are ${DATA_KEY_BYTES.min}-${DATA_KEY_BYTES.max} bytes`,
      ref.uri,
    );
  }
  const aad = labelled(ref.uri, () => encodeContext(req.context));
  const use = await access.useKey(ref, signal, 'generate_data_key', req.context);
  requireUsage(use, 'encrypt_decrypt', 'generateDataKey');
  const plaintext = randomBytes(bytes);
  try {
    const { ciphertext, keyVersion } = encryptWith(use, plaintext, aad);
    return { plaintext, wrapped: ciphertext, keyVersion };
  } catch (error) {
    plaintext.fill(0);
    throw error;
  }
}

function signingAlgorithm(use: KeyInUse, requested: SigningAlgorithm | undefined): SigningAlgorithm {
  const native = signingAlgorithmFor(use.key.spec);
  const algorithm = requested ?? native;
  if (algorithm === undefined || native === undefined) {
    throw localError('InvalidArgument', `a ${use.key.spec} key cannot sign`, use.ref.uri);
  }
  if (!LOCAL_CAPABILITIES.signingAlgorithms.includes(algorithm)) {
    throw new UnsupportedError('signingAlgorithms', `the local provider does not offer ${algorithm}`, {
      provider: PROVIDER_NAME,
      keyUri: use.ref.uri,
    });
  }
  if (algorithm !== native) {
    throw localError(
      'InvalidArgument',
      `${algorithm} does not match a ${use.key.spec} key (use ${native})`,
      use.ref.uri,
    );
  }
  return algorithm;
}

function checkMessageType(req: SignRequest, uri: string): void {
  if (req.messageType === 'digest') {
    // node:crypto has no prehashed RSA-PSS/ECDSA signing; refusing beats hashing twice.
    throw new UnsupportedError('signDigest', 'the local provider signs messages, not precomputed digests', {
      provider: PROVIDER_NAME,
      keyUri: uri,
    });
  }
}

export async function sign(
  access: KeystoreAccess,
  ref: KeyRef,
  message: Uint8Array,
  req: SignRequest,
  signal: AbortSignal,
): Promise<SignResult> {
  const use = await access.useKey(ref, signal, 'sign');
  requireUsage(use, 'sign_verify', 'sign');
  checkMessageType(req, use.ref.uri);
  const algorithm = signingAlgorithm(use, req.algorithm);
  requireState(use.key, use.now, ['enabled'], use.ref.uri, 'sign');
  const version = usableVersion(use.key, use.ref.version, use.ref.uri);
  const signature = withMaterial(version, (m) => signMessage(m, algorithm, message));
  return { signature, algorithm, keyVersion: String(version.version) };
}

/** Verifies with the pinned version, or the primary one when none is pinned. */
export async function verify(
  access: KeystoreAccess,
  ref: KeyRef,
  message: Uint8Array,
  signature: Uint8Array,
  req: SignRequest & { algorithm: SigningAlgorithm },
  signal: AbortSignal,
): Promise<boolean> {
  const use = await access.useKey(ref, signal, 'verify');
  requireUsage(use, 'sign_verify', 'verify');
  checkMessageType(req, use.ref.uri);
  const algorithm = signingAlgorithm(use, req.algorithm);
  requireState(use.key, use.now, ['enabled'], use.ref.uri, 'verify');
  const version = usableVersion(use.key, use.ref.version, use.ref.uri);
  return withMaterial(version, (m) => verifyMessage(m, algorithm, message, signature));
}

/** The SPKI DER public key of a signing or RSA encryption key version (owner or a `verify` grant). */
export async function getPublicKey(
  access: KeystoreAccess,
  ref: KeyRef,
  signal: AbortSignal,
): Promise<Uint8Array> {
  const use = await access.useKey(ref, signal, 'verify');
  if (use.key.spec === 'AES_256' || use.key.spec === 'HMAC_256') {
    throw localError('InvalidArgument', `a ${use.key.spec} key has no public key`, use.ref.uri);
  }
  requireState(use.key, use.now, ['enabled', 'disabled'], use.ref.uri, 'getPublicKey');
  const version = usableVersion(use.key, use.ref.version, use.ref.uri);
  return withMaterial(version, publicKeyDer);
}

export async function mac(
  access: KeystoreAccess,
  ref: KeyRef,
  message: Uint8Array,
  signal: AbortSignal,
): Promise<MacResult> {
  const use = await access.useKey(ref, signal, 'mac');
  requireUsage(use, 'mac', 'mac');
  requireState(use.key, use.now, ['enabled'], use.ref.uri, 'mac');
  const version = usableVersion(use.key, use.ref.version, use.ref.uri);
  return { mac: withMaterial(version, (m) => hmacSha256(m, message)), keyVersion: String(version.version) };
}

/** Verifies with the pinned version, or the primary one when none is pinned. */
export async function verifyMac(
  access: KeystoreAccess,
  ref: KeyRef,
  message: Uint8Array,
  tag: Uint8Array,
  signal: AbortSignal,
): Promise<boolean> {
  const use = await access.useKey(ref, signal, 'verify_mac');
  requireUsage(use, 'mac', 'verifyMac');
  requireState(use.key, use.now, ['enabled'], use.ref.uri, 'verifyMac');
  const version = usableVersion(use.key, use.ref.version, use.ref.uri);
  return withMaterial(version, (m) => hmacEquals(hmacSha256(m, message), tag));
}
