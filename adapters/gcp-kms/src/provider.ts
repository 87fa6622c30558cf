/**
 * `GcpKmsProvider`: keyport's KmsProvider over Google Cloud KMS (`gcp-kms://` URIs). Each method
 * delegates to one service module; core wraps every call with retries, deadline, abort and audit.
 */
import type { KeyManagementServiceClient } from '@google-cloud/kms';
import {
  type Capabilities,
  type CreateKeyRequest,
  type DecryptResult,
  type EncryptRequest,
  type EncryptResult,
  formatBuiltInUri,
  type Grant,
  type GrantRequest,
  type ImportKeyMaterialRequest,
  type ImportParameters,
  type ImportParametersRequest,
  type KeyInfo,
  KeyportError,
  type KeyRef,
  type KmsProvider,
  type ListOptions,
  type MacResult,
  type ProviderCallOptions,
  parseBuiltInUri,
  type RotationPolicy,
  type SigningAlgorithm,
  type SignRequest,
  type SignResult,
} from '@keyport/core';
import { gcpKmsCapabilities } from './capabilities.js';
import { CryptoService } from './crypto.js';
import { mapGcpError } from './errors.js';
import { GrantService } from './grants.js';
import { ImportService } from './import.js';
import { KeyService } from './keys.js';
import { buildClient, checkKeyRing, type GcpKmsProviderOptions } from './options.js';
import { VersionCache } from './public-keys.js';
import { Rpc } from './rpc.js';
import { SigningService } from './signing.js';

export class GcpKmsProvider implements KmsProvider {
  readonly scheme = 'gcp-kms';

  parseUri(uri: string): KeyRef {
    return parseBuiltInUri('gcp-kms', uri);
  }
  formatUri(ref: KeyRef): string {
    return formatBuiltInUri(ref);
  }
  readonly name: string;
  readonly capabilities: Capabilities;
  private readonly given: KeyManagementServiceClient | undefined;
  private readonly options: GcpKmsProviderOptions;
  private built: Promise<KeyManagementServiceClient> | undefined;
  private readonly keys: KeyService;
  private readonly crypto: CryptoService;
  private readonly signing: SigningService;
  private readonly grants: GrantService;
  private readonly imports: ImportService;

  constructor(options: GcpKmsProviderOptions = {}) {
    this.name = options.name ?? 'gcp-kms';
    this.capabilities = gcpKmsCapabilities(options);
    const keyRing = checkKeyRing(options.keyRing);
    this.given = options.client;
    this.options = options;
    const rpc = new Rpc(() => this.client(), options.headers ?? {}, this.name);
    this.keys = new KeyService(rpc, { keyRing, protectionLevel: options.protectionLevel ?? 'SOFTWARE' });
    const versions = new VersionCache(rpc, this.keys);
    this.crypto = new CryptoService(rpc, this.keys, versions);
    this.signing = new SigningService(rpc, versions);
    this.grants = new GrantService(rpc);
    this.imports = new ImportService(rpc, this.keys, options.importJobKeyBits ?? 3072);
  }

  createKey(req: CreateKeyRequest, o: ProviderCallOptions): Promise<KeyInfo> {
    return this.keys.createKey(req, o);
  }
  describeKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return this.keys.describeKey(ref, o);
  }
  listKeys(o: ListOptions): AsyncIterable<KeyInfo> {
    return this.keys.listKeys(o);
  }
  /** Creates a version; for ENCRYPT_DECRYPT keys it also becomes the primary. */
  rotateKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return this.keys.rotateKey(ref, o);
  }
  setRotationPolicy(ref: KeyRef, policy: RotationPolicy, o: ProviderCallOptions): Promise<KeyInfo> {
    return this.keys.setRotationPolicy(ref, policy, o);
  }
  /** Enables the pinned version, or the primary (newest live version for keys without one). */
  enableKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return this.keys.setVersionState(ref, 'ENABLED', o);
  }
  /** Disables the pinned version, or the primary (newest live version for keys without one). */
  disableKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return this.keys.setVersionState(ref, 'DISABLED', o);
  }
  /** DestroyCryptoKeyVersion: DESTROY_SCHEDULED for the key's destroy_scheduled_duration, then DESTROYED. */
  destroyKeyVersion(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return this.keys.destroyVersion(ref, o);
  }
  /** Cloud KMS only: RestoreCryptoKeyVersion (a DESTROY_SCHEDULED version comes back DISABLED). */
  restoreKeyVersion(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return this.keys.restoreVersion(ref, o);
  }

  encrypt(
    ref: KeyRef,
    plaintext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<EncryptResult> {
    return this.crypto.encrypt(ref, plaintext, req, o);
  }
  decrypt(
    ref: KeyRef,
    ciphertext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<DecryptResult> {
    return this.crypto.decrypt(ref, ciphertext, req, o);
  }
  sign(ref: KeyRef, message: Uint8Array, req: SignRequest, o: ProviderCallOptions): Promise<SignResult> {
    return this.signing.sign(ref, message, req, o);
  }
  verify(
    ref: KeyRef,
    message: Uint8Array,
    signature: Uint8Array,
    req: SignRequest & { algorithm: SigningAlgorithm },
    o: ProviderCallOptions,
  ): Promise<boolean> {
    return this.signing.verify(ref, message, signature, req, o);
  }
  /** SPKI DER of an asymmetric key version's public key (GetPublicKey, checksum verified). */
  getPublicKey(ref: KeyRef, o: ProviderCallOptions): Promise<Uint8Array> {
    return this.signing.getPublicKey(ref, o);
  }
  mac(ref: KeyRef, message: Uint8Array, o: ProviderCallOptions): Promise<MacResult> {
    return this.signing.mac(ref, message, o);
  }
  verifyMac(ref: KeyRef, message: Uint8Array, mac: Uint8Array, o: ProviderCallOptions): Promise<boolean> {
    return this.signing.verifyMac(ref, message, mac, o);
  }

  createGrant(ref: KeyRef, req: GrantRequest, o: ProviderCallOptions): Promise<Grant> {
    return this.grants.createGrant(ref, req, o);
  }
  listGrants(ref: KeyRef, o: ListOptions): AsyncIterable<Grant> {
    return this.grants.listGrants(ref, o);
  }
  revokeGrant(ref: KeyRef, grantId: string, o: ProviderCallOptions): Promise<void> {
    return this.grants.revokeGrant(ref, grantId, o);
  }

  getImportParameters(
    ref: KeyRef,
    req: ImportParametersRequest,
    o: ProviderCallOptions,
  ): Promise<ImportParameters> {
    return this.imports.getImportParameters(ref, req, o);
  }
  importKeyMaterial(ref: KeyRef, req: ImportKeyMaterialRequest, o: ProviderCallOptions): Promise<KeyInfo> {
    return this.imports.importKeyMaterial(ref, req, o);
  }

  mapError(error: unknown): KeyportError | undefined {
    return mapGcpError(error, 'other', { provider: this.name });
  }

  /**
   * The underlying client, for calls keyport does not wrap: the one given in the options, used as
   * it is, or the one built from them on first use (loading `@google-cloud/kms` then).
   */
  client(): Promise<KeyManagementServiceClient> {
    if (this.given !== undefined) return Promise.resolve(this.given);
    this.built ??= buildClient(this.options).catch((e: unknown) => {
      this.built = undefined; // not kept: a later call (after installing the package) tries again
      throw e instanceof KeyportError ? e.withDetails({ provider: this.name }) : e;
    });
    return this.built;
  }

  /** Closes the client the provider built (a given client is the caller's to close). */
  async close(): Promise<void> {
    const built = this.built;
    if (built === undefined) return;
    this.built = undefined;
    const client = await built.catch(() => undefined);
    await client?.close();
  }
}
