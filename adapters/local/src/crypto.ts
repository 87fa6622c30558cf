/**
 * The cryptographic operations of the provider: each checks caller, usage, state and
 * version, then runs the primitive on decoded material and wipes it.
 */
import { randomBytes } from 'node:crypto';
import {
  checkBytes,
  type DataKeyRequest,
  type DataKeyResult,
  type DecryptResult,
  dataKeyLength,
  type EncryptRequest,
  type EncryptResult,
  encodeContext,
  FRAME_MECHANISMS,
  type KeyRef,
  type KeyUsage,
  keyportError,
  type MacResult,
  type SigningAlgorithm,
  type SignRequest,
  type SignResult,
  signingAlgorithmFor,
} from '@keyport/core';
import { contextArg, keyRefArg, signArg } from './arguments.js';
import { parseCiphertext } from './ciphertext.js';
import { labelled, localError, PROVIDER_NAME } from './errors.js';
import type { KeyInUse, KeystoreAccess } from './key-access.js';
import { publicKeyDer } from './key-material.js';
import { requireState, usableVersion } from './key-state.js';
import type { StoredVersion } from './model.js';
import {
  aesGcmDecrypt,
  aesGcmEncrypt,
  hmacEquals,
  hmacSha256,
  rsaDecrypt,
  rsaEncrypt,
  signMessage,
  verifyMessage,
} from './primitives.js';

function checkBytesArg(value: unknown, option: string, ref: KeyRef): void {
  labelled(ref.uri, () => checkBytes(value, option));
}

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
  givenRef: KeyRef,
  plaintext: Uint8Array,
  req: EncryptRequest,
  signal: AbortSignal | undefined,
): Promise<EncryptResult> {
  const ref = keyRefArg(givenRef);
  checkBytesArg(plaintext, 'plaintext', ref);
  const context = contextArg(req, ref.uri);
  const aad = labelled(ref.uri, () => encodeContext(context));
  const use = await access.useKey(ref, signal, 'encrypt', context);
  requireUsage(use, 'encrypt_decrypt', 'encrypt');
  return encryptWith(use, plaintext, aad);
}

export async function decrypt(
  access: KeystoreAccess,
  givenRef: KeyRef,
  ciphertext: Uint8Array,
  req: EncryptRequest,
  signal: AbortSignal | undefined,
): Promise<DecryptResult> {
  const ref = keyRefArg(givenRef);
  checkBytesArg(ciphertext, 'ciphertext', ref);
  const context = contextArg(req, ref.uri);
  const aad = labelled(ref.uri, () => encodeContext(context));
  const use = await access.useKey(ref, signal, 'decrypt', context);
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
  givenRef: KeyRef,
  req: DataKeyRequest,
  signal: AbortSignal | undefined,
): Promise<DataKeyResult> {
  const ref = keyRefArg(givenRef);
  const context = contextArg(req, ref.uri);
  const bytes = labelled(ref.uri, () => dataKeyLength(req.bytes));
  const aad = labelled(ref.uri, () => encodeContext(context));
  const use = await access.useKey(ref, signal, 'generate_data_key', context);
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

/** The neutral rule (core) picks the algorithm for the key's spec; core refused undeclared ones. */
function signingAlgorithm(use: KeyInUse, requested: SigningAlgorithm | undefined): SigningAlgorithm {
  return signingAlgorithmFor(use.key.spec, requested, { provider: PROVIDER_NAME, keyUri: use.ref.uri });
}

function checkMessageType(req: SignRequest, uri: string): void {
  if (req.messageType === 'digest') {
    // node:crypto has no prehashed RSA-PSS/ECDSA signing; refusing beats hashing twice.
    throw keyportError('Unsupported', 'the local provider signs messages, not precomputed digests', {
      provider: PROVIDER_NAME,
      keyUri: uri,
      capability: 'signDigest',
    });
  }
}

export async function sign(
  access: KeystoreAccess,
  givenRef: KeyRef,
  message: Uint8Array,
  given: SignRequest,
  signal: AbortSignal | undefined,
): Promise<SignResult> {
  const ref = keyRefArg(givenRef);
  checkBytesArg(message, 'message', ref);
  const req = signArg(given, ref.uri);
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
  givenRef: KeyRef,
  message: Uint8Array,
  signature: Uint8Array,
  given: SignRequest & { algorithm: SigningAlgorithm },
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const ref = keyRefArg(givenRef);
  checkBytesArg(message, 'message', ref);
  const req = signArg(given, ref.uri);
  if (req.algorithm === undefined)
    throw localError('InvalidArgument', 'req.algorithm: verify needs the signing algorithm', ref.uri);
  checkBytesArg(signature, 'signature', ref);
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
  givenRef: KeyRef,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  const ref = keyRefArg(givenRef);
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
  givenRef: KeyRef,
  message: Uint8Array,
  signal: AbortSignal | undefined,
): Promise<MacResult> {
  const ref = keyRefArg(givenRef);
  checkBytesArg(message, 'message', ref);
  const use = await access.useKey(ref, signal, 'mac');
  requireUsage(use, 'mac', 'mac');
  requireState(use.key, use.now, ['enabled'], use.ref.uri, 'mac');
  const version = usableVersion(use.key, use.ref.version, use.ref.uri);
  return { mac: withMaterial(version, (m) => hmacSha256(m, message)), keyVersion: String(version.version) };
}

/** Verifies with the pinned version, or the primary one when none is pinned. */
export async function verifyMac(
  access: KeystoreAccess,
  givenRef: KeyRef,
  message: Uint8Array,
  tag: Uint8Array,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const ref = keyRefArg(givenRef);
  checkBytesArg(message, 'message', ref);
  checkBytesArg(tag, 'mac', ref);
  const use = await access.useKey(ref, signal, 'verify_mac');
  requireUsage(use, 'mac', 'verifyMac');
  requireState(use.key, use.now, ['enabled'], use.ref.uri, 'verifyMac');
  const version = usableVersion(use.key, use.ref.version, use.ref.uri);
  return withMaterial(version, (m) => hmacEquals(hmacSha256(m, message), tag));
}
