/**
 * The cryptographic operations of the provider: pick the key version, then run the PKCS#11 steps
 * in crypto-ops.ts on the borrowed session.
 */
import {
  type DataKeyRequest,
  type DataKeyResult,
  type DecryptResult,
  type EncryptRequest,
  type EncryptResult,
  encodeContext,
  KeyportError,
  type KeyRef,
  type MacResult,
  type ProviderCallOptions,
  type SigningAlgorithm,
  type SignRequest,
  type SignResult,
  UnsupportedError,
} from '@keyport/core';
import type { OaepHash } from './capabilities.js';
import { FORMAT, readCiphertext } from './ciphertext.js';
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
} from './crypto-ops.js';
import { invalidCiphertext } from './errors.js';
import { type KeyAccess, usableVersion } from './key-access.js';
import type { ResolvedKey } from './key-store.js';
import type { Handle } from './p11.js';

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
  o: ProviderCallOptions,
): Promise<EncryptResult> {
  const aad = encodeContext(req.context);
  return p.withKey(ref, o.signal, async (session, key, target) => {
    const { version, objects } = usableVersion(key, target, 'encrypt_decrypt', p.name);
    if (key.meta.spec === 'AES_256' && objects.secret !== undefined) {
      const ciphertext = await encryptAesGcm(p.p11, session, objects.secret, version, plaintext, aad);
      return { ciphertext, keyVersion: String(version) };
    }
    if (aad.length > 0) {
      throw new UnsupportedError('context', 'RSA-OAEP ciphertexts cannot bind an encryption context', {
        provider: p.name,
        keyUri: ref.uri,
      });
    }
    if (objects.publicKey === undefined || p.oaepHash === undefined) throw invalidUse(p.name, ref.uri);
    const ciphertext = await encryptRsaOaep(
      p.p11,
      session,
      objects.publicKey,
      version,
      p.oaepHash,
      plaintext,
    );
    return { ciphertext, keyVersion: String(version) };
  });
}

export function decrypt(
  p: CryptoAccess,
  ref: KeyRef,
  ciphertext: Uint8Array,
  req: EncryptRequest,
  o: ProviderCallOptions,
): Promise<DecryptResult> {
  const aad = encodeContext(req.context);
  const parsed = readCiphertext(ciphertext);
  return p.withKey(ref, o.signal, async (session, key, target) => {
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
    const plaintext = aes
      ? await decryptAesGcm(p.p11, session, objects.secret as Handle, parsed, aad, ref.uri)
      : await decryptRsaOaep(p.p11, session, objects.privateKey as Handle, parsed, ref.uri, p.oaepHashes);
    return { plaintext, keyVersion: String(parsed.version) };
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
  o: ProviderCallOptions,
): Promise<DataKeyResult> {
  const bytes = req.bytes ?? 32;
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > 1024) {
    throw new KeyportError('InvalidArgument', 'data keys are 1 to 1024 bytes', {
      provider: p.name,
      keyUri: ref.uri,
    });
  }
  const aad = encodeContext(req.context);
  return p.withKey(ref, o.signal, async (session, key, target) => {
    if (key.meta.spec !== 'AES_256') {
      throw new UnsupportedError('dataKeys', 'data keys need an AES_256 key', {
        provider: p.name,
        keyUri: ref.uri,
      });
    }
    const { version, objects } = usableVersion(key, target, 'encrypt_decrypt', p.name);
    const plaintext = new Uint8Array(tokenRandom(p.p11, session, bytes));
    const wrapped = await encryptAesGcm(p.p11, session, objects.secret as Handle, version, plaintext, aad);
    return { plaintext, wrapped, keyVersion: String(version) };
  });
}

function algorithmFor(
  p: CryptoAccess,
  spec: ResolvedKey['meta']['spec'],
  requested: SigningAlgorithm | undefined,
  uri: string,
) {
  const fitting: readonly SigningAlgorithm[] = spec.startsWith('RSA_')
    ? ['RSASSA_PSS_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_256']
    : spec === 'EC_P256'
      ? ['ECDSA_SHA_256']
      : spec === 'EC_P384'
        ? ['ECDSA_SHA_384']
        : [];
  const algorithm = requested ?? fitting.find((a) => p.capabilities.signingAlgorithms.includes(a));
  if (algorithm === undefined || !fitting.includes(algorithm)) {
    throw new KeyportError('InvalidArgument', `${requested ?? 'no algorithm'} does not fit a ${spec} key`, {
      provider: p.name,
      keyUri: uri,
    });
  }
  if (!p.capabilities.signingAlgorithms.includes(algorithm)) {
    throw new UnsupportedError('sign', `the module does not offer ${algorithm}`, {
      provider: p.name,
      keyUri: uri,
    });
  }
  return algorithm;
}

export function sign(
  p: CryptoAccess,
  ref: KeyRef,
  message: Uint8Array,
  req: SignRequest,
  o: ProviderCallOptions,
): Promise<SignResult> {
  return p.withKey(ref, o.signal, async (session, key, target) => {
    const algorithm = algorithmFor(p, key.meta.spec, req.algorithm, ref.uri);
    const { version, objects } = usableVersion(key, target, 'sign_verify', p.name);
    const type = req.messageType ?? 'message';
    const signature = await signWith(p.p11, session, objects.privateKey as Handle, algorithm, message, type);
    return { signature, algorithm, keyVersion: String(version) };
  });
}

export function verify(
  p: CryptoAccess,
  ref: KeyRef,
  message: Uint8Array,
  signature: Uint8Array,
  req: SignRequest & { algorithm: SigningAlgorithm },
  o: ProviderCallOptions,
): Promise<boolean> {
  return p.withKey(ref, o.signal, async (session, key, target) => {
    const algorithm = algorithmFor(p, key.meta.spec, req.algorithm, ref.uri);
    const { objects } = usableVersion(key, target, 'sign_verify', p.name);
    const type = req.messageType ?? 'message';
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
  o: ProviderCallOptions,
): Promise<MacResult> {
  return p.withKey(ref, o.signal, async (session, key, target) => {
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
  o: ProviderCallOptions,
): Promise<boolean> {
  return p.withKey(ref, o.signal, async (session, key, target) => {
    const { objects } = usableVersion(key, target, 'mac', p.name);
    return verifyHmac(p.p11, session, objects.secret as Handle, message, mac);
  });
}
