/**
 * Argument checks of the driver's own public surface: `GcpKmsProvider` methods may be called
 * directly, not only through core's `Keyport` (which checks the same shapes first). Each check is
 * core's, labelled with this provider, so a bad argument is InvalidArgument naming it before any
 * request (never a NaN page size, an invalid Date or a string plaintext sent to Cloud KMS). The
 * checks are a few type tests per call (a context is read once more, as core reads it).
 */
import {
  type CreateKeyRequest,
  checkBytes,
  checkCreateKeyRequest,
  checkedFor,
  checkGrantRequest,
  checkImportKeyMaterialRequest,
  checkImportParametersRequest,
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
  type ListOptions,
  optionalContext,
  type ProviderCallOptions,
  type RotationPolicy,
  SIGN_OPTIONS,
  type SignRequest,
  signRequestFrom,
} from '@keyport/core';

/** The checks of one provider instance: errors name it (and the key, when known). */
export class Arguments {
  constructor(private readonly provider: string) {}

  /** Runs a check, labelled with this provider (see core's `checkedFor`). */
  private labelled<T>(keyUri: string | undefined, fn: () => T): T {
    return checkedFor(this.provider, keyUri, fn);
  }

  /** `{ signal }` (and `pageSize` for lists); `o` may be omitted by a direct caller. */
  options(o: unknown): ProviderCallOptions;
  options(o: unknown, list: true): ListOptions;
  options(o: unknown, list = false): ListOptions {
    return this.labelled(undefined, () => driverCallOptions(o, list));
  }

  /** A key URI string or `{ uri, version? }` (the URI itself is parsed by the module). */
  ref(ref: unknown): KeyRef {
    return this.labelled(undefined, () => checkKeyLike(ref, 'ref'));
  }

  bytes(value: unknown, option: string, ref: KeyRef): Uint8Array {
    return this.labelled(ref.uri, () => checkBytes(value, option));
  }

  /** `{ context? }`, the context prototype-free (a Map converted). */
  contextRequest(req: unknown, ref: KeyRef): { context?: EncryptionContext } {
    return this.labelled(ref.uri, () => {
      const context = optionalContext(checkOptions(req, 'req', CONTEXT_ONLY).context, 'req.context');
      return context === undefined ? {} : { context };
    });
  }

  sign(req: unknown, ref: KeyRef): SignRequest {
    return this.labelled(ref.uri, () => signRequestFrom(checkOptions(req, 'req', SIGN_OPTIONS), 'req'));
  }

  createKey(req: unknown): CreateKeyRequest {
    return this.labelled(undefined, () => checkCreateKeyRequest(req, 'req', 'extensions'));
  }

  rotationPolicy(policy: unknown, ref: KeyRef): RotationPolicy {
    return this.labelled(ref.uri, () => checkRotationPolicy(policy));
  }

  grant(req: unknown, ref: KeyRef): GrantRequest {
    return this.labelled(ref.uri, () => checkGrantRequest(req, 'req', 'extensions'));
  }

  grantId(id: unknown, ref: KeyRef): string {
    return this.labelled(ref.uri, () => checkString(id, 'grantId', { min: 1, max: 1024 }));
  }

  importParameters(req: unknown, ref: KeyRef): ImportParametersRequest {
    return this.labelled(ref.uri, () => checkImportParametersRequest(req, 'req', 'extensions'));
  }

  importMaterial(req: unknown, ref: KeyRef): ImportKeyMaterialRequest {
    return this.labelled(ref.uri, () => checkImportKeyMaterialRequest(req, 'req', 'extensions'));
  }
}

const CONTEXT_ONLY = { context: true } as const;
