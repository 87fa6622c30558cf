/**
 * Argument checks of the provider's own public surface: `LocalProvider` methods may be called
 * directly, not only through core's `Keyport` (which checks the same shapes first). Each check
 * is core's, labelled with this provider, so a bad argument is InvalidArgument naming it.
 */
import {
  type CreateKeyRequest,
  checkCreateKeyRequest,
  checkGrantRequest,
  checkImportKeyMaterialRequest,
  checkImportParametersRequest,
  checkInteger,
  checkKeyLike,
  checkOptions,
  checkRotationPolicy,
  checkScheduleDeletion,
  checkSignal,
  type EncryptionContext,
  type GrantRequest,
  type ImportKeyMaterialRequest,
  type ImportParametersRequest,
  type KeyRef,
  optionalContext,
  type RotationPolicy,
  type ScheduleDeletionRequest,
  SIGN_OPTIONS,
  type SignRequest,
  signRequestFrom,
} from '@keyport/core';
import { labelled } from './errors.js';

const PROVIDER_OPTIONS = { signal: true, pageSize: true } as const;

/** The signal of a provider call's options (`{ signal }`, or `{ signal, pageSize }` for lists). */
export function signalOf(o: unknown): AbortSignal | undefined {
  return labelled(undefined, () => {
    const checked = checkOptions(o, 'o', PROVIDER_OPTIONS);
    if (checked.pageSize !== undefined) checkInteger(checked.pageSize, 'o.pageSize', 1, 10_000);
    return checked.signal === undefined ? undefined : checkSignal(checked.signal, 'o.signal');
  });
}

export const keyRefArg = (ref: unknown): KeyRef => labelled(undefined, () => checkKeyLike(ref, 'ref'));

export const createKeyArg = (req: unknown): CreateKeyRequest =>
  labelled(undefined, () => checkCreateKeyRequest(req));

export const rotationPolicyArg = (policy: unknown, uri: string): RotationPolicy =>
  labelled(uri, () => checkRotationPolicy(policy));

export const scheduleDeletionArg = (req: unknown, uri: string): ScheduleDeletionRequest =>
  labelled(uri, () => checkScheduleDeletion(req));

export const grantArg = (req: unknown, uri: string): GrantRequest =>
  labelled(uri, () => checkGrantRequest(req));

export const importParametersArg = (req: unknown, uri: string): ImportParametersRequest =>
  labelled(uri, () => checkImportParametersRequest(req));

export const importMaterialArg = (req: unknown, uri: string): ImportKeyMaterialRequest =>
  labelled(uri, () => checkImportKeyMaterialRequest(req));

/** A request's context as a prototype-free object (a Map is converted), or undefined. */
export function contextArg(req: unknown, uri: string | undefined): EncryptionContext | undefined {
  return labelled(uri, () => {
    const o = checkOptions(req, 'req', { context: true, bytes: true, algorithm: true, messageType: true });
    return optionalContext(o.context, 'req.context');
  });
}

/** A sign or verify request: a known algorithm and message type, nothing else. */
export function signArg(req: unknown, uri: string | undefined): SignRequest {
  return labelled(uri, () => signRequestFrom(checkOptions(req, 'req', SIGN_OPTIONS), 'req'));
}
