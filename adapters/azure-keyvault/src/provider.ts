/**
 * `AzureKeyVaultProvider`: core's KmsProvider over `@azure/keyvault-keys`, for one vault kind (a
 * Key Vault or a Managed HSM). The class wires the contract to the operation modules; retries,
 * deadlines, audit and capability checks are core's. Key Vault-only operations (purge,
 * backup/restore, JWK import, validity dates) are extra methods.
 */
import {
  type Capabilities,
  type CreateKeyRequest,
  type DecryptResult,
  type EncryptRequest,
  type EncryptResult,
  formatBuiltInUri,
  type KeyInfo,
  type KeyportError,
  type KeyRef,
  type KmsProvider,
  type ListOptions,
  type ProviderCallOptions,
  parseBuiltInUri,
  type RotationPolicy,
  type ScheduleDeletionRequest,
  type SigningAlgorithm,
  type SignRequest,
  type SignResult,
} from '@keyport/core';
import type { VaultKind } from './capabilities.js';
import * as crypto from './crypto.js';
import { mapAzureError, PROVIDER_NAME } from './errors.js';
import * as extras from './extras.js';
import * as keys from './keys.js';
import { AzureRuntime } from './runtime.js';
import type { AzureKeyVaultProviderOptions } from './vaults.js';

/** Calls outside core's policy (extra methods) may omit the signal. */
function opts(o: Partial<ProviderCallOptions> | undefined): ProviderCallOptions {
  return { signal: o?.signal ?? new AbortController().signal };
}

/** Extra methods run outside core's policy, so they map SDK errors to KeyportErrors themselves. */
async function mapped<T>(run: Promise<T>): Promise<T> {
  try {
    return await run;
  } catch (e) {
    throw mapAzureError(e) ?? e;
  }
}

export class AzureKeyVaultProvider implements KmsProvider {
  readonly scheme = 'azurekeyvault';

  parseUri(uri: string): KeyRef {
    return parseBuiltInUri('azurekeyvault', uri);
  }
  formatUri(ref: KeyRef): string {
    return formatBuiltInUri(ref);
  }
  readonly name = PROVIDER_NAME;
  readonly capabilities: Capabilities;
  readonly vaultKind: VaultKind;
  private readonly rt: AzureRuntime;

  constructor(options: AzureKeyVaultProviderOptions) {
    this.rt = new AzureRuntime(options);
    this.capabilities = this.rt.capabilities;
    this.vaultKind = this.rt.vaults.kind;
  }

  createKey(req: CreateKeyRequest, o: ProviderCallOptions): Promise<KeyInfo> {
    return keys.createKey(this.rt, req, o);
  }
  describeKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return keys.describeKey(this.rt, ref, o);
  }
  listKeys(o: ListOptions): AsyncIterable<KeyInfo> {
    return keys.listKeys(this.rt, o);
  }
  rotateKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return keys.rotateKey(this.rt, ref, o);
  }
  setRotationPolicy(ref: KeyRef, policy: RotationPolicy, o: ProviderCallOptions): Promise<KeyInfo> {
    return keys.setRotationPolicy(this.rt, ref, policy, o);
  }
  enableKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return keys.setEnabled(this.rt, ref, true, o);
  }
  disableKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return keys.setEnabled(this.rt, ref, false, o);
  }
  scheduleKeyDeletion(ref: KeyRef, req: ScheduleDeletionRequest, o: ProviderCallOptions): Promise<KeyInfo> {
    return keys.scheduleKeyDeletion(this.rt, ref, req, o);
  }
  cancelKeyDeletion(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return keys.cancelKeyDeletion(this.rt, ref, o);
  }

  encrypt(
    ref: KeyRef,
    plaintext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<EncryptResult> {
    return crypto.encrypt(this.rt, this.rt.vaults.resolve(ref), plaintext, req, o);
  }
  decrypt(
    ref: KeyRef,
    ciphertext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<DecryptResult> {
    return crypto.decrypt(this.rt, this.rt.vaults.resolve(ref), ciphertext, req, o);
  }
  sign(ref: KeyRef, message: Uint8Array, req: SignRequest, o: ProviderCallOptions): Promise<SignResult> {
    return crypto.sign(this.rt, this.rt.vaults.resolve(ref), message, req, o);
  }
  verify(
    ref: KeyRef,
    message: Uint8Array,
    signature: Uint8Array,
    req: SignRequest & { algorithm: SigningAlgorithm },
    o: ProviderCallOptions,
  ): Promise<boolean> {
    return crypto.verify(this.rt, this.rt.vaults.resolve(ref), message, signature, req, o);
  }
  async getPublicKey(ref: KeyRef, o: ProviderCallOptions): Promise<Uint8Array> {
    const key = this.rt.vaults.resolve(ref);
    const found = await (await key.vault.keys()).getKey(key.name, {
      abortSignal: o.signal,
      ...(key.version !== undefined ? { version: key.version } : {}),
    });
    return crypto.publicKeyDer(found);
  }

  mapError(error: unknown): KeyportError | undefined {
    return mapAzureError(error);
  }

  async close(): Promise<void> {
    this.rt.vaults.close();
  }

  // ------------------------------------------------ Key Vault-only operations (not in the contract)

  /** Purges a soft-deleted key now (irreversible; needs the `purge` permission). */
  purgeDeletedKey(ref: KeyRef, o?: Partial<ProviderCallOptions>): Promise<void> {
    return mapped(keys.purgeDeletedKey(this.rt, ref, opts(o)));
  }
  /** The key's backup blob: every version and its rotation policy, sealed by the service. */
  backupKey(ref: KeyRef, o?: Partial<ProviderCallOptions>): Promise<Uint8Array> {
    return mapped(extras.backupKey(this.rt, ref, opts(o)));
  }
  /** Restores a backup into `vaultHost` (default: the first vault); the name must be free (not even soft-deleted). */
  restoreKey(backup: Uint8Array, vaultHost?: string, o?: Partial<ProviderCallOptions>): Promise<KeyInfo> {
    return mapped(extras.restoreKey(this.rt, backup, vaultHost, opts(o)));
  }
  /** Imports a private key given as a JWK (RSA, EC; oct on a Managed HSM). */
  importJwk(
    nameOrUri: string,
    jwk: extras.PortableJwk,
    options: extras.ImportJwkOptions = {},
    o?: Partial<ProviderCallOptions>,
  ): Promise<KeyInfo> {
    return mapped(extras.importJwk(this.rt, nameOrUri, jwk, options, opts(o)));
  }
  /** Sets notBefore/expiresOn of one version (the ref's, else the latest). */
  setValidity(ref: KeyRef, validity: extras.Validity, o?: Partial<ProviderCallOptions>): Promise<KeyInfo> {
    return mapped(extras.setValidity(this.rt, ref, validity, opts(o)));
  }
}
