/**
 * Argument checks of the driver's own public surface: its methods may be called directly, not
 * only through core's `Keyport` (which checks the same shapes first). Each check is core's,
 * labelled with this provider, so a bad argument is InvalidArgument naming it before anything is
 * sent, never a raw TypeError from deep inside a request. The checks are a few type tests per
 * call (a context is read once more, as core reads it), so the Keyport path pays little twice.
 */
import {
  type CreateKeyRequest,
  checkBatchItems,
  checkBytes,
  checkCreateKeyRequest,
  checkedFor,
  checkGrantRequest,
  checkImportKeyMaterialRequest,
  checkImportParametersRequest,
  checkInteger,
  checkKeyLike,
  checkOptions,
  checkRotationPolicy,
  checkString,
  driverCallOptions,
  type EncryptionContext,
  type GrantRequest,
  type ImportKeyMaterialRequest,
  type ImportParametersRequest,
  type KeyRef,
  optionalContext,
  type RotationPolicy,
  SIGN_OPTIONS,
  type SignRequest,
  signRequestFrom,
} from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';

/** Runs a check; its error carries this provider (and the key, when known). See core's `checkedFor`. */
export function labelled<T>(keyUri: string | undefined, fn: () => T): T {
  return checkedFor(PROVIDER_NAME, keyUri, fn);
}

/** The signal of a call's options (`o` may be omitted; `o.signal` must be an AbortSignal when given). */
export function signalOf(o: unknown, list = false): AbortSignal {
  return labelled(undefined, () => driverCallOptions(o, list).signal);
}

export const keyRefArg = (ref: unknown): KeyRef => labelled(undefined, () => checkKeyLike(ref, 'ref'));

export const bytesArg = (value: unknown, option: string, uri?: string): Uint8Array =>
  labelled(uri, () => checkBytes(value, option));

/** A request carrying only a context (`{ context? }`): its context, prototype-free. */
export function contextArg(req: unknown, uri: string, option = 'req'): EncryptionContext | undefined {
  return labelled(uri, () =>
    optionalContext(checkOptions(req, option, CONTEXT_ONLY).context, `${option}.context`),
  );
}
const CONTEXT_ONLY = { context: true } as const;

/** A data key request: `{ bytes?, context? }` (transit checks the size it can make). */
export function dataKeyArg(req: unknown, uri: string): { bytes?: number; context?: EncryptionContext } {
  return labelled(uri, () => {
    const o = checkOptions(req, 'req', { bytes: true, context: true });
    const context = optionalContext(o.context, 'req.context');
    return {
      ...(o.bytes !== undefined ? { bytes: checkInteger(o.bytes, 'req.bytes', 1, 1024) } : {}),
      ...(context !== undefined ? { context } : {}),
    };
  });
}

/** A sign or verify request: a known algorithm and message type, nothing else. */
export const signArg = (req: unknown, uri: string): SignRequest =>
  labelled(uri, () => signRequestFrom(checkOptions(req, 'req', SIGN_OPTIONS), 'req'));

export const createKeyArg = (req: unknown): CreateKeyRequest =>
  labelled(undefined, () => checkCreateKeyRequest(req, 'req', 'extensions'));

export const rotationPolicyArg = (policy: unknown, uri: string): RotationPolicy =>
  labelled(uri, () => checkRotationPolicy(policy));

export const grantArg = (req: unknown, uri: string): GrantRequest =>
  labelled(uri, () => checkGrantRequest(req, 'req', 'extensions'));

export const grantIdArg = (id: unknown, uri: string): string =>
  labelled(uri, () => checkString(id, 'grantId', { min: 1, max: 1024 }));

export const importParametersArg = (req: unknown, uri: string): ImportParametersRequest =>
  labelled(uri, () => checkImportParametersRequest(req, 'req', 'extensions'));

export const importMaterialArg = (req: unknown, uri: string): ImportKeyMaterialRequest =>
  labelled(uri, () => checkImportKeyMaterialRequest(req, 'req', 'extensions'));

/** Batch items in core's shape (`{ plaintext | ciphertext, context? }`) or transit's `{ data, context? }`. */
export function batchArg(
  items: unknown,
  field: 'plaintext' | 'ciphertext',
  uri: string,
): Array<{ data: Uint8Array; context?: EncryptionContext }> {
  return labelled(uri, () => {
    // Transit's own `{ data }` items are read as core's shape, so one check covers both.
    const given = Array.isArray(items)
      ? items.map((item: unknown) =>
          typeof item === 'object' &&
          item !== null &&
          Object.hasOwn(item, 'data') &&
          !Object.hasOwn(item, field)
            ? renamed(item as Record<string, unknown>, field)
            : item,
        )
      : items;
    return checkBatchItems(given, field).map((item) => {
      const data = item[field] as Uint8Array;
      return item.context === undefined ? { data } : { data, context: item.context };
    });
  });
}

/** `{ data, context? }` as `{ <field>, context? }` (other fields kept, so checks still see them). */
function renamed(item: Record<string, unknown>, field: string): Record<string, unknown> {
  const { data, ...rest } = item;
  return { ...rest, [field]: data };
}

/** `setVersionPolicy`'s policy: whole numbers, unset fields left out. */
export function versionPolicyArg(
  policy: unknown,
  uri: string,
): { minDecryptionVersion?: number; minEncryptionVersion?: number } {
  return labelled(uri, () => {
    const o = checkOptions(policy, 'policy', { minDecryptionVersion: true, minEncryptionVersion: true });
    const max = Number.MAX_SAFE_INTEGER;
    return {
      ...(o.minDecryptionVersion !== undefined
        ? {
            minDecryptionVersion: checkInteger(o.minDecryptionVersion, 'policy.minDecryptionVersion', 1, max),
          }
        : {}),
      ...(o.minEncryptionVersion !== undefined
        ? {
            minEncryptionVersion: checkInteger(o.minEncryptionVersion, 'policy.minEncryptionVersion', 0, max),
          }
        : {}),
    };
  });
}
