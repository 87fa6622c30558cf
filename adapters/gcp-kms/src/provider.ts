/**
 * `gcpKms(options)`: keyport's driver over Google Cloud KMS (`gcp-kms://` URIs). The class only
 * wires the contract to the operation modules (keys, crypto, grants, import); retries, deadline,
 * abort, audit and capability checks are core's. Cloud KMS keys cannot be deleted, so there is no
 * scheduleKeyDeletion; `restoreKeyVersion` is a Cloud KMS-only operation (see operations.ts).
 */
import type { KeyManagementServiceClient } from '@google-cloud/kms';
import {
  type Capabilities,
  KeyportError,
  type KeyRef,
  type KmsProvider,
  type ProviderCallOptions,
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

/** The contract's type for each method: the arrow functions below are typed by core's interfaces. */
type Op<K extends keyof Required<KmsProvider>> = Required<KmsProvider>[K];

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
      asymmetricKeys: new Map(),
    };
  }

  readonly parseUri: Op<'parseUri'> = parseUri;
  readonly formatUri: Op<'formatUri'> = formatUri;

  readonly createKey: Op<'createKey'> = (req, o) => keys.createKey(this.rt, req, o);
  readonly describeKey: Op<'describeKey'> = (ref, o) => keys.describeKey(this.rt, ref, o);
  readonly listKeys: Op<'listKeys'> = (o) => keys.listKeys(this.rt, o);
  /** Creates a version; for ENCRYPT_DECRYPT keys it also becomes the primary. */
  readonly rotateKey: Op<'rotateKey'> = (ref, o) => keys.rotateKey(this.rt, ref, o);
  readonly setRotationPolicy: Op<'setRotationPolicy'> = (r, p, o) => keys.setRotationPolicy(this.rt, r, p, o);
  /** Enable/disable act on the pinned version, or the primary (newest live version for keys without one). */
  readonly enableKey: Op<'enableKey'> = (ref, o) => keys.setVersionState(this.rt, ref, 'ENABLED', o);
  readonly disableKey: Op<'disableKey'> = (ref, o) => keys.setVersionState(this.rt, ref, 'DISABLED', o);
  readonly destroyKeyVersion: Op<'destroyKeyVersion'> = (r, o) =>
    keys.destroyOrRestore(this.rt, r, 'destroy', o);

  readonly encrypt: Op<'encrypt'> = (ref, data, req, o) => crypto.encrypt(this.rt, ref, data, req, o);
  readonly decrypt: Op<'decrypt'> = (ref, data, req, o) => crypto.decrypt(this.rt, ref, data, req, o);
  readonly sign: Op<'sign'> = (ref, message, req, o) => crypto.sign(this.rt, ref, message, req, o);
  readonly verify: Op<'verify'> = (ref, m, s, req, o) => crypto.verify(this.rt, ref, m, s, req, o);
  /** SPKI DER of an asymmetric key version's public key (GetPublicKey, checksum verified). */
  readonly getPublicKey: Op<'getPublicKey'> = (ref, o) => crypto.getPublicKey(this.rt, ref, o);
  readonly mac: Op<'mac'> = (ref, message, o) => crypto.mac(this.rt, ref, message, o);
  readonly verifyMac: Op<'verifyMac'> = (ref, m, tag, o) => crypto.verifyMac(this.rt, ref, m, tag, o);

  readonly createGrant: Op<'createGrant'> = (ref, req, o) => grants.createGrant(this.rt, ref, req, o);
  readonly listGrants: Op<'listGrants'> = (ref, o) => grants.listGrants(this.rt, ref, o);
  readonly revokeGrant: Op<'revokeGrant'> = (ref, id, o) => grants.revokeGrant(this.rt, ref, id, o);

  readonly getImportParameters: Op<'getImportParameters'> = (r, q, o) =>
    byok.getImportParameters(this.rt, r, q, o);
  readonly importKeyMaterial: Op<'importKeyMaterial'> = (r, q, o) => byok.importKeyMaterial(this.rt, r, q, o);

  /** Cloud KMS only: RestoreCryptoKeyVersion (a DESTROY_SCHEDULED version comes back DISABLED). */
  restoreKeyVersion(ref: KeyRef, o: ProviderCallOptions) {
    return keys.destroyOrRestore(this.rt, ref, 'restore', o);
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
