/**
 * A recipient byte-compatible with the ESDK raw ECDH keyring (framework/raw-ecdh-keyring.md,
 * key-agreement-schemas.md): the data key is wrapped under a key both parties derive from an
 * ECDH shared secret, so a sender needs only the recipient's public key.
 *
 * - Shared secret Z: ECDH (the x coordinate) of the sender's private key and the recipient's
 *   public key (or the recipient's private key and the sender's public key).
 * - FixedInfo: "ecdh-key-derivation" 0 curve ("p256" | "p384" | "p521") 0 "HMAC_SHA384" 0
 *   sender's compressed point || recipient's compressed point 0 version (0x01) 0 the serialized
 *   encryption context.
 * - KDF: SP 800-108 counter mode, HMAC-SHA384 keyed with Z, each block over
 *   u32 counter || FixedInfo || 0 || salt || u32 512; 64 bytes: the commitment key, then the
 *   AES-256 wrapping key.
 * - Data key: AES-256-GCM, zero IV, AAD = FixedInfo.
 * - EDK: provider id "raw-ecdh"; provider info = 0x01 || u32 length || recipient's compressed
 *   point || u32 length || sender's compressed point; ciphertext = salt (32) || commitment key
 *   (32) || encrypted data key || tag (16).
 *
 * Three ways to hold it, as the ESDK's key agreement schemas: `static` (the sender's private key
 * and the recipient's public key: seals, and opens messages between those two parties either
 * way), `ephemeral` (the recipient's public key only: seals with a fresh key pair per message,
 * opens nothing) and `discovery` (the recipient's private key only: opens any sender's message
 * to it, seals nothing).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  KeyObject,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { type EncryptionContext, KeyportError } from '@keyport/core';
import { bytesEqual } from '../bytes.js';
import { serializeOpenedContext } from '../context-codec.js';
import { compressPoint, EC_CURVES, type EcCurve, publicKeyFromPoint } from '../ec-points.js';
import type { EncryptedDataKey } from '../header.js';
import { checkUnknown } from '../known-options.js';
import { type Recipient, type RecipientEnv, wrapContextBytes } from './recipient.js';

export type EcdhCurve = EcCurve;

/** A private key: a KeyObject, or PKCS #8 PEM. A public key: a KeyObject, SPKI PEM or SPKI DER. */
type PrivateKeyInput = KeyObject | string;
type PublicKeyInput = KeyObject | string | Uint8Array;

export type RawEcdhRecipientOptions =
  | {
      readonly scheme: 'static';
      readonly senderPrivateKey: PrivateKeyInput;
      readonly recipientPublicKey: PublicKeyInput;
    }
  | { readonly scheme: 'ephemeral'; readonly recipientPublicKey: PublicKeyInput }
  | { readonly scheme: 'discovery'; readonly recipientPrivateKey: PrivateKeyInput };

const PROVIDER_ID = 'raw-ecdh';
/** The AWS KMS ECDH keyring's EDKs have the same shape; a discovery recipient opens them too. */
const KMS_PROVIDER_ID = 'aws-kms-ecdh';
const VERSION = 0x01;
const SALT_LENGTH = 32;
const COMMIT_LENGTH = 32;
const TAG_LENGTH = 16;

/** The curve's name in FixedInfo. */
const KDF_CURVE_NAME = { 'P-256': 'p256', 'P-384': 'p384', 'P-521': 'p521' } as const;

const OPTION_NAMES = {
  static: ['scheme', 'senderPrivateKey', 'recipientPublicKey'],
  ephemeral: ['scheme', 'recipientPublicKey'],
  discovery: ['scheme', 'recipientPrivateKey'],
} as const;

function bad(message: string, cause?: unknown): KeyportError {
  return new KeyportError('InvalidArgument', message, cause === undefined ? {} : { cause });
}

function privateKeyOf(value: unknown, what: string): KeyObject {
  try {
    const key =
      value instanceof KeyObject ? value : typeof value === 'string' ? createPrivateKey(value) : undefined;
    if (key?.type === 'private' && key.asymmetricKeyType === 'ec') return key;
  } catch (cause) {
    throw bad(`${what}: not an EC private key (PKCS #8 PEM or a KeyObject)`, cause);
  }
  throw bad(`${what}: not an EC private key (PKCS #8 PEM or a KeyObject)`);
}

function publicKeyOf(value: unknown, what: string): KeyObject {
  try {
    let key: KeyObject | undefined;
    if (value instanceof KeyObject) key = value.type === 'private' ? createPublicKey(value) : value;
    else if (typeof value === 'string') key = createPublicKey(value);
    else if (value instanceof Uint8Array)
      key = createPublicKey({ key: Buffer.from(value), format: 'der', type: 'spki' });
    if (key?.type === 'public' && key.asymmetricKeyType === 'ec') return key;
  } catch (cause) {
    throw bad(`${what}: not an EC public key (SPKI PEM or DER, or a KeyObject)`, cause);
  }
  throw bad(`${what}: not an EC public key (SPKI PEM or DER, or a KeyObject)`);
}

function curveOf(key: KeyObject, what: string): EcdhCurve {
  const named = key.asymmetricKeyDetails?.namedCurve;
  const curve = (Object.keys(EC_CURVES) as EcdhCurve[]).find((c) => EC_CURVES[c].openssl === named);
  if (curve === undefined)
    throw bad(`${what}: the curve must be P-256, P-384 or P-521 (got ${String(named)})`);
  return curve;
}

function fixedInfo(
  curve: EcdhCurve,
  senderPoint: Uint8Array,
  recipientPoint: Uint8Array,
  /** The serialized context: `serializeContext` on seal, `serializeOpenedContext` on unwrap and rewrap. */
  contextBytes: Uint8Array,
): Buffer {
  const zero = Buffer.of(0);
  return Buffer.concat([
    Buffer.from('ecdh-key-derivation', 'utf8'),
    zero,
    Buffer.from(KDF_CURVE_NAME[curve], 'utf8'),
    zero,
    Buffer.from('HMAC_SHA384', 'utf8'),
    zero,
    senderPoint,
    recipientPoint,
    zero,
    Buffer.of(VERSION),
    zero,
    contextBytes,
  ]);
}

/** SP 800-108 counter-mode KDF, HMAC-SHA384 keyed with the shared secret: 64 bytes. */
function deriveKeys(
  secret: Uint8Array,
  info: Uint8Array,
  salt: Uint8Array,
): { commit: Buffer; wrapping: Buffer } {
  const explicit = Buffer.concat([info, Buffer.of(0), salt, Buffer.of(0, 0, 2, 0)]); // u32 512 bits
  const out = Buffer.concat(
    [1, 2].map((i) =>
      createHmac('sha384', secret)
        .update(Buffer.of(0, 0, 0, i))
        .update(explicit)
        .digest(),
    ),
  );
  const keys = { commit: Buffer.from(out.subarray(0, 32)), wrapping: Buffer.from(out.subarray(32, 64)) };
  out.fill(0);
  return keys;
}

interface ParsedInfo {
  readonly recipientPoint: Uint8Array;
  readonly senderPoint: Uint8Array;
}

/** Provider info: version, then each party's compressed point with its u32 length; undefined if malformed. */
function parseInfo(info: Uint8Array, curve: EcdhCurve): ParsedInfo | undefined {
  const n = EC_CURVES[curve].compressed;
  if (info.length !== 1 + 4 + n + 4 + n || info[0] !== VERSION) return undefined;
  const b = Buffer.from(info.buffer, info.byteOffset, info.length);
  if (b.readUInt32BE(1) !== n || b.readUInt32BE(5 + n) !== n) return undefined;
  return { recipientPoint: b.subarray(5, 5 + n), senderPoint: b.subarray(9 + n) };
}

function serializeInfo(recipientPoint: Uint8Array, senderPoint: Uint8Array): Buffer {
  const info = Buffer.alloc(1 + 4 + recipientPoint.length + 4 + senderPoint.length);
  info[0] = VERSION;
  info.writeUInt32BE(recipientPoint.length, 1);
  info.set(recipientPoint, 5);
  info.writeUInt32BE(senderPoint.length, 5 + recipientPoint.length);
  info.set(senderPoint, 9 + recipientPoint.length);
  return info;
}

function unwrapFailed(message: string): KeyportError {
  return new KeyportError('InvalidCiphertext', `raw ECDH encrypted data key: ${message}`);
}

export function rawEcdhRecipient(options: RawEcdhRecipientOptions): Recipient {
  if (typeof options !== 'object' || options === null)
    throw bad('rawEcdhRecipient options must be an object');
  const scheme: unknown = options.scheme;
  if (scheme !== 'static' && scheme !== 'ephemeral' && scheme !== 'discovery')
    throw bad("rawEcdhRecipient scheme: 'static', 'ephemeral' or 'discovery'");
  // A misspelt option is refused, not ignored.
  checkUnknown(options, 'rawEcdhRecipient options', OPTION_NAMES[scheme]);

  // `own`: the private key this recipient computes with; `peer`: the configured public key.
  let own: KeyObject | undefined;
  let peer: KeyObject | undefined;
  let ownPoint: Buffer | undefined;
  let peerPoint: Buffer | undefined;
  let curve: EcdhCurve;
  if (options.scheme === 'static') {
    own = privateKeyOf(options.senderPrivateKey, 'senderPrivateKey');
    peer = publicKeyOf(options.recipientPublicKey, 'recipientPublicKey');
    curve = curveOf(own, 'senderPrivateKey');
    if (curveOf(peer, 'recipientPublicKey') !== curve)
      throw bad('senderPrivateKey and recipientPublicKey must be on the same curve');
    ownPoint = compressPoint(createPublicKey(own), curve);
    peerPoint = compressPoint(peer, curve);
  } else if (options.scheme === 'ephemeral') {
    peer = publicKeyOf(options.recipientPublicKey, 'recipientPublicKey');
    curve = curveOf(peer, 'recipientPublicKey');
    peerPoint = compressPoint(peer, curve);
  } else {
    own = privateKeyOf(options.recipientPrivateKey, 'recipientPrivateKey');
    curve = curveOf(own, 'recipientPrivateKey');
    ownPoint = compressPoint(createPublicKey(own), curve);
  }
  // The id names every key the recipient is configured with: a seal cache keys materials by it,
  // so two static recipients sharing a sender key must not share one (the EDKs of one would be
  // handed out as the other's).
  const idPoints = [ownPoint, peerPoint]
    .filter((p): p is Buffer => p !== undefined)
    .map((p) => p.toString('base64'))
    .join(':');

  /** For an EDK this recipient can open: the public key to agree with (else undefined). */
  const counterpart = (info: ParsedInfo): KeyObject | undefined => {
    if (scheme === 'discovery') {
      return bytesEqual(info.recipientPoint, ownPoint as Buffer)
        ? publicKeyFromPoint(info.senderPoint, curve)
        : undefined;
    }
    if (scheme !== 'static') return undefined;
    // Between the two configured parties, either way round (as the ESDK's static schema).
    const mine = ownPoint as Buffer;
    const theirs = peerPoint as Buffer;
    if (bytesEqual(info.senderPoint, mine) && bytesEqual(info.recipientPoint, theirs)) return peer;
    if (bytesEqual(info.senderPoint, theirs) && bytesEqual(info.recipientPoint, mine)) return peer;
    return undefined;
  };

  return {
    id: `raw-ecdh:${scheme}:${curve}:${idPoints}`,
    async wrap(
      dataKey: Uint8Array,
      context: EncryptionContext,
      env?: RecipientEnv,
    ): Promise<EncryptedDataKey> {
      if (scheme === 'discovery')
        throw bad(
          'a discovery raw ECDH recipient opens messages only (it has no recipient public key to seal to)',
        );
      let senderKey = own as KeyObject;
      let senderPoint = ownPoint as Buffer;
      if (scheme === 'ephemeral') {
        const pair = generateKeyPairSync('ec', { namedCurve: EC_CURVES[curve].openssl });
        senderKey = pair.privateKey;
        senderPoint = compressPoint(pair.publicKey, curve);
      }
      const secret = diffieHellman({ privateKey: senderKey, publicKey: peer as KeyObject });
      const info = fixedInfo(curve, senderPoint, peerPoint as Buffer, wrapContextBytes(context, env));
      const salt = randomBytes(SALT_LENGTH);
      const { commit, wrapping } = deriveKeys(secret, info, salt);
      secret.fill(0);
      try {
        const c = createCipheriv('aes-256-gcm', wrapping, Buffer.alloc(12), { authTagLength: TAG_LENGTH });
        c.setAAD(info);
        const encrypted = Buffer.concat([c.update(dataKey), c.final()]);
        return {
          providerId: PROVIDER_ID,
          providerInfo: serializeInfo(peerPoint as Buffer, senderPoint),
          ciphertext: Buffer.concat([salt, commit, encrypted, c.getAuthTag()]),
        };
      } finally {
        wrapping.fill(0);
      }
    },
    matches(edk: EncryptedDataKey): boolean {
      if (edk.providerId !== PROVIDER_ID && !(scheme === 'discovery' && edk.providerId === KMS_PROVIDER_ID))
        return false;
      const info = parseInfo(edk.providerInfo, curve);
      return info !== undefined && counterpart(info) !== undefined;
    },
    async unwrap(edk: EncryptedDataKey, context: EncryptionContext): Promise<Uint8Array> {
      if (scheme === 'ephemeral')
        throw bad('an ephemeral raw ECDH recipient seals only (it holds no private key to open with)');
      const info = parseInfo(edk.providerInfo, curve);
      const other = info === undefined ? undefined : counterpart(info);
      if (info === undefined || other === undefined)
        throw unwrapFailed('not for this recipient, or malformed');
      const ct = edk.ciphertext;
      if (ct.length <= SALT_LENGTH + COMMIT_LENGTH + TAG_LENGTH) throw unwrapFailed('too short');
      const salt = ct.subarray(0, SALT_LENGTH);
      const stored = ct.subarray(SALT_LENGTH, SALT_LENGTH + COMMIT_LENGTH);
      const encrypted = ct.subarray(SALT_LENGTH + COMMIT_LENGTH, ct.length - TAG_LENGTH);
      const tag = ct.subarray(ct.length - TAG_LENGTH);
      const secret = diffieHellman({ privateKey: own as KeyObject, publicKey: other });
      const fixed = fixedInfo(curve, info.senderPoint, info.recipientPoint, serializeOpenedContext(context));
      const { commit, wrapping } = deriveKeys(secret, fixed, salt);
      secret.fill(0);
      try {
        if (!timingSafeEqual(commit, stored)) throw unwrapFailed('the commitment key does not match');
        const d = createDecipheriv('aes-256-gcm', wrapping, Buffer.alloc(12), { authTagLength: TAG_LENGTH });
        d.setAAD(fixed);
        d.setAuthTag(tag);
        const dataKey = d.update(encrypted);
        try {
          d.final();
        } catch {
          dataKey.fill(0);
          throw unwrapFailed('the wrapped data key failed authentication');
        }
        return dataKey;
      } finally {
        wrapping.fill(0);
        commit.fill(0);
      }
    },
  };
}
