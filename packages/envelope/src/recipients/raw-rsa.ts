/**
 * A recipient byte-compatible with the ESDK raw RSA keyring (framework/raw-rsa-keyring.md):
 * provider id = namespace, provider info = name, ciphertext = RSA-OAEP(data key) with MGF1
 * over the same hash, or RSAES-PKCS1-v1_5 (`pkcs1`). PKCS#1 v1.5 is read, never written: it is
 * the weakest of the ESDK's choices, kept only so that data sealed with it can be opened and
 * migrated. Its decryption is the Bleichenbacher/Marvin target, so it runs only where Node's
 * OpenSSL answers a bad padding with implicit rejection (a random key, no error, no timing
 * difference; Node 22.23, 24 and 26 were tested); builds without it refuse the padding
 * (CVE-2023-46809), and so does this (Unsupported).
 */
import {
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
} from 'node:crypto';
import { KeyportError, UnsupportedError } from '@keyport/core';
import { bytesEqual, utf8Encode } from '../bytes.js';
import type { EncryptedDataKey } from '../header.js';
import { checkUnknown } from '../known-options.js';
import { checkRawNamespace, type Recipient } from './recipient.js';

export type RsaPadding = 'oaep-sha1' | 'oaep-sha256' | 'oaep-sha384' | 'oaep-sha512' | 'pkcs1';

export interface RawRsaRecipientOptions {
  readonly namespace: string;
  readonly name: string;
  /** Needed to seal (a private key also works: its public half is used). */
  readonly publicKey?: KeyObject | string;
  /** Needed to open. */
  readonly privateKey?: KeyObject | string;
  /** Default `oaep-sha256`. `pkcs1` (PKCS#1 v1.5) opens messages only; sealing with it is refused. */
  readonly padding?: RsaPadding;
}

/** OAEP's hash per padding; undefined for PKCS#1 v1.5. */
const HASH: Readonly<Record<RsaPadding, string | undefined>> = {
  'oaep-sha1': 'sha1',
  'oaep-sha256': 'sha256',
  'oaep-sha384': 'sha384',
  'oaep-sha512': 'sha512',
  pkcs1: undefined,
};

/**
 * The public keys' digest for the recipient's id: caches key materials by id, so two recipients
 * that share a name but not a key pair must not share an id. The private key counts through its
 * public half (it may have been configured apart from `publicKey`).
 */
function keyTag(publicKey: KeyObject, privateKey: KeyObject | undefined): string {
  const h = createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' }));
  if (privateKey !== undefined) h.update(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }));
  return h.digest('base64url').slice(0, 22);
}

const OPTION_NAMES = [
  'namespace',
  'name',
  'publicKey',
  'privateKey',
  'padding',
] as const satisfies ReadonlyArray<keyof RawRsaRecipientOptions>;

export function rawRsaRecipient(options: RawRsaRecipientOptions): Recipient {
  // A misspelt option is refused, not ignored.
  if (typeof options === 'object' && options !== null)
    checkUnknown(options, 'rawRsaRecipient options', OPTION_NAMES);
  checkRawNamespace(options.namespace, options.name);
  const padding = options.padding ?? 'oaep-sha256';
  // Own keys only: a padding named after an Object.prototype member ('constructor') is unknown too.
  if (typeof padding !== 'string' || !Object.hasOwn(HASH, padding))
    throw new KeyportError('InvalidArgument', 'unsupported RSA padding');
  const oaepHash = HASH[padding];
  const privateKey =
    options.privateKey === undefined
      ? undefined
      : typeof options.privateKey === 'string'
        ? createPrivateKey(options.privateKey)
        : options.privateKey;
  const publicSource = options.publicKey ?? privateKey;
  const publicKey =
    publicSource === undefined
      ? undefined
      : typeof publicSource === 'string'
        ? createPublicKey(publicSource)
        : publicSource.type === 'private'
          ? createPublicKey(publicSource)
          : publicSource;
  if (publicKey === undefined) throw new KeyportError('InvalidArgument', 'a raw RSA recipient needs a key');
  if (publicKey.asymmetricKeyType !== 'rsa') throw new KeyportError('InvalidArgument', 'not an RSA key');
  const { namespace, name } = options;
  const nameBytes = utf8Encode(name);

  return {
    // The padding too: a seal cache keys materials by id, and one filled through an OAEP-SHA256
    // recipient would hand its EDKs to an OAEP-SHA1 one of the same key (a reader configured as
    // that sealer could not open them).
    id: `raw-rsa:${namespace}/${name}#${padding}:${keyTag(publicKey, privateKey)}`,
    // PKCS#1 v1.5 with implicit rejection returns a wrong key instead of failing (see below).
    ...(oaepHash === undefined ? { unwrapMayReturnWrongKey: true } : {}),
    async wrap(dataKey: Uint8Array): Promise<EncryptedDataKey> {
      if (oaepHash === undefined) {
        throw new KeyportError(
          'InvalidArgument',
          'a raw RSA recipient with PKCS#1 v1.5 padding opens messages only; seal with an OAEP padding',
        );
      }
      const ciphertext = publicEncrypt(
        { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash },
        dataKey,
      );
      return { providerId: namespace, providerInfo: nameBytes, ciphertext };
    },
    matches(edk: EncryptedDataKey): boolean {
      return edk.providerId === namespace && bytesEqual(edk.providerInfo, nameBytes);
    },
    async unwrap(edk: EncryptedDataKey): Promise<Uint8Array> {
      if (privateKey === undefined) {
        throw new KeyportError('InvalidArgument', 'this raw RSA recipient has no private key');
      }
      if (oaepHash === undefined) return pkcs1Decrypt(privateKey, edk.ciphertext);
      try {
        return privateDecrypt(
          { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash },
          edk.ciphertext,
        );
      } catch (cause) {
        // The EDK does not record its padding, so a PKCS#1 v1.5 EDK from another ESDK only
        // fails here. Say so without probing further: telling padding errors apart would be
        // a Bleichenbacher oracle.
        throw new KeyportError(
          'InvalidCiphertext',
          `raw RSA encrypted data key did not decrypt with OAEP-${oaepHash.toUpperCase()} (wrong key, another OAEP hash, or PKCS#1 v1.5 padding: open those with padding 'pkcs1')`,
          { cause },
        );
      }
    },
  };
}

/**
 * RSAES-PKCS1-v1_5 decryption with implicit rejection: a ciphertext whose padding is wrong (or
 * made for another key) yields a deterministic random-looking key rather than an error, so
 * nothing (error, timing) tells an attacker which paddings were right. The unwrap "succeeds" with
 * that wrong key, so open checks it against the header (key commitment, header tag) before taking
 * it and otherwise goes on to the next EDK or recipient, and a wrong length fails that check like
 * a wrong key (no separate error). A Node that cannot do that refuses the padding
 * (ERR_INVALID_ARG_VALUE, CVE-2023-46809): reported as Unsupported.
 */
function pkcs1Decrypt(privateKey: KeyObject, ciphertext: Uint8Array): Uint8Array {
  try {
    return privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, ciphertext);
  } catch (cause) {
    if ((cause as { code?: unknown }).code === 'ERR_INVALID_ARG_VALUE') {
      throw new UnsupportedError(
        'rsa-pkcs1-decrypt',
        `this Node (${process.version}) refuses PKCS#1 v1.5 decryption (no implicit rejection in its OpenSSL); open the message on a current Node 22, 24 or later`,
        { cause },
      );
    }
    // Implicit rejection leaves only malformed input to fail here (a ciphertext longer than
    // the modulus, say): no padding oracle either way.
    throw new KeyportError(
      'InvalidCiphertext',
      'raw RSA encrypted data key did not decrypt with PKCS#1 v1.5',
      {
        cause,
      },
    );
  }
}
