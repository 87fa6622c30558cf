/**
 * A recipient wraps the message's data key into one encrypted data key (EDK) and, on open,
 * recognises and unwraps the EDKs it made. Raw AES and raw RSA recipients hold their key
 * material; KMS recipients call a `KeyOperations` (core's Keyport client or a provider).
 */
import { checkDeadlineMs, type EncryptionContext, type KeyOperations, KeyportError } from '@keyport/core';
import { serializeContext, serializeOpenedContext } from '../context-codec.js';
import type { EncryptedDataKey } from '../header.js';

export interface RecipientEnv {
  readonly keys?: KeyOperations | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Deadline of each KMS call, in milliseconds (`CallOptions.timeoutMs` of `keys`). */
  readonly timeoutMs?: number | undefined;
  /**
   * True when `wrap` is given the context of an existing message (rewrap), not a caller's: it is
   * bound as the message has it, under open's rules (an empty key, which other ESDKs write, is
   * allowed), since a rewrap keeps the message's context and must not refuse what open accepts.
   * Unset, a wrap checks the context as a caller's (seal: keys are never empty).
   */
  readonly contextFromMessage?: boolean | undefined;
}

/** The context bytes a raw recipient's wrap binds: open's rules for a message's own context (see `contextFromMessage`). */
export function wrapContextBytes(context: EncryptionContext, env: RecipientEnv | undefined): Uint8Array {
  return env?.contextFromMessage === true ? serializeOpenedContext(context) : serializeContext(context);
}

/**
 * The env of one seal, open or rewrap, from its options; `timeoutMs` is checked here, before any
 * work, whether or not a KMS recipient will use it.
 */
export function recipientEnv(options: {
  readonly keys?: KeyOperations | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly timeoutMs?: number | undefined;
}): RecipientEnv {
  const { keys, signal, timeoutMs } = options;
  if (timeoutMs === undefined) return { keys, signal };
  return { keys, signal, timeoutMs: checkDeadlineMs(timeoutMs, 'timeoutMs') };
}

export interface GeneratedDataKey {
  readonly dataKey: Uint8Array;
  readonly edk: EncryptedDataKey;
}

export interface Recipient {
  /**
   * Stable, non-secret identity used in cache keys and error reports: it must differ whenever the
   * key behind the recipient does (a cache entry filled through one id serves every recipient with it).
   */
  readonly id: string;
  /** Providers that create the data key themselves (KMS generateDataKey). */
  generate?(length: number, context: EncryptionContext, env: RecipientEnv): Promise<GeneratedDataKey>;
  wrap(dataKey: Uint8Array, context: EncryptionContext, env: RecipientEnv): Promise<EncryptedDataKey>;
  /**
   * True when `unwrap` may return a wrong data key instead of failing (PKCS#1 v1.5 with implicit
   * rejection): open then checks the key against the header before taking it, and goes on to the
   * next EDK or recipient when it does not fit, as it does after a failed unwrap.
   */
  readonly unwrapMayReturnWrongKey?: boolean;
  /** True when this recipient can try to unwrap `edk` (cheap, no I/O). */
  matches(edk: EncryptedDataKey): boolean;
  unwrap(edk: EncryptedDataKey, context: EncryptionContext, env: RecipientEnv): Promise<Uint8Array>;
}

export function isRecipient(value: unknown): value is Recipient {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Recipient).wrap === 'function' &&
    typeof (value as Recipient).matches === 'function'
  );
}

/** Namespaces the ESDK reserves for its KMS keyrings; raw keyrings must not use them. */
export function checkRawNamespace(namespace: string, name: string): void {
  if (
    typeof namespace !== 'string' ||
    namespace.length === 0 ||
    typeof name !== 'string' ||
    name.length === 0
  ) {
    throw new KeyportError('InvalidArgument', 'raw keyrings need a non-empty namespace and name');
  }
  if (namespace === 'aws-kms' || namespace.startsWith('keyport:')) {
    throw new KeyportError(
      'InvalidArgument',
      'raw keyring namespaces must not be "aws-kms" or start with "keyport:"',
    );
  }
}
