/**
 * `gcpKms(options)`: keyport's driver over Google Cloud KMS (`gcp-kms://` URIs). The class only
 * wires the contract to the operation modules (keys, crypto, grants, import); retries, deadline,
 * abort, audit and capability checks are core's. Cloud KMS keys cannot be deleted, so there is no
 * scheduleKeyDeletion; `restoreKeyVersion` is a Cloud KMS-only operation (see operations.ts).
 */
import type { KeyManagementServiceClient } from '@google-cloud/kms';
import {
  type Capabilities,
  type Grant,
  type KeyInfo,
  KeyportError,
  type KeyRef,
  type KmsProvider,
  type ListOptions,
  type ProviderCallOptions,
  type UnmodeledKey,
} from '@keyport/core';
import { Arguments } from './arguments.js';
import { gcpKmsCapabilities } from './capabilities.js';
import * as crypto from './crypto.js';
import { mapGcpError } from './errors.js';
import * as grants from './grants.js';
import * as byok from './import.js';
import * as keys from './keys.js';
import { buildClient, checkGcpKmsOptions, type GcpKmsProviderOptions } from './options.js';
import { Rpc, type Runtime } from './rpc.js';
import { formatUri, parseUri } from './uri.js';

/** The contract's type for each method: the arrow functions below are typed by core's interfaces. */
type Op<K extends keyof Required<KmsProvider>> = Required<KmsProvider>[K];

export class GcpKmsProvider implements KmsProvider {
  readonly scheme = 'gcp-kms';
  readonly name: string;
  readonly capabilities: Capabilities;
  private readonly rt: Runtime;
  /** Every method's arguments are checked here first (direct callers skip core's checks). */
  private readonly a: Arguments;
  private built: Promise<KeyManagementServiceClient> | undefined;

  /** The checked copy of the options given (see checkGcpKmsOptions). */
  private readonly options: GcpKmsProviderOptions;

  constructor(given: GcpKmsProviderOptions = {}) {
    const options = checkGcpKmsOptions(given);
    this.options = options;
    this.name = options.name ?? 'gcp-kms';
    this.a = new Arguments(this.name);
    this.capabilities = gcpKmsCapabilities(options);
    this.rt = {
      rpc: new Rpc(() => this.client(), options.headers ?? {}, this.name),
      keyRing: options.keyRing,
      protectionLevel: options.protectionLevel ?? 'SOFTWARE',
      importJobKeyBits: options.importJobKeyBits ?? 3072,
      algorithms: new Map(),
      publicKeys: new Map(),
      asymmetricKeys: new Map(),
      creating: new Map(),
      unanswered: new Map(),
    };
  }

  readonly parseUri: Op<'parseUri'> = parseUri;
  readonly formatUri: Op<'formatUri'> = formatUri;

  readonly createKey: Op<'createKey'> = async (req, o) =>
    keys.createKey(this.rt, this.a.createKey(req), this.a.options(o));
  readonly describeKey: Op<'describeKey'> = async (ref, o) =>
    keys.describeKey(this.rt, this.a.ref(ref), this.a.options(o));
  /** Checked when the listing starts (a refusal is the first `next`'s, never a synchronous throw). */
  async *listKeys(o: ListOptions): AsyncIterable<KeyInfo | UnmodeledKey> {
    yield* keys.listKeys(this.rt, this.a.options(o, true));
  }
  /** Creates a version; for ENCRYPT_DECRYPT keys it also becomes the primary. */
  readonly rotateKey: Op<'rotateKey'> = async (ref, o) =>
    keys.rotateKey(this.rt, this.a.ref(ref), this.a.options(o));
  readonly setRotationPolicy: Op<'setRotationPolicy'> = async (given, policy, o) => {
    const ref = this.a.ref(given);
    return keys.setRotationPolicy(this.rt, ref, this.a.rotationPolicy(policy, ref), this.a.options(o));
  };
  /** Enable/disable act on the pinned version, or the primary (newest live version for keys without one). */
  readonly enableKey: Op<'enableKey'> = async (ref, o) =>
    keys.setVersionState(this.rt, this.a.ref(ref), 'ENABLED', this.a.options(o));
  readonly disableKey: Op<'disableKey'> = async (ref, o) =>
    keys.setVersionState(this.rt, this.a.ref(ref), 'DISABLED', this.a.options(o));
  readonly destroyKeyVersion: Op<'destroyKeyVersion'> = async (ref, o) =>
    keys.destroyOrRestore(this.rt, this.a.ref(ref), 'destroy', this.a.options(o));

  readonly encrypt: Op<'encrypt'> = async (given, data, req, o) => {
    const ref = this.a.ref(given);
    const plaintext = this.a.bytes(data, 'plaintext', ref);
    return crypto.encrypt(this.rt, ref, plaintext, this.a.contextRequest(req, ref), this.a.options(o));
  };
  readonly decrypt: Op<'decrypt'> = async (given, data, req, o) => {
    const ref = this.a.ref(given);
    const ciphertext = this.a.bytes(data, 'ciphertext', ref);
    return crypto.decrypt(this.rt, ref, ciphertext, this.a.contextRequest(req, ref), this.a.options(o));
  };
  readonly sign: Op<'sign'> = async (given, message, req, o) => {
    const ref = this.a.ref(given);
    const m = this.a.bytes(message, 'message', ref);
    return crypto.sign(this.rt, ref, m, this.a.sign(req, ref), this.a.options(o));
  };
  readonly verify: Op<'verify'> = async (given, message, signature, req, o) => {
    const ref = this.a.ref(given);
    const m = this.a.bytes(message, 'message', ref);
    const s = this.a.bytes(signature, 'signature', ref);
    return crypto.verify(this.rt, ref, m, s, this.a.sign(req, ref) as typeof req, this.a.options(o));
  };
  /** SPKI DER of an asymmetric key version's public key (GetPublicKey, checksum verified). */
  readonly getPublicKey: Op<'getPublicKey'> = async (ref, o) =>
    crypto.getPublicKey(this.rt, this.a.ref(ref), this.a.options(o));
  readonly mac: Op<'mac'> = async (given, message, o) => {
    const ref = this.a.ref(given);
    return crypto.mac(this.rt, ref, this.a.bytes(message, 'message', ref), this.a.options(o));
  };
  readonly verifyMac: Op<'verifyMac'> = async (given, message, tag, o) => {
    const ref = this.a.ref(given);
    const m = this.a.bytes(message, 'message', ref);
    return crypto.verifyMac(this.rt, ref, m, this.a.bytes(tag, 'mac', ref), this.a.options(o));
  };

  readonly createGrant: Op<'createGrant'> = async (given, req, o) => {
    const ref = this.a.ref(given);
    return grants.createGrant(this.rt, ref, this.a.grant(req, ref), this.a.options(o));
  };
  async *listGrants(given: KeyRef, o: ListOptions): AsyncIterable<Grant> {
    const ref = this.a.ref(given);
    yield* grants.listGrants(this.rt, ref, this.a.options(o, true));
  }
  readonly revokeGrant: Op<'revokeGrant'> = async (given, id, o) => {
    const ref = this.a.ref(given);
    return grants.revokeGrant(this.rt, ref, this.a.grantId(id, ref), this.a.options(o));
  };

  readonly getImportParameters: Op<'getImportParameters'> = async (given, req, o) => {
    const ref = this.a.ref(given);
    return byok.getImportParameters(this.rt, ref, this.a.importParameters(req, ref), this.a.options(o));
  };
  readonly importKeyMaterial: Op<'importKeyMaterial'> = async (given, req, o) => {
    const ref = this.a.ref(given);
    return byok.importKeyMaterial(this.rt, ref, this.a.importMaterial(req, ref), this.a.options(o));
  };

  /** Cloud KMS only: RestoreCryptoKeyVersion (a DESTROY_SCHEDULED version comes back DISABLED). */
  async restoreKeyVersion(ref: KeyRef, o: ProviderCallOptions) {
    return keys.destroyOrRestore(this.rt, this.a.ref(ref), 'restore', this.a.options(o));
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
