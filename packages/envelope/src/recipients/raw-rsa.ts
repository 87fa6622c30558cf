/**
 * A recipient byte-compatible with the ESDK raw RSA keyring (framework/raw-rsa-keyring.md):
 * provider id = namespace, provider info = name, ciphertext = RSA-OAEP(data key) with MGF1
 * over the same hash. PKCS#1 v1.5 is not offered: Node 20 refuses v1.5 decryption
 * (CVE-2023-46809) and it is the weakest of the ESDK's choices.
 */
import {
  constants,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
} from 'node:crypto';
import { KeyportError } from '@keyport/core';
import { bytesEqual, utf8Encode } from '../bytes.js';
import type { EncryptedDataKey } from '../header.js';
import { checkUnknown } from '../known-options.js';
import { checkRawNamespace, type Recipient } from './recipient.js';

export type RsaPadding = 'oaep-sha1' | 'oaep-sha256' | 'oaep-sha384' | 'oaep-sha512';

export interface RawRsaRecipientOptions {
  readonly namespace: string;
  readonly name: string;
  /** Needed to seal (a private key also works: its public half is used). */
  readonly publicKey?: KeyObject | string;
  /** Needed to open. */
  readonly privateKey?: KeyObject | string;
  /** Default `oaep-sha256`. */
  readonly padding?: RsaPadding;
}

const HASH: Readonly<Record<RsaPadding, string>> = {
  'oaep-sha1': 'sha1',
  'oaep-sha256': 'sha256',
  'oaep-sha384': 'sha384',
  'oaep-sha512': 'sha512',
};

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
  const oaepHash = typeof padding === 'string' && Object.hasOwn(HASH, padding) ? HASH[padding] : undefined;
  if (oaepHash === undefined) throw new KeyportError('InvalidArgument', 'unsupported RSA padding');
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
    id: `raw-rsa:${namespace}/${name}`,
    async wrap(dataKey: Uint8Array): Promise<EncryptedDataKey> {
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
          `raw RSA encrypted data key did not decrypt with OAEP-${oaepHash.toUpperCase()} (wrong key, another OAEP hash, or PKCS#1 v1.5 padding, which keyport does not support)`,
          { cause },
        );
      }
    },
  };
}
