/**
 * Recipients served by a KMS through `KeyOperations`.
 *
 * - `aws-kms://` keys are encoded exactly as the ESDK AWS KMS keyring does: provider id
 *   `aws-kms`, provider info = the key ARN, ciphertext = the KMS ciphertext blob, and the
 *   message's encryption context as the KMS encryption context.
 * - Every other scheme: provider id `keyport:<scheme>`, provider info = the full key URI
 *   pinned to the key version that wrapped (core's `withKeyVersion`), so open calls the
 *   exact version even after rotation.
 */
import {
  type EncryptionContext,
  type KeyOperations,
  KeyportError,
  keyUriScheme,
  parseKeyRef,
  parseKeyUri,
  splitKeyUri,
  toMessageContext,
  withKeyVersion,
} from '@keyport/core';
import { utf8Decode, utf8Encode } from '../bytes.js';
import type { EncryptedDataKey } from '../header.js';
import { checkUnknown } from '../known-options.js';
import type { GeneratedDataKey, Recipient, RecipientEnv } from './recipient.js';

export const AWS_KMS_PROVIDER_ID = 'aws-kms';
export const KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key\/[A-Za-z0-9-]+$/;
/** A multi-Region key's ARN: partition, account and `mrk-` key id (an alias is never one). */
const MRK_ARN = /^arn:(aws[a-z-]*):kms:[a-z0-9-]+:([0-9]{12}):key\/(mrk-[A-Za-z0-9-]+)$/;

/**
 * Whether a trusted key ARN opens an EDK naming `stored` (the ESDK's "AWS KMS MRK match for
 * decrypt"): the same ARN, or two multi-Region key ARNs that differ only in their region (the
 * replicas of one key share its material; the call still goes to the trusted one's region).
 */
export function mrkMatch(trusted: string, stored: string): boolean {
  if (trusted === stored) return true;
  const a = MRK_ARN.exec(trusted);
  const b = MRK_ARN.exec(stored);
  return a !== null && b !== null && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}

export function needKeys(
  env: RecipientEnv,
  method: 'generateDataKey' | 'encrypt' | 'decrypt' | 'getPublicKey',
): KeyOperations {
  // `keys: {}` (or a client of another shape) is the caller's mistake: InvalidArgument, not a
  // TypeError from the call below.
  if (env.keys === undefined || typeof env.keys[method] !== 'function') {
    throw new KeyportError('InvalidArgument', 'KMS recipients need `keys` (a KeyOperations, e.g. Keyport)');
  }
  return env.keys;
}

/**
 * A KMS call's options. `fromMessage`: the context was read from a message (open's unwrap, a
 * rewrap's new EDK), whose KMS data keys are bound to it as it is, an empty key included (other
 * ESDKs write one): handed to the call as core's `toMessageContext`, which lets the key through
 * core's and the driver's checks. Only then: what keyport seals keeps core's rule.
 */
function callOptions(context: EncryptionContext, env: RecipientEnv, fromMessage = false) {
  return {
    context: fromMessage && Object.hasOwn(context, '') ? toMessageContext(context) : context,
    ...(env.signal !== undefined ? { signal: env.signal } : {}),
    ...(env.timeoutMs !== undefined ? { timeoutMs: env.timeoutMs } : {}),
  };
}

/**
 * A data key of `length` bytes, or (unwrapping, where the suite is checked later) of any length
 * an ESDK suite uses: 16 and 24 for the v1 AES-128 and AES-192 suites.
 */
function checkDataKey(plaintext: Uint8Array, uri: string, length?: number): Uint8Array {
  const n = plaintext.length;
  if (length === undefined ? n !== 16 && n !== 24 && n !== 32 : n !== length) {
    throw new KeyportError('InvalidCiphertext', 'the KMS returned a data key of the wrong length', {
      keyUri: uri,
    });
  }
  return plaintext;
}

/** Versionless form used to compare a trusted URI with the one in an EDK. */
function unpinned(uri: string): string {
  return withKeyVersion(uri, undefined);
}

/** A recipient for one key URI. Matches EDKs of that key (any version unless the URI pins one). */
export function kmsRecipient(uri: string): Recipient {
  // Any scheme: built in, or learnt from a driver a Keyport registered (third-party drivers).
  const parsed = parseKeyRef(uri);
  const scheme = keyUriScheme(uri);
  const aws = scheme === 'aws-kms';
  const awsKey = aws ? parseKeyUri(uri) : undefined;
  const keyId = awsKey?.scheme === 'aws-kms' ? awsKey.keyId : '';
  const arn = aws && KEY_ARN.test(keyId) ? keyId : undefined;
  const providerId = aws ? AWS_KMS_PROVIDER_ID : `keyport:${scheme}`;
  const pinned = !aws && parsed.version !== undefined;
  const base = aws ? uri : unpinned(uri);

  const edkFor = (wrapped: Uint8Array, keyVersion: string | undefined): EncryptedDataKey => {
    if (aws) {
      if (arn === undefined) {
        throw new KeyportError(
          'InvalidArgument',
          'aws-kms recipients need a key ARN (the ESDK records the ARN in the EDK)',
          { keyUri: uri },
        );
      }
      return { providerId, providerInfo: utf8Encode(arn), ciphertext: wrapped };
    }
    const info = keyVersion === undefined ? uri : withKeyVersion(uri, keyVersion);
    return { providerId, providerInfo: utf8Encode(info), ciphertext: wrapped };
  };

  return {
    id: `${providerId}:${aws ? (arn ?? uri) : uri}`,
    async generate(length, context, env): Promise<GeneratedDataKey> {
      if (aws && arn === undefined) edkFor(new Uint8Array(0), undefined);
      const r = await needKeys(env, 'generateDataKey').generateDataKey(uri, {
        ...callOptions(context, env),
        bytes: length,
      });
      return { dataKey: checkDataKey(r.plaintext, uri, length), edk: edkFor(r.wrapped, r.keyVersion) };
    },
    async wrap(dataKey, context, env): Promise<EncryptedDataKey> {
      if (aws && arn === undefined) edkFor(new Uint8Array(0), undefined);
      const options = callOptions(context, env, env.contextFromMessage === true);
      const r = await needKeys(env, 'encrypt').encrypt(uri, dataKey, options);
      return edkFor(r.ciphertext, r.keyVersion);
    },
    matches(edk): boolean {
      if (edk.providerId !== providerId) return false;
      let info: string;
      try {
        info = utf8Decode(edk.providerInfo);
      } catch {
        return false;
      }
      if (aws) return arn !== undefined && mrkMatch(arn, info);
      try {
        if (keyUriScheme(info) !== scheme) return false;
        return pinned ? info === uri : unpinned(info) === base;
      } catch {
        return false;
      }
    },
    async unwrap(edk, context, env): Promise<Uint8Array> {
      // aws-kms: call the trusted URI (it may carry ?endpoint=); others: the exact version.
      const target = aws ? uri : utf8Decode(edk.providerInfo);
      const options = callOptions(context, env, true);
      const r = await needKeys(env, 'decrypt').decrypt(target, edk.ciphertext, options);
      return checkDataKey(r.plaintext, target);
    },
  };
}

/**
 * Which aws-kms keys discovery may call (the ESDK's discovery filter): keys of these accounts in
 * this partition only. Both are required, as in the ESDK: a message names the key, and without
 * a filter any account's key it names is called with the caller's credentials.
 */
export interface AwsDiscoveryFilter {
  /** 12-digit AWS account ids. */
  readonly accounts: readonly string[];
  /** `aws`, `aws-us-gov`, `aws-cn`, … */
  readonly partition: string;
}

/**
 * Which gcp-kms keys discovery may call: keys of these projects only (as the key URI names the
 * project: its id, or its number). Without it a message can make the caller call Decrypt, with
 * its own credentials, on a key in any project, the sender's included (which then learns who
 * opened the message, from its own audit log).
 */
export interface GcpDiscoveryFilter {
  /** Cloud KMS project ids (`my-project`) or numbers. */
  readonly projects: readonly string[];
}

/** A discovery filter: aws-kms accounts and partition, or gcp-kms projects. */
export type DiscoveryFilter = AwsDiscoveryFilter | GcpDiscoveryFilter;

/** An AWS account id as a discovery filter takes it: 12 digits. */
export const isAwsAccountId = (s: string): boolean => /^[0-9]{12}$/.test(s);
/** An AWS partition as a discovery filter takes it: `aws`, `aws-cn`, `aws-us-gov`, ... */
export const isAwsPartition = (s: string): boolean => /^aws[a-z-]*$/.test(s);
/** A Cloud KMS project as a key URI names it: an id (6-30 characters) or a project number. */
export const isGcpProject = (s: string): boolean => /^(?:[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})$/.test(s);

const nonEmptyListOf = (v: unknown, ok: (s: string) => boolean): v is string[] =>
  Array.isArray(v) && v.length > 0 && v.every((a) => typeof a === 'string' && ok(a));

function checkFilter(scheme: string, filter: unknown): DiscoveryFilter {
  if (scheme !== 'aws-kms' && scheme !== 'gcp-kms')
    throw new KeyportError(
      'InvalidArgument',
      'a discovery filter is for aws-kms ({ accounts, partition }) or gcp-kms ({ projects }) only',
    );
  if (typeof filter !== 'object' || filter === null)
    throw new KeyportError(
      'InvalidArgument',
      scheme === 'aws-kms'
        ? 'a discovery filter is { accounts, partition }'
        : 'a discovery filter is { projects }',
    );
  if (scheme === 'gcp-kms') {
    checkUnknown(filter, 'discovery filter', GCP_FILTER_NAMES);
    const { projects } = filter as { projects?: unknown };
    if (!nonEmptyListOf(projects, isGcpProject))
      throw new KeyportError(
        'InvalidArgument',
        'discovery filter projects: a non-empty list of Cloud KMS project ids or numbers',
      );
    return { projects: [...projects] };
  }
  checkUnknown(filter, 'discovery filter', AWS_FILTER_NAMES);
  const { accounts, partition } = filter as { accounts?: unknown; partition?: unknown };
  if (!nonEmptyListOf(accounts, isAwsAccountId))
    throw new KeyportError(
      'InvalidArgument',
      'discovery filter accounts: a non-empty list of 12-digit AWS account ids',
    );
  if (typeof partition !== 'string' || !isAwsPartition(partition))
    throw new KeyportError('InvalidArgument', 'discovery filter partition: an AWS partition such as "aws"');
  return { accounts: [...accounts], partition };
}
const AWS_FILTER_NAMES = ['accounts', 'partition'] as const;
const GCP_FILTER_NAMES = ['projects'] as const;

/** Whether a discovered key (its URI) is one `filter` lets discovery call. */
function allowedBy(filter: DiscoveryFilter, uri: string): boolean {
  const named = parseKeyUri(uri);
  if ('projects' in filter) return named.scheme === 'gcp-kms' && filter.projects.includes(named.project);
  // aws-kms: arn:<partition>:kms:<region>:<account>:key/<id>
  const [, partition, , , account] = (named.scheme === 'aws-kms' ? named.keyId : '').split(':');
  return partition === filter.partition && filter.accounts.includes(account as string);
}

/** The part of a recipient id that names its filter. */
const filterId = (filter: DiscoveryFilter): string =>
  'projects' in filter ? filter.projects.join(',') : `${filter.partition}:${filter.accounts.join(',')}`;

/**
 * Trusts every key of one scheme that a message names (like the ESDK discovery keyring), or for
 * aws-kms with a `filter`, every key of the filter's accounts and partition. Opt-in only: `open`
 * never trusts keys just because the message names them. For aws-kms only a bare key ARN is
 * taken, as the ESDK writes it: the ARN's region picks the endpoint. A key URI may carry
 * `?endpoint=` or `?region=`, and a message that could name one would send the caller's signed
 * KMS request to any host it likes (a request forged from inside the caller's network).
 *
 * `scheme` may name an instance (`aws-kms+dr`): then only that instance is called. An aws-kms EDK
 * records a bare ARN, so every ARN is called through the instance (its endpoint, credentials);
 * other schemes record the full key URI, so only EDKs naming that instance match.
 */
export function anyKeyOf(scheme: string, filter?: DiscoveryFilter): Recipient {
  const { scheme: base, instance } = splitKeyUri(`${scheme}://`);
  const aws = base === 'aws-kms';
  const allowed = filter === undefined ? undefined : checkFilter(base, filter);
  const providerId = aws ? AWS_KMS_PROVIDER_ID : `keyport:${base}`;
  const uriOf = (edk: EncryptedDataKey): string => {
    const info = utf8Decode(edk.providerInfo);
    return aws ? `${scheme}://${info}` : info;
  };
  return {
    id: allowed === undefined ? `any:${scheme}` : `any:${scheme}:${filterId(allowed)}`,
    async wrap(): Promise<EncryptedDataKey> {
      throw new KeyportError('InvalidArgument', 'anyKeyOf() is for open only; seal needs key URIs');
    },
    matches(edk): boolean {
      if (edk.providerId !== providerId) return false;
      try {
        if (aws && !KEY_ARN.test(utf8Decode(edk.providerInfo))) return false;
        const uri = uriOf(edk);
        if (allowed !== undefined && !allowedBy(allowed, uri)) return false;
        const named = splitKeyUri(uri);
        if (named.scheme !== base || parseKeyRef(uri) === undefined) return false;
        return instance === undefined || named.instance === instance;
      } catch {
        return false;
      }
    },
    async unwrap(edk, context, env): Promise<Uint8Array> {
      return kmsRecipient(uriOf(edk)).unwrap(edk, context, env);
    },
  };
}
