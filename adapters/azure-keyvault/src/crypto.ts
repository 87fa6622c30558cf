/**
 * Encrypt, decrypt, data keys, sign, verify and public keys. Every cryptographic operation is
 * done by the vault (see Vaults.crypto), except the AES-256-GCM layer that binds the context to
 * RSA ciphertexts, which keyport does with a fresh content key the vault wraps (ciphertext.ts).
 */
import { createHash, createPublicKey } from 'node:crypto';
import type { KeyVaultKey, SignatureAlgorithm } from '@azure/keyvault-keys';
import {
  type DecryptResult,
  type EncryptRequest,
  type EncryptResult,
  encodeContext,
  FRAME_MECHANISMS,
  KeyportError,
  type KeySpec,
  openBoundToContext,
  type ProviderCallOptions,
  type SigningAlgorithm,
  type SignRequest,
  type SignResult,
  sealBoundToContext,
  UnsupportedError,
  writeFrame,
} from '@keyport/core';
import { formatCiphertext, IV_BYTES, MODE_HSM_GCM, parseCiphertext, TAG_BYTES } from './ciphertext.js';
import { derToRaw, rawToDer } from './ecdsa-signature.js';
import { PROVIDER_NAME, requestIdOf, statusOf } from './errors.js';
import { specOf } from './specs.js';
import { type ResolvedKey, type Vaults, versionOfKid } from './vaults.js';

/** What the crypto operations need: the vaults, and how to explain a 404 (keys.ts). */
export interface CryptoRuntime {
  readonly vaults: Vaults;
  /** The key's spec (cached per key name: rotation keeps type and size). */
  specOf(key: ResolvedKey, o: ProviderCallOptions): Promise<KeySpec>;
  /** Turns a 404 from a key operation into NotFound, KeyStateConflict (soft-deleted) or InvalidCiphertext. */
  explainMissing(
    key: ResolvedKey,
    error: unknown,
    decrypting: boolean,
    o: ProviderCallOptions,
  ): Promise<never>;
}

/** Captures the `kid` the vault answered with: it names the version a versionless call used. */
function kidCapture(): {
  onResponse: (raw: { parsedBody?: unknown }) => void;
  version: () => string | undefined;
} {
  let kid: string | undefined;
  return {
    onResponse: (raw) => {
      const body = raw.parsedBody as { kid?: unknown } | undefined;
      if (typeof body?.kid === 'string') kid = body.kid;
    },
    version: () => versionOfKid(kid),
  };
}

function answeredVersion(key: ResolvedKey, captured: string | undefined): string {
  const version = key.version ?? captured;
  if (version === undefined) {
    throw new KeyportError('Internal', 'the vault answered without naming the key version', {
      provider: PROVIDER_NAME,
    });
  }
  return version;
}

/** Runs a key operation; a 404 is explained, anything else is left to mapError. */
async function guarded<T>(
  rt: CryptoRuntime,
  key: ResolvedKey,
  decrypting: boolean,
  o: ProviderCallOptions,
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (statusOf(e) === 404) return rt.explainMissing(key, e, decrypting, o);
    // A ciphertext the vault cannot decrypt (bad padding, tag, size) is answered 400 BadParameter.
    if (decrypting && statusOf(e) === 400) {
      throw new KeyportError('InvalidCiphertext', 'the vault could not decrypt the ciphertext', {
        provider: PROVIDER_NAME,
        requestId: requestIdOf(e),
        cause: e,
      });
    }
    throw e;
  }
}

function badCiphertext(): KeyportError {
  return new KeyportError('InvalidCiphertext', 'the ciphertext or its encryption context is not authentic', {
    provider: PROVIDER_NAME,
  });
}

export async function encrypt(
  rt: CryptoRuntime,
  key: ResolvedKey,
  plaintext: Uint8Array,
  req: EncryptRequest,
  o: ProviderCallOptions,
): Promise<EncryptResult> {
  const aad = encodeContext(req.context);
  const spec = await rt.specOf(key, o);
  const client = await rt.vaults.crypto(key);
  const kid = kidCapture();
  if (spec === 'AES_256') {
    const out = await guarded(rt, key, false, o, () =>
      client.encrypt(
        {
          algorithm: 'A256GCM',
          plaintext,
          ...(aad.length > 0 ? { additionalAuthenticatedData: aad } : {}),
        },
        { abortSignal: o.signal, onResponse: kid.onResponse },
      ),
    );
    if (out.iv?.length !== IV_BYTES || out.authenticationTag?.length !== TAG_BYTES) {
      throw new KeyportError('Internal', 'the HSM answered A256GCM without a 12-byte IV and 16-byte tag', {
        provider: PROVIDER_NAME,
      });
    }
    const version = answeredVersion(key, kid.version());
    const ciphertext = formatCiphertext({
      mode: MODE_HSM_GCM,
      version,
      iv: out.iv,
      ciphertext: out.result,
      tag: out.authenticationTag,
    });
    return { ciphertext, keyVersion: version };
  }
  if (!spec.startsWith('RSA_')) {
    throw new KeyportError('InvalidArgument', `${spec} keys do not encrypt`, { provider: PROVIDER_NAME });
  }
  const body = await sealBoundToContext(plaintext, req.context, async (contentKey) => {
    const wrapped = await guarded(rt, key, false, o, () =>
      client.wrapKey('RSA-OAEP-256', contentKey, { abortSignal: o.signal, onResponse: kid.onResponse }),
    );
    return wrapped.result;
  });
  const version = answeredVersion(key, kid.version());
  return {
    ciphertext: writeFrame(FRAME_MECHANISMS.WRAPPED_KEY_AES_256_GCM, version, body),
    keyVersion: version,
  };
}

export async function decrypt(
  rt: CryptoRuntime,
  key: ResolvedKey,
  bytes: Uint8Array,
  req: EncryptRequest,
  o: ProviderCallOptions,
): Promise<DecryptResult> {
  const aad = encodeContext(req.context);
  const parsed = parseCiphertext(bytes);
  // The ciphertext names its version; a ref pinned to another version cannot have made it.
  if (key.version !== undefined && key.version !== parsed.version) throw badCiphertext();
  const at: ResolvedKey = { ...key, version: parsed.version };
  const client = await rt.vaults.crypto(at);
  if (parsed.mode === MODE_HSM_GCM) {
    const out = await guarded(rt, at, true, o, () =>
      client.decrypt(
        {
          algorithm: 'A256GCM',
          ciphertext: parsed.ciphertext,
          iv: parsed.iv,
          authenticationTag: parsed.tag,
          ...(aad.length > 0 ? { additionalAuthenticatedData: aad } : {}),
        },
        { abortSignal: o.signal },
      ),
    );
    return { plaintext: new Uint8Array(out.result), keyVersion: parsed.version };
  }
  // The first format's hybrid body is the bound body of core's emulated-context.ts.
  const plaintext = await openBoundToContext(
    parsed.body ?? new Uint8Array(0),
    req.context,
    async (wrappedKey) => {
      const unwrapped = await guarded(rt, at, true, o, () =>
        client.unwrapKey('RSA-OAEP-256', wrappedKey, { abortSignal: o.signal }),
      );
      return unwrapped.result;
    },
  ).catch((e: unknown) => {
    throw e instanceof KeyportError && e.code === 'InvalidCiphertext' ? badCiphertext() : e;
  });
  return { plaintext, keyVersion: parsed.version };
}

const AZURE_ALGORITHMS: Record<SigningAlgorithm, { alg: SignatureAlgorithm; hash: 'sha256' | 'sha384' }> = {
  RSASSA_PSS_SHA_256: { alg: 'PS256', hash: 'sha256' },
  RSASSA_PKCS1_V1_5_SHA_256: { alg: 'RS256', hash: 'sha256' },
  ECDSA_SHA_256: { alg: 'ES256', hash: 'sha256' },
  ECDSA_SHA_384: { alg: 'ES384', hash: 'sha384' },
};

const FITS: Record<SigningAlgorithm, (spec: KeySpec) => boolean> = {
  RSASSA_PSS_SHA_256: (s) => s.startsWith('RSA_'),
  RSASSA_PKCS1_V1_5_SHA_256: (s) => s.startsWith('RSA_'),
  ECDSA_SHA_256: (s) => s === 'EC_P256',
  ECDSA_SHA_384: (s) => s === 'EC_P384',
};

/** The algorithm to use: the requested one (checked against the key) or the spec's default. */
async function algorithmFor(
  rt: CryptoRuntime,
  key: ResolvedKey,
  requested: SigningAlgorithm | undefined,
  o: ProviderCallOptions,
): Promise<{ algorithm: SigningAlgorithm; spec: KeySpec }> {
  const spec = await rt.specOf(key, o);
  const algorithm =
    requested ??
    (spec === 'EC_P256' ? 'ECDSA_SHA_256' : spec === 'EC_P384' ? 'ECDSA_SHA_384' : 'RSASSA_PSS_SHA_256');
  if (AZURE_ALGORITHMS[algorithm] === undefined) {
    throw new UnsupportedError('signingAlgorithms', `${algorithm} is not a Key Vault signing algorithm`, {
      provider: PROVIDER_NAME,
    });
  }
  if (!FITS[algorithm](spec)) {
    throw new KeyportError('InvalidArgument', `${algorithm} does not fit a ${spec} key`, {
      provider: PROVIDER_NAME,
    });
  }
  return { algorithm, spec };
}

/** Key Vault signs digests: keyport hashes messages itself, and checks a given digest's length. */
function digestOf(message: Uint8Array, req: SignRequest, hash: 'sha256' | 'sha384'): Uint8Array {
  if (req.messageType === 'digest') {
    const expected = hash === 'sha256' ? 32 : 48;
    if (message.length !== expected) {
      throw new KeyportError('InvalidArgument', `a ${hash} digest is ${expected} bytes`, {
        provider: PROVIDER_NAME,
      });
    }
    return message;
  }
  return createHash(hash).update(message).digest();
}

export async function sign(
  rt: CryptoRuntime,
  key: ResolvedKey,
  message: Uint8Array,
  req: SignRequest,
  o: ProviderCallOptions,
): Promise<SignResult> {
  const { algorithm, spec } = await algorithmFor(rt, key, req.algorithm, o);
  const { alg, hash } = AZURE_ALGORITHMS[algorithm];
  const digest = digestOf(message, req, hash);
  const kid = kidCapture();
  const out = await guarded(rt, key, false, o, async () =>
    (await rt.vaults.crypto(key)).sign(alg, digest, { abortSignal: o.signal, onResponse: kid.onResponse }),
  );
  const signature = spec.startsWith('EC_') ? rawToDer(out.result) : new Uint8Array(out.result);
  return { signature, algorithm, keyVersion: answeredVersion(key, kid.version()) };
}

export async function verify(
  rt: CryptoRuntime,
  key: ResolvedKey,
  message: Uint8Array,
  signature: Uint8Array,
  req: SignRequest & { algorithm: SigningAlgorithm },
  o: ProviderCallOptions,
): Promise<boolean> {
  const { algorithm, spec } = await algorithmFor(rt, key, req.algorithm, o);
  const { alg, hash } = AZURE_ALGORITHMS[algorithm];
  const digest = digestOf(message, req, hash);
  let wire: Uint8Array | undefined = signature;
  if (spec.startsWith('EC_')) wire = derToRaw(signature, spec === 'EC_P256' ? 32 : 48);
  if (wire === undefined || wire.length === 0) return false; // not a signature at all
  const body = wire;
  try {
    const out = await guarded(rt, key, false, o, async () =>
      (await rt.vaults.crypto(key)).verify(alg, digest, body, { abortSignal: o.signal }),
    );
    return out.result;
  } catch (e) {
    // The vault refuses a signature of the wrong size with 400: it does not verify.
    if (statusOf(e) === 400) return false;
    throw e;
  }
}

/** SPKI DER of an RSA or EC key version, from the public JWK the vault returns. */
export function publicKeyDer(key: KeyVaultKey): Uint8Array {
  const jwk = key.key;
  const spec = specOf(jwk);
  if (spec === 'AES_256' || jwk === undefined) {
    throw new KeyportError('InvalidArgument', 'a symmetric key has no public key', {
      provider: PROVIDER_NAME,
    });
  }
  const b64 = (v: Uint8Array | undefined): string =>
    Buffer.from(v ?? new Uint8Array(0)).toString('base64url');
  const pub = spec.startsWith('RSA_')
    ? { kty: 'RSA', n: b64(jwk.n), e: b64(jwk.e) }
    : { kty: 'EC', crv: jwk.crv ?? '', x: b64(jwk.x), y: b64(jwk.y) };
  return new Uint8Array(createPublicKey({ key: pub, format: 'jwk' }).export({ type: 'spki', format: 'der' }));
}
