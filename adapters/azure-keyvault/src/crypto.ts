/**
 * Encrypt, decrypt, sign, verify and public keys. Every cryptographic operation is done by the
 * vault (rpc.ts builds remote-only CryptographyClients), except the AES-256-GCM layer core's
 * emulated-context.ts adds to RSA ciphertexts to bind the context. Ciphertexts are core's keyport
 * frame: RSA keys `WRAPPED_KEY_AES_256_GCM` (the content key wrapped with RSA-OAEP-256), Managed
 * HSM AES keys `AES_256_GCM` (A256GCM at the HSM, AAD = encodeContext(context)).
 */
import { createHash, createPublicKey } from 'node:crypto';
import type { CryptographyClient } from '@azure/keyvault-keys';
import {
  assertSpecServes,
  type ProviderCallOptions as Call,
  type CiphertextFrame,
  type EncryptRequest,
  encodeContext,
  FRAME_MECHANISMS,
  type FrameMechanism,
  GCM_IV_BYTES,
  GCM_TAG_BYTES,
  isKeyportFrame,
  KeyportError,
  type KeySpec,
  openBoundToContext,
  readFrame,
  type SignRequest,
  sealBoundToContext,
  signingAlgorithmFor,
  splitGcmBody,
  takeSecretBytes,
  writeFrame,
} from '@keyport/core';
import { PROVIDER_NAME, requestIdOf, statusOf, withholdAnswer, withholdEcho } from './errors.js';
import { getKey, keySpec, keySpecAgain, onKey } from './keys.js';
import type { ResolvedKey, Rpc, SdkOptions } from './rpc.js';
import { SIGNING, specOf } from './specs.js';

const details = { provider: PROVIDER_NAME };

/** The version an answer names (encrypt and sign results must name one). */
function named(version: string | undefined): string {
  if (version === undefined)
    throw new KeyportError('Internal', 'the vault answered without naming the key version', details);
  return version;
}
/** RSA ciphertexts and signatures are as long as the modulus. */
const MODULUS_BYTES: Readonly<Partial<Record<string, number>>> = {
  RSA_2048: 256,
  RSA_3072: 384,
  RSA_4096: 512,
};
/** AES-256-GCM content keys, as core's context layer makes and opens them. */
const CONTENT_KEY_BYTES = 32;

/**
 * The bytes of a result, of the length the operation gives: a `result` that is not base64url
 * (decoded to fewer bytes), or one of megabytes from a server that is not quite Key Vault, is
 * Internal rather than a ciphertext, key or signature of the wrong size.
 */
function sized(result: unknown, bytes: number, op: string): Uint8Array {
  if (!(result instanceof Uint8Array) || result.length !== bytes) {
    // Refused: an unwrapped key or plaintext of the wrong size is used by nobody.
    if (result instanceof Uint8Array) result.fill(0);
    throw new KeyportError('Internal', `the vault answered ${op} with a result of the wrong size`, {
      ...details,
      retryable: false,
    });
  }
  return result;
}
/**
 * Failures that may say the key's spec used is stale (see `withKeySpec`): `misfit`, a result of
 * another size than the spec's modulus or curve gives; `refused`, the request refused by the spec
 * itself before any call (an algorithm or usage it does not serve).
 */
const blamingSpec = new WeakMap<object, 'misfit' | 'refused'>();

/** Runs `run`, marking its failure as `kind` for `withKeySpec`. */
function againstSpec<T>(kind: 'misfit' | 'refused', run: () => T): T {
  try {
    return run();
  } catch (e) {
    if (typeof e === 'object' && e !== null) blamingSpec.set(e, kind);
    throw e;
  }
}

/**
 * Runs an operation with the key's spec (cached per key name), and once more with the spec read
 * anew when the vault's answer does not fit the one used: a result of another size than its
 * modulus or curve gives, or a 400 (the vault refusing the algorithm for the key's type or
 * curve). Another process may have added a version of another size or type under the name (Key
 * Vault's create and import do on a taken name, e.g. `az keyvault key create`) or deleted, purged
 * and made the key anew: without this, every encrypt and sign failed until the cache forgot the
 * name (a bound of 4096 names, or a new process).
 * A request the spec used refuses before any call (`refused`: ECDSA_SHA_384 on a cached EC_P256,
 * encrypt on a cached EC key) is checked against the spec read anew too, when the one used may be
 * stale: a cached one, or the latest version's for a ref pinned to a version. Else a verify of a
 * signature by the new key, or a sign or encrypt the new key serves, was refused InvalidArgument.
 * Run again only when the spec read differs: an answer that fits neither keeps its failure, and a
 * server answering so cannot make it loop. The spec read is the vault's, as the first look-up was:
 * a version of another size is used as a process that never cached the old one would use it.
 */
async function withKeySpec<T>(
  rpc: Rpc,
  key: ResolvedKey,
  o: Call,
  run: (spec: KeySpec) => Promise<T>,
): Promise<T> {
  const known = keySpec(rpc, key, o);
  const mayBeStale = !(known instanceof Promise) || key.version !== undefined;
  const spec = await known;
  try {
    return await run(spec);
  } catch (e) {
    const blamed = typeof e === 'object' && e !== null ? blamingSpec.get(e) : undefined;
    const misfit = blamed === 'misfit' || statusOf(e) === 400 || (mayBeStale && blamed === 'refused');
    if (!misfit) throw e;
    const fresh = await keySpecAgain(rpc, key, spec, o);
    if (fresh === spec) throw e;
    return run(fresh);
  }
}

const notAuthentic = (cause?: unknown) =>
  new KeyportError('InvalidCiphertext', 'the ciphertext or its encryption context is not authentic', {
    ...details,
    requestId: requestIdOf(cause),
    cause,
  });

/** A256GCM's AAD at the HSM: the encoded context, omitted when empty. */
function aadOf(context: EncryptRequest['context']) {
  const aad = encodeContext(context);
  return aad.length > 0 ? { additionalAuthenticatedData: aad } : {};
}

/**
 * One key operation at the vault: a 404 is explained, and on decrypt a 400 means the bytes do not
 * open. `secret`: the key material the request carries (an encrypt's plaintext, a wrapKey's key).
 */
function keyOp<T>(
  rpc: Rpc,
  key: ResolvedKey,
  o: Call,
  request: KeyRequest<T>,
  decrypting = false,
  secret?: Uint8Array,
) {
  // A decrypt's or unwrap's answer carries key material, and the SDK quotes an answer it cannot
  // parse in its error: that error, kept as `cause`, loses the answer's text before anything sees it.
  // An encrypt's or wrapKey's error loses its text when it quotes the request's key material.
  const send: KeyRequest<T> = (c, so) =>
    request(c, so).catch((e: unknown) => {
      throw decrypting ? withholdAnswer(e) : secret === undefined ? e : withholdEcho(e, [secret]);
    });
  return onKey(rpc, key, o, () => rpc.sendCrypto(key, o, send), decrypting).catch((e: unknown) => {
    throw decrypting && statusOf(e) === 400 ? notAuthentic(e) : e;
  });
}
type KeyRequest<T> = (crypto: CryptographyClient, options: SdkOptions) => Promise<T>;

export function encrypt(rpc: Rpc, key: ResolvedKey, plaintext: Uint8Array, req: EncryptRequest, o: Call) {
  return withKeySpec(rpc, key, o, (spec) => encryptAs(rpc, key, spec, plaintext, req, o));
}

async function encryptAs(
  rpc: Rpc,
  key: ResolvedKey,
  spec: KeySpec,
  plaintext: Uint8Array,
  req: EncryptRequest,
  o: Call,
) {
  againstSpec('refused', () => assertSpecServes(spec, 'encrypt_decrypt', details));
  if (spec === 'AES_256') {
    const gcm = { algorithm: 'A256GCM' as const, plaintext, ...aadOf(req.context) };
    const { result, version } = await keyOp(rpc, key, o, (c, so) => c.encrypt(gcm, so), false, plaintext);
    const { iv, authenticationTag: tag } = result;
    if (iv?.length !== GCM_IV_BYTES || tag?.length !== GCM_TAG_BYTES) {
      throw new KeyportError(
        'Internal',
        'the HSM answered A256GCM without a 12-byte IV and 16-byte tag',
        details,
      );
    }
    const keyVersion = named(version);
    const sealed = sized(result.result, plaintext.length, 'encrypt');
    return {
      ciphertext: writeFrame(FRAME_MECHANISMS.AES_256_GCM, keyVersion, iv, sealed, tag),
      keyVersion,
    };
  }
  let keyVersion = '';
  const body = await sealBoundToContext(plaintext, req.context, async (contentKey) => {
    const { result, version } = await keyOp(
      rpc,
      key,
      o,
      (c, so) => c.wrapKey('RSA-OAEP-256', contentKey, so),
      false,
      contentKey,
    );
    keyVersion = named(version);
    return againstSpec('misfit', () => sized(result.result, MODULUS_BYTES[spec] ?? 0, 'wrapKey'));
  });
  return { ciphertext: writeFrame(FRAME_MECHANISMS.WRAPPED_KEY_AES_256_GCM, keyVersion, body), keyVersion };
}

export async function decrypt(rpc: Rpc, key: ResolvedKey, bytes: Uint8Array, req: EncryptRequest, o: Call) {
  const { mechanism, keyVersion, body } = readCiphertextFrame(bytes);
  // The ciphertext names its version; a ref pinned to another version cannot have made it.
  if (key.version !== undefined && key.version !== keyVersion) throw notAuthentic();
  const at: ResolvedKey = { ...key, version: keyVersion };
  if (mechanism === FRAME_MECHANISMS.AES_256_GCM) {
    const { iv, ciphertext, tag: authenticationTag } = splitGcmBody(body);
    const gcm = { algorithm: 'A256GCM' as const, ciphertext, iv, authenticationTag, ...aadOf(req.context) };
    const { result } = await keyOp(rpc, at, o, (c, so) => c.decrypt(gcm, so), true);
    return { plaintext: takeSecretBytes(sized(result.result, ciphertext.length, 'decrypt')), keyVersion };
  }
  if (mechanism !== FRAME_MECHANISMS.WRAPPED_KEY_AES_256_GCM) throw notAuthentic();
  const plaintext = await openBoundToContext(body, req.context, async (wrappedKey) => {
    const unwrapped = await keyOp(rpc, at, o, (c, so) => c.unwrapKey('RSA-OAEP-256', wrappedKey, so), true);
    return sized(unwrapped.result.result, CONTENT_KEY_BYTES, 'unwrapKey');
  }).catch((e: unknown) => {
    // Core's context layer names no provider: its failures are this driver's.
    throw e instanceof KeyportError && e.code === 'InvalidCiphertext' && e.provider === undefined
      ? notAuthentic()
      : e;
  });
  return { plaintext, keyVersion };
}

const VERSION = /^[A-Za-z0-9]{1,64}$/;
/** The adapter's first format, before core's frame: `"KV" | mode | n | version (n bytes) | body`. */
const FIRST_FORMAT: Readonly<Record<number, FrameMechanism>> = {
  1: FRAME_MECHANISMS.WRAPPED_KEY_AES_256_GCM,
  2: FRAME_MECHANISMS.AES_256_GCM,
};

/**
 * A Key Vault ciphertext: core's keyport frame, or the first format (still read forever,
 * test/fixtures/format-v1.json). Its version must be a Key Vault version id: it goes into a URL.
 */
export function readCiphertextFrame(bytes: Uint8Array): CiphertextFrame {
  let frame: CiphertextFrame | undefined;
  if (isKeyportFrame(bytes)) frame = readFrame(bytes);
  else if (bytes[0] === 0x4b && bytes[1] === 0x56 && bytes.length > 4) {
    const n = bytes[3] as number;
    const mechanism = FIRST_FORMAT[bytes[2] as number];
    const body = bytes.subarray(4 + n);
    const keyVersion = Buffer.from(bytes.subarray(4, 4 + n)).toString('latin1');
    if (mechanism !== undefined && body.length > 0) frame = { mechanism, keyVersion, body };
  }
  if (frame === undefined || !VERSION.test(frame.keyVersion)) {
    throw new KeyportError('InvalidCiphertext', 'not a keyport Key Vault ciphertext', details);
  }
  return frame;
}

/** The algorithm and the digest Key Vault signs (keyport hashes; a given digest's length is checked). */
function signing(spec: KeySpec, message: Uint8Array, req: SignRequest) {
  const algorithm = signingAlgorithmFor(spec, req.algorithm, details);
  const { alg, hash, bytes } = SIGNING[algorithm];
  if (req.messageType === 'digest' && message.length !== bytes) {
    throw new KeyportError('InvalidArgument', `a ${hash} digest is ${bytes} bytes`, details);
  }
  const digest = req.messageType === 'digest' ? message : createHash(hash).update(message).digest();
  return { algorithm, alg, digest, spec, ecBytes: spec.startsWith('EC_') ? bytes : undefined };
}

export function sign(rpc: Rpc, key: ResolvedKey, message: Uint8Array, req: SignRequest, o: Call) {
  return withKeySpec(rpc, key, o, async (spec) => {
    const { algorithm, alg, digest, ecBytes } = againstSpec('refused', () => signing(spec, message, req));
    const { result, version } = await keyOp(rpc, key, o, (c, so) => c.sign(alg, digest, so));
    const bytes = ecBytes === undefined ? (MODULUS_BYTES[spec] ?? 0) : ecBytes * 2;
    const raw = againstSpec('misfit', () => sized(result.result, bytes, 'sign'));
    const signature = ecBytes === undefined ? new Uint8Array(raw) : rawToDer(raw);
    return { signature, algorithm, keyVersion: named(version) };
  });
}

export function verify(
  rpc: Rpc,
  key: ResolvedKey,
  message: Uint8Array,
  signature: Uint8Array,
  req: SignRequest,
  o: Call,
): Promise<boolean> {
  return withKeySpec(rpc, key, o, async (spec) => {
    const { alg, digest, ecBytes } = againstSpec('refused', () => signing(spec, message, req));
    const wire = ecBytes === undefined ? signature : derToRaw(signature, ecBytes);
    if (wire === undefined || wire.length === 0) return false; // not a signature at all
    try {
      const { result } = await keyOp(rpc, key, o, (c, so) => c.verify(alg, digest, wire, so));
      return result.result;
    } catch (e) {
      // The vault refuses a signature of the wrong size with 400: it does not verify (and says
      // nothing of the spec: a forged signature must not cost a look-up of the key).
      if (statusOf(e) === 400) return false;
      throw e;
    }
  });
}

/** SPKI DER of an RSA or EC key version, from the public JWK the vault returns. */
export async function getPublicKey(rpc: Rpc, key: ResolvedKey, o: Call): Promise<Uint8Array> {
  const jwk = (await onKey(rpc, key, o, () => getKey(rpc, key, o))).key;
  const spec = specOf(jwk);
  if (spec === 'AES_256' || jwk === undefined) {
    throw new KeyportError('InvalidArgument', 'a symmetric key has no public key', details);
  }
  // The spec says how long each field is: an `n` or `x` of another length (megabytes from a server
  // that is not quite Key Vault) is refused before node:crypto parses it.
  const ec = spec === 'EC_P256' ? 32 : spec === 'EC_P384' ? 48 : undefined;
  const fits = (v: unknown, bytes: number | undefined, max = bytes) =>
    v instanceof Uint8Array &&
    v.length > 0 &&
    (bytes === undefined || v.length >= bytes) &&
    v.length <= (max ?? 0);
  const modulus = MODULUS_BYTES[spec];
  const ok =
    ec === undefined
      ? fits(jwk.n, modulus, (modulus ?? 0) + 1) && fits(jwk.e, undefined, 8)
      : fits(jwk.x, ec) && fits(jwk.y, ec);
  const unreadable = () =>
    new KeyportError('Internal', 'the vault answered a public key that is not one of its type and size', {
      ...details,
      retryable: false,
    });
  if (!ok) throw unreadable();
  const b64 = (v: Uint8Array | undefined): string => Buffer.from(v ?? []).toString('base64url');
  const pub =
    ec === undefined
      ? { kty: 'RSA', n: b64(jwk.n), e: b64(jwk.e) }
      : { kty: 'EC', crv: spec === 'EC_P256' ? 'P-256' : 'P-384', x: b64(jwk.x), y: b64(jwk.y) };
  try {
    return new Uint8Array(
      createPublicKey({ key: pub, format: 'jwk' }).export({ type: 'spki', format: 'der' }),
    );
  } catch {
    // node:crypto refuses a point off the curve or a malformed modulus: not a key this vault made.
    throw unreadable();
  }
}

// ECDSA: Key Vault signs and verifies raw `r || s` (JWS); keyport's contract, node:crypto,
// OpenSSL and the ESDK use DER `SEQUENCE { INTEGER r, INTEGER s }`.

/** Raw r||s -> DER. */
export function rawToDer(raw: Uint8Array): Uint8Array {
  const integer = (bytes: Uint8Array): Buffer => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    const v = Buffer.from(bytes.subarray(i));
    const body = (v[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v;
    return Buffer.concat([Buffer.from([0x02, body.length]), body]);
  };
  const half = raw.length / 2;
  const body = Buffer.concat([integer(raw.subarray(0, half)), integer(raw.subarray(half))]);
  const len = body.length < 0x80 ? [body.length] : [0x81, body.length];
  return new Uint8Array(Buffer.concat([Buffer.from([0x30, ...len]), body]));
}

/** DER -> raw r||s with `size`-byte halves; undefined when the input is not a well-formed signature. */
export function derToRaw(der: Uint8Array, size: number): Uint8Array | undefined {
  const b = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  let at = 0;
  if (b[at++] !== 0x30) return undefined;
  let len = b[at++];
  if (len === 0x81) len = b[at++];
  if (len === undefined || len !== b.length - at) return undefined;
  const out = Buffer.alloc(size * 2);
  for (const half of [0, 1]) {
    if (b[at++] !== 0x02) return undefined;
    const n = b[at++];
    if (n === undefined || n === 0 || at + n > b.length) return undefined;
    let v = b.subarray(at, at + n);
    at += n;
    if (v.length > 1 && v[0] === 0 && !((v[1] as number) & 0x80)) return undefined; // non-minimal
    if ((v[0] as number) & 0x80) return undefined; // negative
    if (v[0] === 0) v = v.subarray(1);
    if (v.length > size) return undefined;
    v.copy(out, half * size + (size - v.length));
  }
  return at === b.length ? new Uint8Array(out) : undefined;
}
