/**
 * A recipient byte-compatible with the ESDK raw AES keyring (framework/raw-aes-keyring.md):
 * AES-GCM (128/192/256-bit wrapping key), random 12-byte IV, 16-byte tag, AAD = the serialized
 * encryption context; provider id = namespace; provider info = name || u32 tag bits (128) ||
 * u32 IV length (12) || IV; ciphertext = encrypted data key || tag.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  KeyObject,
  randomBytes,
} from 'node:crypto';
import { type EncryptionContext, KeyportError } from '@keyport/core';
import { bytesEqual, utf8Encode } from '../bytes.js';
import { serializeContextEsdkJsLegacy, serializeOpenedContext } from '../context-codec.js';
import type { EncryptedDataKey } from '../header.js';
import { checkUnknown } from '../known-options.js';
import { checkRawNamespace, type Recipient, type RecipientEnv, wrapContextBytes } from './recipient.js';

export interface RawAesRecipientOptions {
  /** ESDK key namespace (the EDK provider id). */
  readonly namespace: string;
  /** ESDK key name (starts the EDK provider info). */
  readonly name: string;
  /** A 16-, 24- or 32-byte AES key, as bytes or a secret KeyObject. */
  readonly key: Uint8Array | KeyObject;
}

const IV_LENGTH = 12;
const TAG_LENGTH = 16;
type AesGcm = 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';
const AES_GCM_BY_SIZE: Partial<Record<number, AesGcm>> = {
  16: 'aes-128-gcm',
  24: 'aes-192-gcm',
  32: 'aes-256-gcm',
};

/**
 * The wrapping key as a KeyObject, whatever the caller gave: bytes are copied once into it and
 * no JavaScript copy is kept. (A `Buffer.from` copy of a short key lands in Node's shared Buffer
 * pool, beside unrelated data, where it can be neither zeroed nor freed on its own.) A KeyObject
 * is as fast as bytes on every supported line for a key used many times (Node 22 2.45 vs 2.51 µs
 * per 32-byte wrap, 26 2.99 vs 3.10) and much faster on 24 (see core's secretKey).
 */
function wrappingKeyOf(key: unknown): { key: KeyObject; cipher: AesGcm } {
  let size: number | undefined;
  if (key instanceof Uint8Array) size = key.length;
  else if (key instanceof KeyObject && key.type === 'secret') size = key.symmetricKeySize;
  const cipher = size === undefined ? undefined : AES_GCM_BY_SIZE[size];
  if (cipher === undefined) {
    throw new KeyportError(
      'InvalidArgument',
      'a raw AES wrapping key is 16, 24 or 32 bytes, as a Uint8Array or a secret KeyObject',
    );
  }
  return { key: key instanceof KeyObject ? key : createSecretKey(key as Uint8Array), cipher };
}

/**
 * A non-secret tag of the wrapping key for the recipient's id: caches key materials by id, so two
 * recipients that share a name but not a key must not share an id (one would open, or seal with,
 * the other's data keys). An HMAC under the key itself says nothing about the key.
 */
function keyTag(key: KeyObject): string {
  return createHmac('sha256', key).update('keyport raw-aes recipient id').digest('base64url').slice(0, 22);
}

const OPTION_NAMES = ['namespace', 'name', 'key'] as const satisfies ReadonlyArray<
  keyof RawAesRecipientOptions
>;

export function rawAesRecipient(options: RawAesRecipientOptions): Recipient {
  // A misspelt option is refused, not ignored.
  if (typeof options === 'object' && options !== null)
    checkUnknown(options, 'rawAesRecipient options', OPTION_NAMES);
  checkRawNamespace(options.namespace, options.name);
  const { key: wrappingKey, cipher } = wrappingKeyOf(options.key);
  const { namespace, name } = options;
  const nameBytes = utf8Encode(name);
  const infoLength = nameBytes.length + 8 + IV_LENGTH;

  return {
    id: `raw-aes:${namespace}/${name}#${keyTag(wrappingKey)}`,
    async wrap(
      dataKey: Uint8Array,
      context: EncryptionContext,
      env?: RecipientEnv,
    ): Promise<EncryptedDataKey> {
      const iv = randomBytes(IV_LENGTH);
      const c = createCipheriv(cipher, wrappingKey, iv, { authTagLength: TAG_LENGTH });
      c.setAAD(wrapContextBytes(context, env));
      const ct = Buffer.concat([c.update(dataKey), c.final(), c.getAuthTag()]);
      const info = Buffer.alloc(infoLength);
      info.set(nameBytes, 0);
      info.writeUInt32BE(TAG_LENGTH * 8, nameBytes.length);
      info.writeUInt32BE(IV_LENGTH, nameBytes.length + 4);
      info.set(iv, nameBytes.length + 8);
      return { providerId: namespace, providerInfo: info, ciphertext: ct };
    },
    matches(edk: EncryptedDataKey): boolean {
      if (edk.providerId !== namespace || edk.providerInfo.length !== infoLength) return false;
      const info = Buffer.from(edk.providerInfo.buffer, edk.providerInfo.byteOffset, edk.providerInfo.length);
      return (
        bytesEqual(info.subarray(0, nameBytes.length), nameBytes) &&
        info.readUInt32BE(nameBytes.length) === TAG_LENGTH * 8 &&
        info.readUInt32BE(nameBytes.length + 4) === IV_LENGTH
      );
    },
    async unwrap(edk: EncryptedDataKey, context: EncryptionContext): Promise<Uint8Array> {
      if (edk.ciphertext.length <= TAG_LENGTH) {
        throw new KeyportError('InvalidCiphertext', 'raw AES encrypted data key is too short');
      }
      // The spec's AAD first; then the order ESDK-JS's raw AES keyring uses by default, so its
      // messages open here even when the context keys sort differently under localeCompare.
      // That order is built only when the first fails (a 64 KiB context of 8,000 pairs takes
      // tens of milliseconds to sort by localeCompare).
      let failure: unknown;
      for (const aadOf of [serializeOpenedContext, serializeContextEsdkJsLegacy]) {
        const aad = aadOf(context);
        if (aad === undefined) continue;
        try {
          return decryptWith(edk, aad);
        } catch (cause) {
          failure = cause;
        }
      }
      throw new KeyportError('InvalidCiphertext', 'raw AES encrypted data key did not authenticate', {
        cause: failure,
      });
    },
  };

  function decryptWith(edk: EncryptedDataKey, aad: Uint8Array): Buffer {
    const iv = edk.providerInfo.subarray(nameBytes.length + 8);
    const body = edk.ciphertext.subarray(0, edk.ciphertext.length - TAG_LENGTH);
    const d = createDecipheriv(cipher, wrappingKey, iv, { authTagLength: TAG_LENGTH });
    d.setAAD(aad);
    d.setAuthTag(edk.ciphertext.subarray(edk.ciphertext.length - TAG_LENGTH));
    const out = d.update(body);
    try {
      d.final();
    } catch (cause) {
      out.fill(0);
      throw cause;
    }
    return out;
  }
}
