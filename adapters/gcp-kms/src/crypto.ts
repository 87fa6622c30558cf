/**
 * Encrypt/decrypt, sign/verify, MAC and public keys, with the CRC32C integrity fields sent and
 * checked both ways. Symmetric keys use Encrypt/Decrypt with the context as additional
 * authenticated data (core's canonical encoding); RSA keys encrypt locally under the version's
 * public key (Cloud KMS has no asymmetric Encrypt) and decrypt with AsymmetricDecrypt. Signing
 * sends a digest; verification is local under the version's public key (no asymmetric Verify).
 */
import { constants, createHash, verify as nodeVerify, publicEncrypt } from 'node:crypto';
import type {
  DecryptResult,
  EncryptionContext,
  EncryptRequest,
  EncryptResult,
  KeyRef,
  MacResult,
  ProviderCallOptions as Opts,
  SigningAlgorithm,
  SignRequest,
  SignResult,
} from '@keyport/core';
import { encodeContext, KeyportError, keyportError, quote, signingAlgorithmFor } from '@keyport/core';
import { withoutEcho } from './echo.js';
import { getKey, purposeOf, resolveVersion } from './keys.js';
import {
  checked,
  checksum,
  integrityError,
  own,
  publicKeyFromPem,
  type Runtime,
  remember,
  type VersionPublicKey,
  verified,
} from './rpc.js';
import { algorithmName, describeAlgorithm, type Hash } from './specs.js';
import { type KeyTarget, targetOf, versionIdOf, versionName } from './uri.js';

// ------------------------------------------------------------------ version prefix

/**
 * Cloud KMS's Decrypt answer does not say which version decrypted, and AsymmetricDecrypt needs
 * the version up front, so keyport prefixes what encrypt returns with the version:
 *
 *   "kpg" | kind (1 = Cloud KMS Encrypt ciphertext, 2 = RSA-OAEP under a version's public key)
 *   | version id (u32 BE, 0 = unknown) | the ciphertext itself
 *
 * Like Vault's `vault:vN:` prefix the version is a routing hint, not authenticated: Cloud KMS
 * chooses the key material from its own ciphertext, and a wrong version for RSA fails to decrypt.
 * Bytes without the prefix are passed to Cloud KMS as they are (ciphertexts made by other tools).
 * Not core's ciphertext frame: that frame names the mechanism of a body keyport can read, where
 * a Cloud KMS ciphertext is opaque (and RSA-OAEP-SHA-512 versions have no frame mechanism).
 */
const MAGIC = [0x6b, 0x70, 0x67] as const;
const HEADER = 8;
const [SYMMETRIC, RSA] = [1, 2] as const;
/** The largest version id the u32 of the prefix holds. */
export const MAX_FRAMED_VERSION = 0xffff_ffff;

/** Whether the prefix can record this version id exactly (a canonical integer from 1 to 2^32−1). */
const fitsFrame = (version: string): boolean =>
  /^[1-9][0-9]{0,9}$/.test(version) && Number(version) <= MAX_FRAMED_VERSION;

/**
 * A version the prefix cannot hold is refused, never written modulo 2^32 (version 2^32 + 1 would
 * read back as version 1: another key version, wrong for RSA and a wrong `keyVersion` for AES).
 */
export function frame(kind: 1 | 2, version: string | undefined, body: Uint8Array): Uint8Array {
  if (version !== undefined && !fitsFrame(version)) {
    const why = `keyport's Cloud KMS ciphertext prefix records key versions 1 to ${MAX_FRAMED_VERSION}, not ${quote(version)}`;
    throw keyportError('Unsupported', why);
  }
  const out = new Uint8Array(HEADER + body.length);
  out.set(MAGIC, 0);
  out[3] = kind;
  new DataView(out.buffer).setUint32(4, version === undefined ? 0 : Number(version));
  out.set(body, HEADER);
  return out;
}

/** A pinned version encrypt could not record: refused before any call (nothing reaches Cloud KMS). */
function refuseUnframeable(t: KeyTarget): void {
  if (t.version !== undefined && !fitsFrame(t.version)) {
    const why = `keyport encrypts under Cloud KMS key versions 1 to ${MAX_FRAMED_VERSION} (the ciphertext prefix records the version in 32 bits)`;
    throw new KeyportError('InvalidArgument', why, { keyUri: t.uri });
  }
}

export function unframe(bytes: Uint8Array): { kind: 1 | 2; version?: string; body: Uint8Array } | undefined {
  const kind = bytes[3];
  if (bytes.length <= HEADER || !MAGIC.every((byte, i) => bytes[i] === byte)) return undefined;
  if (kind !== SYMMETRIC && kind !== RSA) return undefined;
  const id = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4);
  // A copy, not a view: the REST transport serialises a view's whole underlying buffer.
  return { kind, ...(id === 0 ? {} : { version: String(id) }), body: bytes.slice(HEADER) };
}

// ------------------------------------------------------------------ encrypt / decrypt

/** The AAD fields of a request: none for an empty context. */
function aadFields(context: EncryptionContext | undefined) {
  const aad = context === undefined ? undefined : encodeContext(context);
  if (aad === undefined || aad.length === 0) return {};
  return { additionalAuthenticatedData: aad, additionalAuthenticatedDataCrc32c: checksum(aad) };
}

/** RSA-OAEP in Cloud KMS takes no label, so a context could not be bound: refuse it, never drop it. */
function refuseContext(req: EncryptRequest, t: KeyTarget): void {
  if (req.context !== undefined && Object.keys(req.context).length > 0) {
    const why = 'Cloud KMS RSA decryption keys cannot bind an encryption context';
    throw keyportError('Unsupported', why, { keyUri: t.uri, capability: 'context' });
  }
}

/** The same error under a message of keyport's (code, key, request id and cause kept). */
function reworded(e: KeyportError, why: string, t: KeyTarget): KeyportError {
  const { provider, requestId, retryable, cause } = e;
  return new KeyportError(e.code, why, { provider, keyUri: e.keyUri ?? t.uri, requestId, retryable, cause });
}

/** PERMISSION_DENIED as the client reports it: the gRPC status (both transports) or a bare HTTP 403. */
const PERMISSION_DENIED: readonly unknown[] = [7, 403];

/**
 * PERMISSION_DENIED on Encrypt, said in full: the permission it lacks and, since keyport learns
 * that a key is RSA only from Encrypt's answer, what encrypting to an RSA key needs on top.
 */
function encryptDenied(e: unknown, t: KeyTarget): unknown {
  const code = e instanceof KeyportError ? (e.cause as { code?: unknown } | undefined)?.code : undefined;
  if (!(e instanceof KeyportError) || !PERMISSION_DENIED.includes(code)) return e;
  const why =
    'Cloud KMS refused Encrypt: permission cloudkms.cryptoKeyVersions.useToEncrypt denied on the key ' +
    '(roles/cloudkms.cryptoKeyEncrypter), which encrypting needs. keyport encrypts to an RSA key ' +
    'locally, but learns the key is RSA from that Encrypt and cloudkms.cryptoKeys.get, then reads its ' +
    'public key (cloudkms.cryptoKeyVersions.viewPublicKey): an RSA key needs all three';
  return reworded(e, why, t);
}

/** After a FAILED_PRECONDITION: is the key an RSA decryption key (learnt once, then remembered)? */
async function isAsymmetric(rt: Runtime, e: unknown, t: KeyTarget, o: Opts, op: string): Promise<boolean> {
  if (!(e instanceof KeyportError && e.code === 'KeyStateConflict')) return false;
  const key = await getKey(rt, t, o).catch((lookup: unknown) => {
    if (!(lookup instanceof KeyportError && lookup.code === 'AccessDenied')) return undefined; // e says more
    // Without cloudkms.cryptoKeys.get, a disabled version and an RSA key look the same here.
    const why =
      `Cloud KMS refused ${op} (FAILED_PRECONDITION): the key version is not enabled, or the key is ` +
      'not a symmetric key; keyport could not read the key to tell (cloudkms.cryptoKeys.get denied), ' +
      'and an RSA key needs it';
    throw reworded(e, why, t);
  });
  if (key === undefined || purposeOf(key) !== 'ASYMMETRIC_DECRYPT') return false;
  remember(rt.asymmetricKeys, t.keyName, true);
  return true;
}

/**
 * The version an Encrypt answer names, which must be a version of the requested key (the pinned
 * one, when pinned): a ciphertext under another key would be framed and reported as this key's
 * and fail to decrypt only later. An answer without a name (the REST emulator) leaves it unknown.
 */
function answeringVersion(name: string | null | undefined, t: KeyTarget): string | undefined {
  if (!name) return undefined;
  const id = versionIdOf(name);
  const expected = t.version === undefined ? id : t.version;
  if (id === undefined || expected === undefined || name !== versionName(t.keyName, expected)) {
    const why = `Cloud KMS answered Encrypt from ${quote(name)}, not from ${t.version === undefined ? 'a version of the requested key' : 'the pinned version'}`;
    throw new KeyportError('Integrity', why, { keyUri: t.uri, retryable: true });
  }
  return id;
}

export async function encrypt(rt: Runtime, ref: KeyRef, plaintext: Uint8Array, req: EncryptRequest, o: Opts) {
  const t = targetOf(ref);
  refuseUnframeable(t);
  if (rt.asymmetricKeys.has(t.keyName)) return encryptAsymmetric(rt, t, plaintext, req, o);
  const aad = aadFields(req.context);
  const name = t.version === undefined ? t.keyName : versionName(t.keyName, t.version);
  const request = { name, plaintext: own(plaintext), plaintextCrc32c: checksum(plaintext), ...aad };
  const res = await rt.rpc
    // A refusal quoting the plaintext (a proxy or look-alike endpoint may) must not carry it.
    .call(
      o,
      (co, kms) =>
        kms
          .encrypt(request, co)
          .catch((e: unknown) => Promise.reject(withoutEcho(e, plaintext, 'plaintext'))),
      t.uri,
    )
    .catch(async (e: unknown) => {
      if (await isAsymmetric(rt, e, t, o, 'Encrypt')) return undefined;
      throw encryptDenied(e, t);
    });
  if (res === undefined) return encryptAsymmetric(rt, t, plaintext, req, o);
  verified(res.verifiedPlaintextCrc32c, 'plaintext');
  if ('additionalAuthenticatedData' in aad) verified(res.verifiedAdditionalAuthenticatedDataCrc32c, 'AAD');
  const ciphertext = checked(res.ciphertext, res.ciphertextCrc32c, 'ciphertext', true); // frame() copies it
  const keyVersion = answeringVersion(res.name, t);
  return { ciphertext: frame(SYMMETRIC, keyVersion, ciphertext), keyVersion };
}

export async function decrypt(rt: Runtime, ref: KeyRef, data: Uint8Array, req: EncryptRequest, o: Opts) {
  const t = targetOf(ref);
  const framed = unframe(data);
  if (framed?.kind === RSA || rt.asymmetricKeys.has(t.keyName)) return decryptAsymmetric(rt, t, data, req, o);
  const body = framed?.body ?? data;
  const aad = aadFields(req.context);
  const request = { name: t.keyName, ciphertext: own(body), ciphertextCrc32c: checksum(body), ...aad };
  try {
    const res = await rt.rpc.call(o, (co, kms) => kms.decrypt(request, co), t.uri, 'decrypt');
    const plaintext = checked(res.plaintext, res.plaintextCrc32c, 'plaintext');
    return { plaintext, keyVersion: framed?.version };
  } catch (e) {
    if (await isAsymmetric(rt, e, t, o, 'Decrypt')) return decryptAsymmetric(rt, t, data, req, o);
    throw e;
  }
}

async function encryptAsymmetric(rt: Runtime, t: KeyTarget, data: Uint8Array, req: EncryptRequest, o: Opts) {
  refuseContext(req, t);
  const { id } = await resolveVersion(rt, t, o);
  const pub = await publicKey(rt, t, id, o);
  const oaepHash = describeAlgorithm(pub.algorithm, t.uri).hash ?? 'sha256';
  let ciphertext: Buffer;
  try {
    ciphertext = publicEncrypt({ key: pub.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, data);
  } catch {
    const why = 'the plaintext is too long for this RSA key';
    throw new KeyportError('InvalidArgument', why, { keyUri: t.uri });
  }
  return { ciphertext: frame(RSA, id, ciphertext), keyVersion: id } satisfies EncryptResult;
}

async function decryptAsymmetric(rt: Runtime, t: KeyTarget, data: Uint8Array, req: EncryptRequest, o: Opts) {
  refuseContext(req, t);
  const framed = unframe(data);
  const body = framed?.kind === RSA ? framed.body : data;
  const id = (framed?.kind === RSA ? framed.version : undefined) ?? (await resolveVersion(rt, t, o)).id;
  const name = versionName(t.keyName, id);
  const request = { name, ciphertext: own(body), ciphertextCrc32c: checksum(body) };
  const res = await rt.rpc.call(o, (co, kms) => kms.asymmetricDecrypt(request, co), t.uri, 'decrypt');
  verified(res.verifiedCiphertextCrc32c, 'ciphertext');
  return {
    plaintext: checked(res.plaintext, res.plaintextCrc32c, 'plaintext'),
    keyVersion: id,
  } as DecryptResult;
}

// ------------------------------------------------------------------ public keys, sign, verify, MAC

/** GetPublicKey with its pem_crc32c checked, once per version (it never changes). */
async function publicKey(rt: Runtime, t: KeyTarget, id: string, o: Opts): Promise<VersionPublicKey> {
  const name = versionName(t.keyName, id);
  const cached = rt.publicKeys.get(name);
  if (cached !== undefined) return cached;
  const res = await rt.rpc.call(o, (co, kms) => kms.getPublicKey({ name }, co), t.uri);
  // As Google's samples check: a public key of another version (or key) would be remembered as
  // this version's, and RSA plaintext encrypted to it locally, or signatures verified under it.
  if (res.name !== name) throw integrityError('the public key came from another key version');
  const pem = res.pem ?? '';
  // A missing pem_crc32c fails too: Cloud KMS always sends it, and a public key keyport encrypts
  // to or verifies under must arrive as it was sent.
  checked(Buffer.from(pem, 'utf8'), res.pemCrc32c, 'public key PEM', true); // only checked
  const key = publicKeyFromPem(pem, 'public key', { keyUri: t.uri, provider: rt.rpc.providerName });
  const spki = new Uint8Array(key.export({ type: 'spki', format: 'der' }));
  const algorithm = remember(rt.algorithms, name, algorithmName(res.algorithm));
  return remember(rt.publicKeys, name, { algorithm, key, spki });
}

/** SPKI DER of a version's public key (the pinned version, or the current one). */
export async function getPublicKey(rt: Runtime, ref: KeyRef, o: Opts): Promise<Uint8Array> {
  const t = targetOf(ref);
  return (await publicKey(rt, t, (await resolveVersion(rt, t, o)).id, o)).spki;
}

const DIGEST_LENGTH: Readonly<Record<Hash, number>> = { sha256: 32, sha384: 48, sha512: 64, sha1: 20 };

/**
 * The version's signing algorithm and digest. Cloud KMS binds the padding to the version, so an
 * algorithm of the right family but another padding is refused as an argument the key cannot take.
 */
function signingOf(t: KeyTarget, algorithm: string, requested: SigningAlgorithm | undefined) {
  const { spec, signing, hash } = describeAlgorithm(algorithm, t.uri);
  if (signing === undefined || hash === undefined) {
    throw new KeyportError('InvalidArgument', 'the key is not a signing key', { keyUri: t.uri });
  }
  if (requested !== undefined && signingAlgorithmFor(spec, requested, { keyUri: t.uri }) !== signing) {
    const why = `the key version signs with ${signing}, not ${requested}`;
    throw new KeyportError('InvalidArgument', why, { keyUri: t.uri });
  }
  return { signing, hash };
}

export async function sign(rt: Runtime, ref: KeyRef, message: Uint8Array, req: SignRequest, o: Opts) {
  const t = targetOf(ref);
  const { id, algorithm } = await resolveVersion(rt, t, o);
  const { signing, hash } = signingOf(t, algorithm, req.algorithm);
  const prehashed = req.messageType === 'digest';
  if (prehashed && message.length !== DIGEST_LENGTH[hash]) {
    const why = `a ${hash} digest is ${DIGEST_LENGTH[hash]} bytes`;
    throw new KeyportError('InvalidArgument', why, { keyUri: t.uri });
  }
  const digest = prehashed ? message : createHash(hash).update(message).digest();
  const name = versionName(t.keyName, id);
  const request = { name, digest: { [hash]: own(digest) }, digestCrc32c: checksum(digest) };
  const res = await rt.rpc.call(o, (co, kms) => kms.asymmetricSign(request, co), t.uri);
  verified(res.verifiedDigestCrc32c, 'digest');
  const signature = checked(res.signature, res.signatureCrc32c, 'signature');
  // An answer that names no version is refused too, as Google's samples do (`name == key_version_name`).
  if (res.name !== name) throw integrityError('the signature came from another key version');
  return { signature, algorithm: signing, keyVersion: id } satisfies SignResult;
}

type Verify = SignRequest & { algorithm: SigningAlgorithm };
export async function verify(rt: Runtime, ref: KeyRef, m: Uint8Array, s: Uint8Array, req: Verify, o: Opts) {
  const t = targetOf(ref);
  if (req.messageType === 'digest') {
    const why = 'keyport verifies Cloud KMS signatures over the message, not a digest';
    throw keyportError('Unsupported', why, { keyUri: t.uri, capability: 'verifyDigest' });
  }
  const pub = await publicKey(rt, t, (await resolveVersion(rt, t, o)).id, o);
  const { signing, hash } = signingOf(t, pub.algorithm, req.algorithm);
  // Cloud KMS signs RSA-PSS with a salt as long as the digest.
  const pss = { key: pub.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: DIGEST_LENGTH[hash] };
  try {
    return nodeVerify(hash, m, signing === 'RSASSA_PSS_SHA_256' ? pss : pub.key, s);
  } catch {
    return false; // a malformed signature is a signature that does not verify
  }
}

export async function mac(rt: Runtime, ref: KeyRef, message: Uint8Array, o: Opts): Promise<MacResult> {
  const t = targetOf(ref);
  const { id } = await resolveVersion(rt, t, o);
  const request = { name: versionName(t.keyName, id), data: own(message), dataCrc32c: checksum(message) };
  const res = await rt.rpc.call(o, (co, kms) => kms.macSign(request, co), t.uri);
  verified(res.verifiedDataCrc32c, 'data');
  // As for a signature: a MAC from another key or version would be reported as this one's.
  if (res.name !== request.name) throw integrityError('the MAC came from another key version');
  return { mac: checked(res.mac, res.macCrc32c, 'MAC'), keyVersion: id };
}

export async function verifyMac(rt: Runtime, ref: KeyRef, message: Uint8Array, tag: Uint8Array, o: Opts) {
  const t = targetOf(ref);
  const { id } = await resolveVersion(rt, t, o);
  const name = versionName(t.keyName, id);
  const request = {
    name,
    data: own(message),
    dataCrc32c: checksum(message),
    mac: own(tag),
    macCrc32c: checksum(tag),
  };
  const res = await rt.rpc.call(o, (co, kms) => kms.macVerify(request, co), t.uri);
  // As for MacSign: a verdict from another key or version (or from none named) says nothing
  // about this one, and would be reported as this version's.
  if (res.name !== name) throw integrityError('the MAC verification came from another key version');
  verified(res.verifiedDataCrc32c, 'data');
  verified(res.verifiedMacCrc32c, 'MAC');
  // verified_success_integrity mirrors `success` (service.proto: a response where the two differ
  // is corrupt and to be discarded): false for a MAC that does not verify, so it is compared with
  // `success`, never required true (that made every failed verification an Integrity error).
  const success = res.success === true;
  if ((res.verifiedSuccessIntegrity === true) !== success) throw integrityError('MacVerify result');
  return success;
}
