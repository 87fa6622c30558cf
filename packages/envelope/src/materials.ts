/**
 * Getting the data key: on seal from the recipients (the first generates, the rest wrap in
 * parallel), on open from the first trusted recipient that can unwrap one of the message's
 * EDKs, in a deterministic order (trust order, then EDK order), collecting every failure.
 */
import { randomBytes } from 'node:crypto';
import { type EncryptionContext, type ErrorCode, KeyportError, quote, toKeyportError } from '@keyport/core';
import { bytesEqual } from './bytes.js';
import type { EncryptedDataKey } from './header.js';
import { checkUnknown } from './known-options.js';
import { anyKeyOf, type DiscoveryFilter, kmsRecipient } from './recipients/kms.js';
import { isRecipient, type Recipient, type RecipientEnv } from './recipients/recipient.js';
import { generateSigningKey, type SigningKey } from './signing.js';
import { type AlgorithmSuite, PUBLIC_KEY_CONTEXT_KEY, RESERVED_CONTEXT_PREFIX } from './suites.js';

/** A recipient object, or a key URI string for a KMS recipient. */
export type RecipientLike = Recipient | string;
/**
 * What `open` may use: recipients, key URIs, or `{ anyKeyOf: scheme }` (opt-in discovery; for
 * aws-kms optionally limited with `accounts` and `partition`, the ESDK's discovery filter, for
 * gcp-kms with `projects`).
 */
export type TrustEntry =
  | RecipientLike
  | {
      readonly anyKeyOf: string;
      readonly accounts?: readonly string[];
      readonly partition?: string;
      readonly projects?: readonly string[];
    };
const ANY_KEY_OF_NAMES = ['anyKeyOf', 'accounts', 'partition', 'projects'] as const;

export function toRecipient(r: RecipientLike): Recipient {
  if (typeof r === 'string') return kmsRecipient(r);
  if (isRecipient(r)) return r;
  throw new KeyportError('InvalidArgument', 'a recipient is a key URI or a recipient object');
}

export function toTrusted(t: TrustEntry): Recipient {
  if (typeof t === 'object' && t !== null && 'anyKeyOf' in t && typeof t.anyKeyOf === 'string') {
    // A misspelt filter (`account:`) must not leave discovery open to every account.
    checkUnknown(t, 'trust entry', ANY_KEY_OF_NAMES);
    const { accounts, partition, projects } = t;
    if (projects !== undefined)
      return accounts === undefined && partition === undefined
        ? anyKeyOf(t.anyKeyOf, { projects })
        : // Both kinds at once: the filter check names what is wrong with it.
          anyKeyOf(t.anyKeyOf, { accounts, partition, projects } as unknown as DiscoveryFilter);
    return accounts === undefined && partition === undefined
      ? anyKeyOf(t.anyKeyOf)
      : anyKeyOf(t.anyKeyOf, { accounts, partition } as DiscoveryFilter);
  }
  return toRecipient(t as RecipientLike);
}

export interface EncryptionMaterials {
  readonly dataKey: Uint8Array;
  readonly encryptedDataKeys: readonly EncryptedDataKey[];
  /** The full context written to the header (with the public key for signed suites). */
  readonly context: EncryptionContext;
  readonly signingKey: SigningKey | undefined;
}

/**
 * `auto` (default): one recipient that can generate (a KMS) generates; with several recipients
 * keyport draws the data key and all wrap at once (one round trip, not generate-then-wrap).
 * `first-recipient`: the first recipient generates when it can, then the others wrap.
 * `local`: keyport always draws the data key.
 */
export type DataKeySource = 'auto' | 'first-recipient' | 'local';

export function checkCallerContext(context: EncryptionContext | undefined): EncryptionContext {
  const ctx = context ?? {};
  // A Map is accepted as a context too (core's `toEncryptionContext`); check its keys as well.
  const keys =
    (ctx as unknown) instanceof Map
      ? [...(ctx as unknown as Map<unknown, unknown>).keys()]
      : Object.keys(ctx);
  for (const k of keys) {
    if (typeof k !== 'string') continue;
    if (k.startsWith(RESERVED_CONTEXT_PREFIX)) {
      throw new KeyportError(
        'InvalidArgument',
        `encryption context keys starting with "${RESERVED_CONTEXT_PREFIX}" are reserved (got ${quote(k)})`,
      );
    }
  }
  return ctx;
}

export async function getEncryptionMaterials(
  suite: AlgorithmSuite,
  recipients: readonly Recipient[],
  callerContext: EncryptionContext,
  env: RecipientEnv,
  source: DataKeySource = 'auto',
): Promise<EncryptionMaterials> {
  if (recipients.length === 0) throw new KeyportError('InvalidArgument', 'seal needs at least one recipient');
  const signingKey = suite.signed ? generateSigningKey() : undefined;
  const context: EncryptionContext =
    signingKey === undefined
      ? callerContext
      : { ...callerContext, [PUBLIC_KEY_CONTEXT_KEY]: signingKey.publicKeyBase64 };
  const [first, ...rest] = recipients as [Recipient, ...Recipient[]];
  let dataKey: Uint8Array;
  const edks: EncryptedDataKey[] = [];
  const generateFirst =
    first.generate !== undefined &&
    (source === 'first-recipient' || (source === 'auto' && recipients.length === 1));
  if (generateFirst && first.generate !== undefined) {
    const g = await first.generate(suite.keyLength, context, env);
    dataKey = g.dataKey;
    edks.push(g.edk);
  } else {
    dataKey = randomBytes(suite.keyLength);
    rest.unshift(first);
  }
  try {
    // Every other recipient wraps the same data key at the same time.
    edks.push(...(await Promise.all(rest.map((r) => r.wrap(dataKey, context, env)))));
  } catch (e) {
    dataKey.fill(0);
    throw e;
  }
  return { dataKey, encryptedDataKeys: edks, context, signingKey };
}

export interface UnwrapAttempt {
  readonly recipient: string;
  readonly providerId: string;
  readonly code: ErrorCode;
}

/** Open found no EDK it could unwrap; `attempts` lists each failure (never key material). */
export class DataKeyUnavailableError extends KeyportError {
  override readonly name = 'DataKeyUnavailableError';
  readonly attempts: readonly UnwrapAttempt[];

  constructor(
    code: ErrorCode,
    message: string,
    attempts: readonly UnwrapAttempt[],
    errors: readonly unknown[],
  ) {
    super(code, message, { cause: new AggregateError(errors, 'every unwrap attempt failed') });
    this.attempts = attempts;
  }
}

function sameEdk(a: EncryptedDataKey, b: EncryptedDataKey): boolean {
  return (
    a.providerId === b.providerId &&
    bytesEqual(a.providerInfo, b.providerInfo) &&
    bytesEqual(a.ciphertext, b.ciphertext)
  );
}

/**
 * Tries trusted recipients in order, each on the EDKs it matches in header order, skipping
 * EDKs identical to one already tried and at most `maxAttemptsPerRecipient` tries each, so the
 * work is bounded by the trust list, not by what the message repeats: a hostile header can
 * repeat a corrupted EDK for a trusted RSA-4096 key thousands of times, each try costing
 * milliseconds of CPU (or a KMS call). A key from a recipient whose unwrap may return a wrong
 * key (`unwrapMayReturnWrongKey`) is taken only if `fits` (the header check) accepts it; else
 * it counts as a failed attempt, so a later EDK or recipient is still tried.
 */
export async function decryptDataKey(
  edks: readonly EncryptedDataKey[],
  trusted: readonly Recipient[],
  context: EncryptionContext,
  env: RecipientEnv,
  maxAttemptsPerRecipient: number,
  fits?: (dataKey: Uint8Array) => boolean,
): Promise<Uint8Array> {
  const attempts: UnwrapAttempt[] = [];
  const errors: unknown[] = [];
  let skipped = 0;
  for (const recipient of trusted) {
    const tried: EncryptedDataKey[] = [];
    for (const edk of edks) {
      if (!recipient.matches(edk)) continue;
      if (tried.some((t) => sameEdk(t, edk))) continue;
      if (tried.length >= maxAttemptsPerRecipient) {
        skipped++;
        continue;
      }
      tried.push(edk);
      try {
        const dataKey = await recipient.unwrap(edk, context, env);
        if (recipient.unwrapMayReturnWrongKey === true && fits !== undefined && !fits(dataKey)) {
          dataKey.fill(0);
          throw new KeyportError(
            'InvalidCiphertext',
            'the unwrapped data key does not fit the header (wrong key or padding)',
          );
        }
        return dataKey;
      } catch (e) {
        const err = toKeyportError(e);
        if (err.code === 'Aborted') throw err;
        attempts.push({ recipient: recipient.id, providerId: edk.providerId, code: err.code });
        errors.push(err);
      }
    }
  }
  if (attempts.length === 0) {
    const ids = [...new Set(edks.map((e) => e.providerId))];
    const named = ids
      .slice(0, 8)
      .map((id) => quote(id))
      .join(', ');
    const more = ids.length > 8 ? ` and ${ids.length - 8} more` : '';
    throw new DataKeyUnavailableError(
      'InvalidCiphertext',
      `no encrypted data key matches a trusted recipient (the message names providers: ${named}${more})`,
      [],
      [],
    );
  }
  const codes = new Set(attempts.map((a) => a.code));
  const code: ErrorCode = codes.size === 1 ? (attempts[0] as UnwrapAttempt).code : 'InvalidCiphertext';
  const list = attempts
    .slice(0, 8)
    .map((a) => `${quote(a.recipient)} -> ${a.code}`)
    .join('; ');
  const more = attempts.length > 8 ? `; and ${attempts.length - 8} more` : '';
  const notTried =
    skipped > 0
      ? ` (${skipped} more matching EDKs not tried: at most ${maxAttemptsPerRecipient} per recipient)`
      : '';
  throw new DataKeyUnavailableError(
    code,
    `no encrypted data key could be unwrapped: ${list}${more}${notTried}`,
    attempts,
    errors,
  );
}
