/**
 * A recipient byte-compatible with the Material Providers Library's AWS KMS RSA keyring
 * (framework/aws-kms/aws-kms-rsa-keyring.md; Python ESDK 4, Java ESDK 3, Go ESDK): the data key is
 * wrapped here with the KMS key's public half, and unwrapped by AWS KMS Decrypt with the private
 * half, which never leaves KMS.
 *
 * - EDK: provider id `aws-kms-rsa`, provider info = the key ARN, ciphertext =
 *   RSA-OAEP-SHA256(SHA-384(serialized context) || data key).
 * - An RSA KMS key takes no encryption context, so the context is bound by that digest instead:
 *   the unwrap compares it with the message's own and refuses the data key when they differ.
 * - Signed suites are refused, as the keyring refuses them: anyone holding the public key can wrap
 *   a data key for any context, so a signature would prove nothing about who sealed.
 * - Only RSAES_OAEP_SHA_256: the EDK does not record the OAEP hash, and keyport's KMS calls use
 *   SHA-256 with RSA keys; an EDK wrapped with RSAES_OAEP_SHA_1 fails its unwrap.
 */
import {
  constants,
  createHash,
  createPublicKey,
  type KeyObject,
  publicEncrypt,
  timingSafeEqual,
} from 'node:crypto';
import { type EncryptionContext, KeyportError, parseKeyUri, UnsupportedError } from '@keyport/core';
import { utf8Decode, utf8Encode } from '../bytes.js';
import { serializeOpenedContext } from '../context-codec.js';
import type { EncryptedDataKey } from '../header.js';
import { checkUnknown } from '../known-options.js';
import { PUBLIC_KEY_CONTEXT_KEY } from '../suites.js';
import { KEY_ARN, mrkMatch, needKeys } from './kms.js';
import { type Recipient, type RecipientEnv, wrapContextBytes } from './recipient.js';

export const AWS_KMS_RSA_PROVIDER_ID = 'aws-kms-rsa';

export interface AwsKmsRsaRecipientOptions {
  /**
   * The RSA KMS key (key usage ENCRYPT_DECRYPT) as a key URI naming its ARN:
   * `aws-kms://arn:aws:kms:…:key/…`, optionally of an instance (`aws-kms+dr://…`) or with
   * `?endpoint=` / `?region=`. Not an alias: the EDK records the key.
   */
  readonly key: string;
  /**
   * The key's public half (PEM, SPKI DER or a KeyObject), at least 2048 bits, used to seal. When
   * left out, the first seal asks KMS for it (GetPublicKey through `keys`) and keeps it.
   */
  readonly publicKey?: string | Uint8Array | KeyObject;
  /** `RSAES_OAEP_SHA_256` (the default) is the one keyport can unwrap. */
  readonly encryptionAlgorithm?: 'RSAES_OAEP_SHA_256';
}

const OPTION_NAMES = ['key', 'publicKey', 'encryptionAlgorithm'] as const satisfies ReadonlyArray<
  keyof AwsKmsRsaRecipientOptions
>;

/** SHA-384's length: the wrapped plaintext is this digest, then the data key. */
const DIGEST_LENGTH = 48;
const MIN_MODULUS_BITS = 2048;

const contextDigest = (serialized: Uint8Array): Buffer => createHash('sha384').update(serialized).digest();

function rsaPublicKey(source: string | Uint8Array | KeyObject, uri: string): KeyObject {
  let key: KeyObject;
  try {
    if (typeof source === 'string') key = createPublicKey(source);
    else if (source instanceof Uint8Array)
      key = createPublicKey({ key: Buffer.from(source), format: 'der', type: 'spki' });
    else key = source.type === 'private' ? createPublicKey(source) : source;
  } catch (cause) {
    throw new KeyportError('InvalidArgument', 'aws-kms-rsa publicKey is not a readable public key', {
      keyUri: uri,
      cause,
    });
  }
  if (key.type !== 'public' && key.type !== 'private')
    throw new KeyportError('InvalidArgument', 'aws-kms-rsa publicKey must be an RSA public key', {
      keyUri: uri,
    });
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || bits < MIN_MODULUS_BITS)
    throw new KeyportError(
      'InvalidArgument',
      `aws-kms-rsa publicKey must be an RSA key of at least ${MIN_MODULUS_BITS} bits (the keyring's rule: the wrapped SHA-384 digest does not fit smaller ones)`,
      { keyUri: uri },
    );
  return key;
}

function callOptions(env: RecipientEnv) {
  return {
    ...(env.signal !== undefined ? { signal: env.signal } : {}),
    ...(env.timeoutMs !== undefined ? { timeoutMs: env.timeoutMs } : {}),
  };
}

export function awsKmsRsaRecipient(options: AwsKmsRsaRecipientOptions): Recipient {
  if (typeof options !== 'object' || options === null)
    throw new KeyportError('InvalidArgument', 'awsKmsRsaRecipient needs options: { key, publicKey? }');
  checkUnknown(options, 'awsKmsRsaRecipient options', OPTION_NAMES);
  const uri = options.key;
  const parsed = typeof uri === 'string' ? parseKeyUri(uri) : undefined;
  const arn = parsed?.scheme === 'aws-kms' && KEY_ARN.test(parsed.keyId) ? parsed.keyId : undefined;
  if (arn === undefined)
    throw new KeyportError(
      'InvalidArgument',
      'awsKmsRsaRecipient key: an aws-kms:// key URI naming a key ARN (not an alias: the EDK records the key)',
    );
  const algorithm = options.encryptionAlgorithm ?? 'RSAES_OAEP_SHA_256';
  if (algorithm !== 'RSAES_OAEP_SHA_256') {
    throw (algorithm as string) === 'RSAES_OAEP_SHA_1'
      ? new UnsupportedError(
          'aws-kms-rsa-oaep-sha1',
          'awsKmsRsaRecipient: RSAES_OAEP_SHA_1 is not supported (keyport unwraps with RSAES_OAEP_SHA_256)',
          { keyUri: uri },
        )
      : new KeyportError('InvalidArgument', 'awsKmsRsaRecipient encryptionAlgorithm: RSAES_OAEP_SHA_256', {
          keyUri: uri,
        });
  }
  const given = options.publicKey === undefined ? undefined : rsaPublicKey(options.publicKey, uri);
  let fetched: Promise<KeyObject> | undefined;
  const publicKeyFor = (env: RecipientEnv): Promise<KeyObject> => {
    if (given !== undefined) return Promise.resolve(given);
    if (fetched === undefined) {
      const keys = needKeys(env, 'getPublicKey');
      fetched = keys.getPublicKey(uri, callOptions(env)).then((spki) => rsaPublicKey(spki, uri));
      // A failed fetch (an abort, KMS down) is not kept: the next seal asks again.
      fetched.catch(() => {
        fetched = undefined;
      });
    }
    return fetched;
  };
  const infoBytes = utf8Encode(arn);

  return {
    // The ARN names the key pair; a configured public key that is not that key's would still
    // seal, so its digest is part of the id (a seal cache must not mix two such recipients).
    id: `${AWS_KMS_RSA_PROVIDER_ID}:${arn}${
      given === undefined
        ? ''
        : `#${createHash('sha256')
            .update(given.export({ type: 'spki', format: 'der' }))
            .digest('base64url')
            .slice(0, 22)}`
    }`,
    async wrap(
      dataKey: Uint8Array,
      context: EncryptionContext,
      env: RecipientEnv,
    ): Promise<EncryptedDataKey> {
      if (Object.hasOwn(context, PUBLIC_KEY_CONTEXT_KEY)) {
        throw new KeyportError(
          'InvalidArgument',
          'an aws-kms-rsa recipient cannot seal a signed suite (anyone with the public key can wrap a data key, so a signature would prove nothing); use an unsigned suite such as 0x0478',
          { keyUri: uri },
        );
      }
      const key = await publicKeyFor(env);
      const plaintext = Buffer.concat([contextDigest(wrapContextBytes(context, env)), dataKey]);
      try {
        const ciphertext = publicEncrypt(
          { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
          plaintext,
        );
        return { providerId: AWS_KMS_RSA_PROVIDER_ID, providerInfo: infoBytes, ciphertext };
      } finally {
        plaintext.fill(0);
      }
    },
    matches(edk: EncryptedDataKey): boolean {
      if (edk.providerId !== AWS_KMS_RSA_PROVIDER_ID) return false;
      let info: string;
      try {
        info = utf8Decode(edk.providerInfo);
      } catch {
        return false;
      }
      return KEY_ARN.test(info) && mrkMatch(arn, info);
    },
    async unwrap(edk: EncryptedDataKey, context: EncryptionContext, env: RecipientEnv): Promise<Uint8Array> {
      const r = await needKeys(env, 'decrypt').decrypt(uri, edk.ciphertext, callOptions(env));
      const plaintext = r.plaintext;
      try {
        const keyLength = plaintext.length - DIGEST_LENGTH;
        if (keyLength !== 16 && keyLength !== 24 && keyLength !== 32) {
          throw new KeyportError(
            'InvalidCiphertext',
            'the aws-kms-rsa encrypted data key has the wrong length',
            {
              keyUri: uri,
            },
          );
        }
        const expected = contextDigest(serializeOpenedContext(context));
        if (!timingSafeEqual(plaintext.subarray(0, DIGEST_LENGTH), expected)) {
          throw new KeyportError(
            'InvalidCiphertext',
            "the aws-kms-rsa encrypted data key was wrapped for another encryption context than the message's",
            { keyUri: uri },
          );
        }
        // A copy (Buffer's `slice` would be a view of what `finally` zeroes).
        return new Uint8Array(plaintext.subarray(DIGEST_LENGTH));
      } finally {
        plaintext.fill(0);
      }
    },
  };
}
