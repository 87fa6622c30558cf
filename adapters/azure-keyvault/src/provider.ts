/**
 * `azureKeyVault(options)`: core's driver over `@azure/keyvault-keys` for one vault kind (Key
 * Vaults or Managed HSMs; the kind decides the declared capabilities, so core refuses what the
 * kind lacks). The class wires the contract to the modules; retries, deadlines, audit and
 * capability checks are core's. Key Vault-only operations are methods here, run through core's
 * call path by operations.ts.
 */
import {
  type Capabilities,
  type CreateKeyRequest,
  checkKeyLike,
  checkSignal,
  type EncryptRequest,
  formatBuiltInUri,
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
} from '@keyport/core';
import { capabilitiesFor, type VaultKind } from './capabilities.js';
import * as crypto from './crypto.js';
import { mapAzureError, PROVIDER_NAME } from './errors.js';
import * as keys from './keys.js';
import * as ops from './operations.js';
import { type AzureKeyVaultOptions, checkOptions } from './options.js';
import { Rpc } from './rpc.js';

/** `createKeyport({ providers: { azurekeyvault: azureKeyVault({ vaultUrl }) } })` */
export function azureKeyVault(options: AzureKeyVaultOptions): AzureKeyVaultProvider {
  return new AzureKeyVaultProvider(options);
}

/** Methods called directly (not through a Keyport) may omit the signal, and get KeyportErrors. */
async function direct<T>(
  o: Partial<ProviderCallOptions> | undefined,
  run: (o: ProviderCallOptions) => Promise<T>,
) {
  try {
    const signal = o?.signal === undefined ? new AbortController().signal : checkSignal(o.signal, 'o.signal');
    return await run({ signal });
  } catch (e) {
    throw mapAzureError(e) ?? e;
  }
}

export class AzureKeyVaultProvider implements KmsProvider {
  readonly scheme = 'azurekeyvault';
  readonly name = PROVIDER_NAME;
  readonly capabilities: Capabilities;
  readonly vaultKind: VaultKind;
  private readonly rpc: Rpc;

  constructor(options: AzureKeyVaultOptions) {
    this.rpc = new Rpc(checkOptions(options));
    this.vaultKind = this.rpc.config.kind;
    this.capabilities = capabilitiesFor(this.vaultKind);
  }

  parseUri(uri: string): KeyRef {
    return parseBuiltInUri('azurekeyvault', uri);
  }
  formatUri(ref: KeyRef): string {
    return formatBuiltInUri(ref);
  }
  mapError(error: unknown): KeyportError | undefined {
    return mapAzureError(error);
  }
  async close(): Promise<void> {
    this.rpc.close();
  }

  async createKey(req: CreateKeyRequest, o: ProviderCallOptions) {
    return keys.createKey(this.rpc, req, o);
  }
  async describeKey(ref: KeyRef, o: ProviderCallOptions) {
    return keys.describeKey(this.rpc, this.rpc.resolve(ref), o);
  }
  listKeys(o: ListOptions) {
    return keys.listKeys(this.rpc, o);
  }
  async rotateKey(ref: KeyRef, o: ProviderCallOptions) {
    return keys.rotateKey(this.rpc, this.rpc.resolve(ref), o);
  }
  async setRotationPolicy(ref: KeyRef, policy: RotationPolicy, o: ProviderCallOptions) {
    return keys.setRotationPolicy(this.rpc, this.rpc.resolve(ref), policy, o);
  }
  async enableKey(ref: KeyRef, o: ProviderCallOptions) {
    return keys.setEnabled(this.rpc, this.rpc.resolve(ref), true, o);
  }
  async disableKey(ref: KeyRef, o: ProviderCallOptions) {
    return keys.setEnabled(this.rpc, this.rpc.resolve(ref), false, o);
  }
  async scheduleKeyDeletion(ref: KeyRef, req: ScheduleDeletionRequest, o: ProviderCallOptions) {
    return keys.scheduleKeyDeletion(this.rpc, this.rpc.resolve(ref), req, o);
  }
  async cancelKeyDeletion(ref: KeyRef, o: ProviderCallOptions) {
    return keys.cancelKeyDeletion(this.rpc, this.rpc.resolve(ref), o);
  }

  async encrypt(ref: KeyRef, plaintext: Uint8Array, req: EncryptRequest, o: ProviderCallOptions) {
    return crypto.encrypt(this.rpc, this.rpc.resolve(ref), plaintext, req, o);
  }
  async decrypt(ref: KeyRef, ciphertext: Uint8Array, req: EncryptRequest, o: ProviderCallOptions) {
    return crypto.decrypt(this.rpc, this.rpc.resolve(ref), ciphertext, req, o);
  }
  async sign(ref: KeyRef, message: Uint8Array, req: SignRequest, o: ProviderCallOptions) {
    return crypto.sign(this.rpc, this.rpc.resolve(ref), message, req, o);
  }
  async verify(
    ref: KeyRef,
    message: Uint8Array,
    signature: Uint8Array,
    req: SignRequest & { algorithm: SigningAlgorithm },
    o: ProviderCallOptions,
  ) {
    return crypto.verify(this.rpc, this.rpc.resolve(ref), message, signature, req, o);
  }
  async getPublicKey(ref: KeyRef, o: ProviderCallOptions) {
    return crypto.getPublicKey(this.rpc, this.rpc.resolve(ref), o);
  }

  // Key Vault-only operations: through a Keyport with operations.ts, or called directly.

  /** Purges a soft-deleted key now (irreversible; needs the `purge` permission). */
  async purgeDeletedKey(ref: KeyRef, o?: Partial<ProviderCallOptions>): Promise<void> {
    return direct(o, (po) => ops.purge(this.rpc, this.rpc.resolve(checkKeyLike(ref)), po));
  }
  /** The key's backup blob: every version and its rotation policy, sealed by the service. */
  async backupKey(ref: KeyRef, o?: Partial<ProviderCallOptions>) {
    return direct(o, (po) => ops.backup(this.rpc, this.rpc.resolve(checkKeyLike(ref)), po));
  }
  /** Restores a backup into `vaultHost` (default: the first vault); the name must be free (not even soft-deleted). */
  async restoreKey(backup: Uint8Array, vaultHost?: string, o?: Partial<ProviderCallOptions>) {
    return direct(o, (po) => ops.restore(this.rpc, backup, vaultHost, po));
  }
  /** Imports a private key given as a JWK (RSA, EC; oct on a Managed HSM). */
  async importJwk(
    nameOrUri: string,
    jwk: ops.PortableJwk,
    options: ops.ImportJwkOptions = {},
    o?: Partial<ProviderCallOptions>,
  ) {
    return direct(o, (po) => ops.importKey(this.rpc, nameOrUri, jwk, options, po));
  }
  /** Sets notBefore/expiresOn of one version (the ref's, else the latest). */
  async setValidity(ref: KeyRef, validity: ops.Validity, o?: Partial<ProviderCallOptions>) {
    return direct(o, (po) => ops.validity(this.rpc, this.rpc.resolve(checkKeyLike(ref)), validity, po));
  }
}
