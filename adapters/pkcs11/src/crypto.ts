/**
 * The cryptographic operations of the provider: pick the key version, then run the PKCS#11 steps
 * in mechanisms.ts on the borrowed session.
 */
import {
  assertContextBindable,
  type DataKeyRequest,
  type DataKeyResult,
  type DecryptResult,
  dataKeyLength,
  type EncryptRequest,
  type EncryptResult,
  encodeContext,
  KeyportError,
  type KeyRef,
  keyportError,
  type MacResult,
  SIGNING_ALGORITHMS_BY_SPEC,
  type SigningAlgorithm,
  type SignResult,
  signingAlgorithmFor,
} from '@keyport/core';
import type { OaepHash } from './capabilities.js';
import { FORMAT, readCiphertext } from './ciphertext.js';
import { invalidCiphertext } from './errors.js';
import { type KeyAccess, usableVersion } from './key-access.js';
import type { ResolvedKey } from './key-store.js';
import {
  decryptAesGcm,
  decryptRsaOaep,
  encryptAesGcm,
  encryptRsaOaep,
  hmac,
  signWith,
  tokenRandom,
  verifyHmac,
  verifyWith,
} from './mechanisms.js';
import type { Handle } from './p11.js';
import { checkEcPair } from './pairing.js';

export interface CryptoAccess extends KeyAccess {
  /** The OAEP hash RSA encryption uses. */
  readonly oaepHash: OaepHash | undefined;
}

function invalidUse(provider: string, keyUri: string): KeyportError {
  return new KeyportError('InvalidArgument', 'this key cannot do that', { provider, keyUri });
}

export function encrypt(
  p: CryptoAccess,
  ref: KeyRef,
  plaintext: Uint8Array,
  req: EncryptRequest,
  signal: AbortSignal | undefined,
): Promise<EncryptResult> {
  // Checked before any PKCS#11 call (the context's check is core's, in encodeContext).
  const aad = encodeContext(req.context);
  return p.withKey(ref, signal, (session, key, target) => {
    const { version, objects } = usableVersion(key, target, 'encrypt_decrypt', p.name);
    if (key.meta.spec === 'AES_256' && objects.secret !== undefined)
      return encryptAesGcm(p.p11, session, objects.secret, version, plaintext, aad);
    assertContextBindable(key.meta.spec, req.context, 'none', { provider: p.name, keyUri: ref.uri });
    if (objects.publicKey === undefined || p.oaepHash === undefined) throw invalidUse(p.name, ref.uri);
    // OAEP takes at most k − 2·hLen − 2 bytes. Checked here: SoftHSM2 2.6.1 answers a longer
    // plaintext with CKR_GENERAL_ERROR (Internal), not CKR_DATA_LEN_RANGE.
    const most = Number(key.meta.spec.slice(4)) / 8 - 2 * (p.oaepHash === 'sha1' ? 20 : 32) - 2;
    if (plaintext.length > most) {
      throw new KeyportError(
        'InvalidArgument',
        `RSA-OAEP under ${key.meta.spec} encrypts at most ${most} bytes (use an AES_256 key or envelope encryption)`,
        { provider: p.name, keyUri: ref.uri },
      );
    }
    return encryptRsaOaep(p.p11, session, objects.publicKey, version, p.oaepHash, plaintext).then(
      (ciphertext) => ({ ciphertext, keyVersion: String(version) }),
    );
  });
}

export function decrypt(
  p: CryptoAccess,
  ref: KeyRef,
  ciphertext: Uint8Array,
  req: EncryptRequest,
  signal: AbortSignal | undefined,
): Promise<DecryptResult> {
  const aad = encodeContext(req.context);
  const parsed = readCiphertext(ciphertext);
  return p.withKey(ref, signal, (session, key, target) => {
    if (parsed === undefined) throw invalidCiphertext(ref.uri, 'not a keyport PKCS#11 ciphertext');
    const aes = key.meta.spec === 'AES_256';
    if (aes !== (parsed.format === FORMAT.AES_GCM))
      throw invalidCiphertext(ref.uri, 'made for another key type');
    const { objects } = usableVersion(
      key,
      { ...target, version: parsed.version },
      'encrypt_decrypt',
      p.name,
      true,
    );
    if (aes) return decryptAesGcm(p.p11, session, objects.secret as Handle, parsed, aad, ref.uri);
    return decryptRsaOaep(p.p11, session, objects.privateKey as Handle, parsed, ref.uri, p.oaepHashes).then(
      (plaintext) => ({ plaintext, keyVersion: String(parsed.version) }),
    );
  });
}

/**
 * Data keys: random bytes from the token's RNG (C_GenerateRandom), sealed with AES-GCM under the
 * key like `encrypt` — not a C_GenerateKey + C_WrapKey pair: the caller needs the plaintext key
 * (reading it would need CKA_SENSITIVE false) and C_WrapKey has no AAD to bind the context.
 */
export function generateDataKey(
  p: CryptoAccess,
  ref: KeyRef,
  req: DataKeyRequest,
  signal: AbortSignal | undefined,
): Promise<DataKeyResult> {
  const bytes = dataKeyLength(req.bytes);
  const aad = encodeContext(req.context);
  return p.withKey(ref, signal, async (session, key, target) => {
    if (key.meta.spec !== 'AES_256') {
      throw keyportError('Unsupported', 'data keys need an AES_256 key', {
        provider: p.name,
        keyUri: ref.uri,
        capability: 'dataKeys',
      });
    }
    const { version, objects } = usableVersion(key, target, 'encrypt_decrypt', p.name);
    const plaintext = new Uint8Array(tokenRandom(p.p11, session, bytes));
    const sealed = await encryptAesGcm(p.p11, session, objects.secret as Handle, version, plaintext, aad);
    return { plaintext, wrapped: sealed.ciphertext, keyVersion: sealed.keyVersion };
  });
}

/**
 * The neutral rule picks the algorithm for the key's spec (the first one this module offers when
 * none is asked for); whether the module offers it is this token's fact.
 */
function algorithmFor(
  p: CryptoAccess,
  spec: ResolvedKey['meta']['spec'],
  requested: SigningAlgorithm | undefined,
  keyUri: string,
): SigningAlgorithm {
  const offered = p.capabilities.signingAlgorithms;
  const preferred = requested ?? SIGNING_ALGORITHMS_BY_SPEC[spec]?.find((a) => offered.includes(a));
  const algorithm = signingAlgorithmFor(spec, preferred, { provider: p.name, keyUri });
  if (!offered.includes(algorithm)) {
    throw keyportError('Unsupported', `this module does not offer ${algorithm}`, {
      provider: p.name,
      keyUri,
      capability: 'signingAlgorithms',
    });
  }
  return algorithm;
}

/** A sign or verify request as arguments.ts checked it (algorithm known, messageType exact). */
export interface CheckedSignRequest {
  readonly algorithm: SigningAlgorithm | undefined;
  readonly messageType: 'message' | 'digest';
}

export function sign(
  p: CryptoAccess,
  ref: KeyRef,
  message: Uint8Array,
  req: CheckedSignRequest,
  signal: AbortSignal | undefined,
): Promise<SignResult> {
  return p.withKey(ref, signal, async (session, key, target) => {
    const algorithm = algorithmFor(p, key.meta.spec, req.algorithm, ref.uri);
    const { version, objects } = usableVersion(key, target, 'sign_verify', p.name);
    await checkEcPair(p.p11, session, key, version, objects, p.name, ref.uri);
    const type = req.messageType;
    const signature = await signWith(p.p11, session, objects.privateKey as Handle, algorithm, message, type);
    return { signature, algorithm, keyVersion: String(version) };
  });
}

export function verify(
  p: CryptoAccess,
  ref: KeyRef,
  message: Uint8Array,
  signature: Uint8Array,
  req: CheckedSignRequest,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  return p.withKey(ref, signal, async (session, key, target) => {
    const algorithm = algorithmFor(p, key.meta.spec, req.algorithm, ref.uri);
    const { version, objects } = usableVersion(key, target, 'sign_verify', p.name);
    await checkEcPair(p.p11, session, key, version, objects, p.name, ref.uri);
    const type = req.messageType;
    return verifyWith(
      p.p11,
      session,
      objects.publicKey as Handle,
      key.meta.spec,
      algorithm,
      message,
      signature,
      type,
    );
  });
}

export function mac(
  p: CryptoAccess,
  ref: KeyRef,
  message: Uint8Array,
  signal: AbortSignal | undefined,
): Promise<MacResult> {
  return p.withKey(ref, signal, async (session, key, target) => {
    const { version, objects } = usableVersion(key, target, 'mac', p.name);
    return {
      mac: await hmac(p.p11, session, objects.secret as Handle, message),
      keyVersion: String(version),
    };
  });
}

export function verifyMac(
  p: CryptoAccess,
  ref: KeyRef,
  message: Uint8Array,
  mac: Uint8Array,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  return p.withKey(ref, signal, async (session, key, target) => {
    const { objects } = usableVersion(key, target, 'mac', p.name);
    return verifyHmac(p.p11, session, objects.secret as Handle, message, mac);
  });
}
