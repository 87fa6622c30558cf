/**
 * `gcpKms(options)`: keyport's driver over Google Cloud KMS (`gcp-kms://` URIs). The class only
 * wires the contract to the operation modules (keys, crypto, grants, import); retries, deadline,
 * abort, audit and capability checks are core's. Cloud KMS keys cannot be deleted, so there is no
 * scheduleKeyDeletion; `restoreKeyVersion` is a Cloud KMS-only operation (see operations.ts).
 */
import type { KeyManagementServiceClient } from '@google-cloud/kms';
import {
  type Capabilities,
  type CreateKeyRequest,
  type EncryptRequest,
  type GrantRequest,
  type ImportKeyMaterialRequest,
  type ImportParametersRequest,
  KeyportError,
  type KeyRef,
  type KmsProvider,
  type ListOptions,
  type ProviderCallOptions,
  type RotationPolicy,
  type SigningAlgorithm,
  type SignRequest,
} from '@keyport/core';
import { gcpKmsCapabilities } from './capabilities.js';
import * as crypto from './crypto.js';
import { mapGcpError } from './errors.js';
import * as grants from './grants.js';
import * as byok from './import.js';
import * as keys from './keys.js';
import { buildClient, checkOptions, type GcpKmsProviderOptions } from './options.js';
import { Rpc, type Runtime } from './rpc.js';
import { formatUri, parseUri } from './uri.js';

type Sign = SignRequest & { algorithm: SigningAlgorithm };

export class GcpKmsProvider implements KmsProvider {
  readonly scheme = 'gcp-kms';
  readonly name: string;
  readonly capabilities: Capabilities;
  private readonly rt: Runtime;
  private built: Promise<KeyManagementServiceClient> | undefined;

  constructor(private readonly options: GcpKmsProviderOptions = {}) {
    checkOptions(options);
    this.name = options.name ?? 'gcp-kms';
    this.capabilities = gcpKmsCapabilities(options);
    this.rt = {
      rpc: new Rpc(() => this.client(), options.headers ?? {}, this.name),
      keyRing: options.keyRing,
      protectionLevel: options.protectionLevel ?? 'SOFTWARE',
      importJobKeyBits: options.importJobKeyBits ?? 3072,
      algorithms: new Map(),
      publicKeys: new Map(),
      asymmetricKeys: new Set(),
    };
  }

  parseUri = parseUri;
  formatUri = formatUri;

  createKey(req: CreateKeyRequest, o: ProviderCallOptions) {
    return keys.createKey(this.rt, req, o);
  }
  describeKey(ref: KeyRef, o: ProviderCallOptions) {
    return keys.describeKey(this.rt, ref, o);
  }
  listKeys(o: ListOptions) {
    return keys.listKeys(this.rt, o);
  }
  /** Creates a version; for ENCRYPT_DECRYPT keys it also becomes the primary. */
  rotateKey(ref: KeyRef, o: ProviderCallOptions) {
    return keys.rotateKey(this.rt, ref, o);
  }
  setRotationPolicy(ref: KeyRef, policy: RotationPolicy, o: ProviderCallOptions) {
    return keys.setRotationPolicy(this.rt, ref, policy, o);
  }
  /** Enables the pinned version, or the primary (newest live version for keys without one). */
  enableKey(ref: KeyRef, o: ProviderCallOptions) {
    return keys.setVersionState(this.rt, ref, 'ENABLED', o);
  }
  disableKey(ref: KeyRef, o: ProviderCallOptions) {
    return keys.setVersionState(this.rt, ref, 'DISABLED', o);
  }
  destroyKeyVersion(ref: KeyRef, o: ProviderCallOptions) {
    return keys.destroyOrRestore(this.rt, ref, 'destroy', o);
  }
  /** Cloud KMS only: RestoreCryptoKeyVersion (a DESTROY_SCHEDULED version comes back DISABLED). */
  restoreKeyVersion(ref: KeyRef, o: ProviderCallOptions) {
    return keys.destroyOrRestore(this.rt, ref, 'restore', o);
  }

  encrypt(ref: KeyRef, plaintext: Uint8Array, req: EncryptRequest, o: ProviderCallOptions) {
    return crypto.encrypt(this.rt, ref, plaintext, req, o);
  }
  decrypt(ref: KeyRef, ciphertext: Uint8Array, req: EncryptRequest, o: ProviderCallOptions) {
    return crypto.decrypt(this.rt, ref, ciphertext, req, o);
  }
  sign(ref: KeyRef, message: Uint8Array, req: SignRequest, o: ProviderCallOptions) {
    return crypto.sign(this.rt, ref, message, req, o);
  }
  verify(ref: KeyRef, message: Uint8Array, signature: Uint8Array, req: Sign, o: ProviderCallOptions) {
    return crypto.verify(this.rt, ref, message, signature, req, o);
  }
  /** SPKI DER of an asymmetric key version's public key (GetPublicKey, checksum verified). */
  getPublicKey(ref: KeyRef, o: ProviderCallOptions) {
    return crypto.getPublicKey(this.rt, ref, o);
  }
  mac(ref: KeyRef, message: Uint8Array, o: ProviderCallOptions) {
    return crypto.mac(this.rt, ref, message, o);
  }
  verifyMac(ref: KeyRef, message: Uint8Array, tag: Uint8Array, o: ProviderCallOptions) {
    return crypto.verifyMac(this.rt, ref, message, tag, o);
  }

  createGrant(ref: KeyRef, req: GrantRequest, o: ProviderCallOptions) {
    return grants.createGrant(this.rt, ref, req, o);
  }
  listGrants(ref: KeyRef, o: ListOptions) {
    return grants.listGrants(this.rt, ref, o);
  }
  revokeGrant(ref: KeyRef, grantId: string, o: ProviderCallOptions) {
    return grants.revokeGrant(this.rt, ref, grantId, o);
  }

  getImportParameters(ref: KeyRef, req: ImportParametersRequest, o: ProviderCallOptions) {
    return byok.getImportParameters(this.rt, ref, req, o);
  }
  importKeyMaterial(ref: KeyRef, req: ImportKeyMaterialRequest, o: ProviderCallOptions) {
    return byok.importKeyMaterial(this.rt, ref, req, o);
  }

  mapError(error: unknown): KeyportError | undefined {
    return mapGcpError(error, 'other', { provider: this.name });
  }

  /**
   * The underlying client, for calls keyport does not wrap: the one given in the options, used as
   * it is, or the one built from them on first use (loading `@google-cloud/kms` then).
   */
  client(): Promise<KeyManagementServiceClient> {
    if (this.options.client !== undefined) return Promise.resolve(this.options.client);
    this.built ??= buildClient(this.options).catch((e: unknown) => {
      this.built = undefined; // not kept: a later call (after installing the package) tries again
      throw e instanceof KeyportError ? e.withDetails({ provider: this.name }) : e;
    });
    return this.built;
  }

  /** Closes the client the provider built (a given client is the caller's to close). */
  async close(): Promise<void> {
    const built = this.built;
    this.built = undefined;
    await (await built?.catch(() => undefined))?.close();
  }
}

/** `createKeyport({ providers: { gcp: gcpKms({ keyRing: 'projects/p/locations/l/keyRings/r' }) } })` */
export function gcpKms(options: GcpKmsProviderOptions = {}): GcpKmsProvider {
  return new GcpKmsProvider(options);
}
