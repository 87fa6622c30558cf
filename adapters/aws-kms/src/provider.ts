/**
 * The factory and the driver: `AwsKmsProvider` wires core's contract to the operation modules
 * (keys, crypto, grants, import); retries, deadlines, audit and capability checks are core's.
 * AWS-only operations are extra methods here, run through core's call path by `operations.ts`;
 * expired grants are swept by core (AWS declares `grantExpiry: 'swept'`).
 */
import {
  type Capabilities,
  type DataKeyRequest,
  formatBuiltInUri,
  type KeyportError,
  type KeyRef,
  type KmsProvider,
  type ProviderCallOptions,
  parseBuiltInUri,
} from '@keyport/core';
import { AWS_KMS_CAPABILITIES } from './capabilities.js';
import * as crypto from './crypto.js';
import { mapAwsError, PROVIDER_NAME } from './errors.js';
import * as grants from './grants.js';
import * as byok from './import.js';
import * as keys from './keys.js';
import { type AwsKmsProviderOptions, checkAwsKmsOptions, checkGrantTokens } from './options.js';
import { KmsRpc } from './rpc.js';

/** `createKeyport({ providers: { prod: awsKms({ region: 'eu-west-1' }) } })` */
export function awsKms(options: AwsKmsProviderOptions = {}): AwsKmsProvider {
  return new AwsKmsProvider(options);
}

/** Calls outside core's policy (the extra methods called directly) may omit the signal. */
function opts(o: Partial<ProviderCallOptions> | undefined): ProviderCallOptions {
  return { signal: o?.signal ?? new AbortController().signal };
}

export class AwsKmsProvider implements KmsProvider {
  readonly scheme = 'aws-kms';
  readonly name = PROVIDER_NAME;
  readonly capabilities: Capabilities = AWS_KMS_CAPABILITIES;
  private readonly rpc: KmsRpc;

  /** `rpc` is internal: `withGrantTokens` shares its clients and caches. */
  constructor(options: AwsKmsProviderOptions = {}, rpc?: KmsRpc) {
    this.rpc = rpc ?? KmsRpc.create(checkAwsKmsOptions(options));
  }

  /** An operation module's function as a method of this driver. */
  private on<A extends unknown[], R>(operation: (rpc: KmsRpc, ...args: A) => R): (...args: A) => R {
    return (...args) => operation(this.rpc, ...args);
  }

  readonly createKey = this.on(keys.createKey);
  readonly describeKey = this.on(keys.describeKey);
  readonly listKeys = this.on(keys.listKeys);
  readonly rotateKey = this.on(keys.rotateKey);
  readonly setRotationPolicy = this.on(keys.setRotationPolicy);
  readonly enableKey = this.on(keys.enableKey);
  readonly disableKey = this.on(keys.disableKey);
  readonly scheduleKeyDeletion = this.on(keys.scheduleKeyDeletion);
  readonly cancelKeyDeletion = this.on(keys.cancelKeyDeletion);
  readonly encrypt = this.on(crypto.encrypt);
  readonly decrypt = this.on(crypto.decrypt);
  readonly generateDataKey = this.on(crypto.generateDataKey);
  readonly sign = this.on(crypto.sign);
  readonly verify = this.on(crypto.verify);
  readonly mac = this.on(crypto.mac);
  readonly verifyMac = this.on(crypto.verifyMac);
  readonly getPublicKey = this.on(crypto.getPublicKey);
  readonly createGrant = this.on(grants.createGrant);
  readonly listGrants = this.on(grants.listGrants);
  readonly revokeGrant = this.on(grants.revokeGrant);
  readonly getImportParameters = this.on(byok.getImportParameters);
  readonly importKeyMaterial = this.on(byok.importKeyMaterial);

  readonly parseUri = (uri: string): KeyRef => parseBuiltInUri('aws-kms', uri);
  readonly formatUri = formatBuiltInUri;
  readonly mapError: (error: unknown) => KeyportError | undefined = mapAwsError;

  async close(): Promise<void> {
    this.rpc.close();
  }

  /** The same provider (clients, caches) sending these grant tokens on every call that takes them. */
  withGrantTokens(tokens: readonly string[]): AwsKmsProvider {
    return new AwsKmsProvider({}, this.rpc.withGrantTokens(checkGrantTokens(tokens, 'tokens')));
  }

  // ------------------------------------------------ AWS-only operations (not in the contract)

  /** ReEncrypt: rewraps a ciphertext under another key inside KMS (the plaintext never leaves). */
  reEncrypt(
    ref: KeyRef,
    ciphertext: Uint8Array,
    req: crypto.ReEncryptRequest,
    o?: Partial<ProviderCallOptions>,
  ) {
    return crypto.reEncrypt(this.rpc, ref, ciphertext, req, opts(o));
  }

  generateDataKeyWithoutPlaintext(ref: KeyRef, req: DataKeyRequest, o?: Partial<ProviderCallOptions>) {
    return crypto.generateDataKeyWithoutPlaintext(this.rpc, ref, req, opts(o));
  }

  /** RetireGrant, as the grantee or retiring principal: by grant token, or by key and grant id. */
  retireGrant(target: grants.RetireGrantTarget, o?: Partial<ProviderCallOptions>): Promise<void> {
    return grants.retireGrant(this.rpc, target, opts(o));
  }

  /** Removes imported material: the key becomes pending import until material is imported again. */
  deleteImportedKeyMaterial(ref: KeyRef, o?: Partial<ProviderCallOptions>) {
    return byok.deleteImportedKeyMaterial(this.rpc, ref, opts(o));
  }
}
