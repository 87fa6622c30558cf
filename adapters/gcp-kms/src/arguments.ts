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
  checkGrantRequest,
  checkImportKeyMaterialRequest,
  checkImportParametersRequest,
  checkInteger,
  checkKeyLike,
  checkOptions,
  checkRotationPolicy,
  checkSignal,
  checkString,
  type EncryptionContext,
  type GrantRequest,
  type ImportKeyMaterialRequest,
  type ImportParametersRequest,
  KeyportError,
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

  /** Runs a check; anything but a KeyportError came from reading the caller's object (a Proxy). */
  private labelled<T>(keyUri: string | undefined, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      const details = { provider: this.provider, ...(keyUri !== undefined ? { keyUri } : {}) };
      throw error instanceof KeyportError
        ? error.withDetails(details)
        : new KeyportError(
            'InvalidArgument',
            'an argument could not be read (a getter or proxy that throws)',
            details,
          );
    }
  }

  /** `{ signal }` (and `pageSize` for lists); `o` may be omitted by a direct caller. */
  options(o: unknown): ProviderCallOptions;
  options(o: unknown, list: true): ListOptions;
  options(o: unknown, list = false): ListOptions {
    return this.labelled(undefined, () => {
      if (o === undefined) return { signal: new AbortController().signal };
      if (typeof o !== 'object' || o === null) {
        throw new KeyportError(
          'InvalidArgument',
          `o: expected an object, got ${o === null ? 'null' : typeof o}`,
        );
      }
      const { signal, pageSize } = o as { signal?: unknown; pageSize?: unknown };
      const checked = signal === undefined ? new AbortController().signal : checkSignal(signal, 'o.signal');
      if (!list || pageSize === undefined) return { signal: checked };
      return { signal: checked, pageSize: checkInteger(pageSize, 'o.pageSize', 1, 10_000) };
    });
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
