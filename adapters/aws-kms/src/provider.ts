/**
 * `AwsKmsProvider`: core's KmsProvider over `@aws-sdk/client-kms`. The class only wires the
 * contract to the operation modules (keys, crypto, grants, import); retries, deadlines, audit and
 * capability checks are core's. AWS-only operations (ReEncrypt, GenerateDataKeyWithoutPlaintext,
 * RetireGrant, DeleteImportedKeyMaterial) are extra methods here; expired grants are swept by core
 * (`Keyport.sweepExpiredGrants`, AWS declares `grantExpiry: 'swept'`).
 */
import {
  type Capabilities,
  type CreateKeyRequest,
  type DataKeyRequest,
  type EncryptRequest,
  formatBuiltInUri,
  type Grant,
  type GrantRequest,
  type ImportKeyMaterialRequest,
  type ImportParameters,
  type KeyInfo,
  type KeyportError,
  type KeyRef,
  type KmsProvider,
  type ListOptions,
  type MacResult,
  type ProviderCallOptions,
  parseBuiltInUri,
  type RotationPolicy,
  type ScheduleDeletionRequest,
  type SigningAlgorithm,
  type SignRequest,
  type SignResult,
} from '@keyport/core';
import { AWS_KMS_CAPABILITIES } from './capabilities.js';
import { type AwsKmsProviderOptions, KmsClients } from './clients.js';
import * as crypto from './crypto.js';
import { mapAwsError, PROVIDER_NAME } from './errors.js';
import * as grants from './grants.js';
import * as byok from './import.js';
import * as keys from './keys.js';
import { KmsRuntime } from './runtime.js';

/** Calls outside core's policy (extra methods) may omit the signal. */
function opts(o: Partial<ProviderCallOptions> | undefined): ProviderCallOptions {
  return { signal: o?.signal ?? new AbortController().signal };
}

export class AwsKmsProvider implements KmsProvider {
  readonly scheme = 'aws-kms';
  readonly name = PROVIDER_NAME;
  readonly capabilities: Capabilities = AWS_KMS_CAPABILITIES;
  private readonly rt: KmsRuntime;

  parseUri(uri: string): KeyRef {
    return parseBuiltInUri('aws-kms', uri);
  }
  formatUri(ref: KeyRef): string {
    return formatBuiltInUri(ref);
  }

  constructor(options: AwsKmsProviderOptions = {}, runtime?: KmsRuntime) {
    this.rt = runtime ?? new KmsRuntime(new KmsClients(options), options.grantTokens);
  }

  /** The same provider (clients, caches) sending these grant tokens on every call that takes them. */
  withGrantTokens(tokens: readonly string[]): AwsKmsProvider {
    return new AwsKmsProvider({}, this.rt.withGrantTokens(tokens));
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
    return keys.enableKey(this.rt, ref, o);
  }
  disableKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return keys.disableKey(this.rt, ref, o);
  }
  scheduleKeyDeletion(ref: KeyRef, req: ScheduleDeletionRequest, o: ProviderCallOptions): Promise<KeyInfo> {
    return keys.scheduleKeyDeletion(this.rt, ref, req, o);
  }
  cancelKeyDeletion(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return keys.cancelKeyDeletion(this.rt, ref, o);
  }

  encrypt(ref: KeyRef, plaintext: Uint8Array, req: EncryptRequest, o: ProviderCallOptions) {
    return crypto.encrypt(this.rt, ref, plaintext, req, o);
  }
  decrypt(ref: KeyRef, ciphertext: Uint8Array, req: EncryptRequest, o: ProviderCallOptions) {
    return crypto.decrypt(this.rt, ref, ciphertext, req, o);
  }
  generateDataKey(ref: KeyRef, req: DataKeyRequest, o: ProviderCallOptions) {
    return crypto.generateDataKey(this.rt, ref, req, o);
  }
  sign(ref: KeyRef, message: Uint8Array, req: SignRequest, o: ProviderCallOptions): Promise<SignResult> {
    return crypto.sign(this.rt, ref, message, req, o);
  }
  verify(
    ref: KeyRef,
    message: Uint8Array,
    signature: Uint8Array,
    req: SignRequest & { algorithm: SigningAlgorithm },
    o: ProviderCallOptions,
  ): Promise<boolean> {
    return crypto.verify(this.rt, ref, message, signature, req, o);
  }
  mac(ref: KeyRef, message: Uint8Array, o: ProviderCallOptions): Promise<MacResult> {
    return crypto.mac(this.rt, ref, message, o);
  }
  verifyMac(ref: KeyRef, message: Uint8Array, tag: Uint8Array, o: ProviderCallOptions): Promise<boolean> {
    return crypto.verifyMac(this.rt, ref, message, tag, o);
  }

  getPublicKey(ref: KeyRef, o: ProviderCallOptions): Promise<Uint8Array> {
    return crypto.getPublicKey(this.rt, ref, o);
  }

  createGrant(ref: KeyRef, req: GrantRequest, o: ProviderCallOptions): Promise<Grant> {
    return grants.createGrant(this.rt, ref, req, o);
  }
  listGrants(ref: KeyRef, o: ListOptions): AsyncIterable<Grant> {
    return grants.listGrants(this.rt, ref, o);
  }
  revokeGrant(ref: KeyRef, grantId: string, o: ProviderCallOptions): Promise<void> {
    return grants.revokeGrant(this.rt, ref, grantId, o);
  }

  getImportParameters(
    ref: KeyRef,
    req: byok.AwsImportParametersRequest,
    o: ProviderCallOptions,
  ): Promise<ImportParameters> {
    return byok.getImportParameters(this.rt, ref, req, o);
  }
  async importKeyMaterial(
    ref: KeyRef,
    req: ImportKeyMaterialRequest,
    o: ProviderCallOptions,
  ): Promise<KeyInfo> {
    await byok.importKeyMaterial(this.rt, ref, req, o);
    return keys.describeKey(this.rt, ref, o);
  }

  mapError(error: unknown): KeyportError | undefined {
    return mapAwsError(error);
  }

  async close(): Promise<void> {
    this.rt.clients.close();
  }

  // ------------------------------------------------ AWS-only operations (not in the contract)

  /** ReEncrypt: rewraps a ciphertext under another key inside KMS (the plaintext never leaves). */
  reEncrypt(
    ref: KeyRef,
    ciphertext: Uint8Array,
    req: crypto.ReEncryptRequest,
    o?: Partial<ProviderCallOptions>,
  ) {
    return crypto.reEncrypt(this.rt, ref, ciphertext, req, opts(o));
  }
  generateDataKeyWithoutPlaintext(ref: KeyRef, req: DataKeyRequest, o?: Partial<ProviderCallOptions>) {
    return crypto.generateDataKeyWithoutPlaintext(this.rt, ref, req, opts(o));
  }
  /** RetireGrant, as the grantee or retiring principal: by grant token, or by key and grant id. */
  retireGrant(target: grants.RetireGrantTarget, o?: Partial<ProviderCallOptions>): Promise<void> {
    return grants.retireGrant(this.rt, target, opts(o));
  }
  /** Removes imported material: the key becomes pending import until material is imported again. */
  async deleteImportedKeyMaterial(ref: KeyRef, o?: Partial<ProviderCallOptions>): Promise<KeyInfo> {
    await byok.deleteImportedKeyMaterial(this.rt, ref, opts(o));
    return keys.describeKey(this.rt, ref, opts(o));
  }
}
