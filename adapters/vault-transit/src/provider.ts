/**
 * The Vault / OpenBao Transit driver: keyport's KmsProvider over node-vault, plus what only
 * transit offers (keys of any transit type, raw key reads, immediate deletion, version policies,
 * a rewrap that keeps the context, batch calls with `{ data }` items). One instance talks to one
 * server (`endpoint`) and any number of transit mounts (named by each key URI). This class only
 * wires the contract to the modules; retries, deadlines, audit and capability checks are core's.
 *
 * The extras run outside core's call policy when called on the driver, so each maps its own
 * errors and takes an optional signal; `operations.ts` runs them through core instead.
 */
import {
  type Capabilities,
  type DecryptBatchItem,
  type Driver,
  type DriverCapabilities,
  type EncryptBatchItem,
  type EncryptionContext,
  type Grant,
  type KeyInfo,
  KeyportError,
  type KeyRef,
  type KmsProvider,
  keyportError,
  type ListOptions,
  parseKeyUri,
} from '@keyport/core';
import { transitCapabilities } from './capabilities.js';
import * as crypto from './crypto.js';
import { mapVaultError, PROVIDER_NAME } from './errors.js';
import * as grants from './grants.js';
import * as byok from './import.js';
import * as keys from './keys.js';
import { checkOptions, type VaultTransitOptions } from './options.js';
import { VaultSession } from './rpc.js';
import type { TransitKeyData, TransitKeyType } from './specs.js';
import { formatUri, keyId, keyPath, parseUri, type ResolvedKey, resolveKey } from './uri.js';

/** Options of the driver-only methods: core always passes a signal; direct callers may omit it. */
export interface ExtraCallOptions {
  readonly signal?: AbortSignal;
}

/** Core names batch items `{ plaintext }` / `{ ciphertext }`; direct callers may pass `{ data }`. */
function asBatchItem(item: EncryptBatchItem | DecryptBatchItem | crypto.BatchItem): crypto.BatchItem {
  if ('data' in item) return item;
  const data = 'plaintext' in item ? item.plaintext : item.ciphertext;
  return item.context === undefined ? { data } : { data, context: item.context };
}

/** A batch's items in core's shape or transit's `{ data }`. */
type BatchItems<Item> = readonly (Item | crypto.BatchItem)[];

/** The contract's methods, to type the driver's by name. */
type Contract = Driver & DriverCapabilities;

export class VaultTransitProvider implements KmsProvider {
  readonly scheme = 'hcvault';
  readonly name = PROVIDER_NAME;
  readonly capabilities: Capabilities;
  readonly session: VaultSession;
  private readonly t: keys.Transit;

  constructor(options: VaultTransitOptions) {
    this.session = new VaultSession(options, checkOptions(options));
    this.capabilities = transitCapabilities(options.flavor ?? 'vault');
    this.t = {
      s: this.session,
      facts: new keys.KeyFacts(),
      defaultMount: options.mount ?? 'transit',
      store: options.metadataStore && new keys.MetadataStore(this.session, options.metadataStore),
      pending: new Map(),
      extrasSeen: new Map(),
      creating: new Map(),
    };
  }

  readonly parseUri = parseUri;
  readonly formatUri = formatUri;
  readonly mapError: Contract['mapError'] = (error) => mapVaultError(error);

  /** A plain hcvault:// URI is this instance's when it names this instance's server. */
  claimsUri(uri: string): boolean {
    try {
      const parsed = parseKeyUri(uri);
      return parsed.scheme === 'hcvault' && parsed.address === this.session.address;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.session.close();
  }

  private key(ref: KeyRef): ResolvedKey {
    return resolveKey(ref, this.session.address);
  }

  /** A key for a cryptographic call: a key still waiting for its material cannot be used. */
  private target(ref: KeyRef): keys.KeyTarget {
    const key = this.key(ref);
    if (this.t.pending.has(keyId(key))) {
      const why = 'the key is waiting for imported material';
      throw new KeyportError('KeyStateConflict', why, { provider: PROVIDER_NAME, keyUri: key.uri });
    }
    return { ...this.t, key };
  }

  /**
   * A contract method from a module function of the key; `usable` refuses a key still waiting
   * for its material (cryptography), grants and import take any key.
   */
  private on<A extends unknown[], R>(fn: (t: keys.KeyTarget, ...args: A) => Promise<R>, usable = true) {
    return async (ref: KeyRef, ...args: A): Promise<R> =>
      fn(usable ? this.target(ref) : { ...this.t, key: this.key(ref) }, ...args);
  }

  /** Runs `act` on the key, then describes it as it now is. */
  private async changed(ref: KeyRef, signal: AbortSignal, act: (key: ResolvedKey) => Promise<unknown>) {
    const key = this.key(ref);
    await act(key);
    return keys.describe(this.t, { ...key, version: undefined }, signal);
  }

  /** Runs a driver-only call (outside core's call policy) with this driver's error mapping. */
  private async mapped<T>(
    ref: KeyRef | ResolvedKey,
    o: ExtraCallOptions,
    fn: (key: ResolvedKey, signal: AbortSignal) => Promise<T>,
  ) {
    const key = 'mount' in ref ? ref : this.key(ref);
    try {
      return await fn(key, o.signal ?? new AbortController().signal);
    } catch (error) {
      throw mapVaultError(error, key.uri) ?? error;
    }
  }

  // ---------------------------------------------------------------- keys

  readonly createKey: Contract['createKey'] = async (req, o) => keys.createKey(this.t, req, o.signal);
  readonly describeKey: Contract['describeKey'] = async (ref, o) =>
    keys.describeKey(this.t, this.key(ref), o.signal);
  readonly listKeys: Contract['listKeys'] = (o) => keys.listKeys(this.t, o.signal);
  readonly rotateKey: Contract['rotateKey'] = async (ref, o) =>
    this.changed(ref, o.signal, (key) => this.session.write(o.signal, keyPath(key, '/rotate')));
  readonly setRotationPolicy: Contract['setRotationPolicy'] = async (ref, policy, o) =>
    this.changed(ref, o.signal, (key) => {
      const body = { auto_rotate_period: `${keys.rotationSeconds(policy)}s` };
      return keys.configure(this.session, key, body, o.signal);
    });
  readonly destroyKeyVersion: Contract['destroyKeyVersion'] = async (ref, o) =>
    this.changed(ref, o.signal, (key) => keys.destroyVersion(this.session, key, o.signal));
  readonly enableKey: Contract['enableKey'] = async (ref, o) => this.setEnabled(ref, true, o.signal);
  readonly disableKey: Contract['disableKey'] = async (ref, o) => this.setEnabled(ref, false, o.signal);

  /** OpenBao soft-delete; HashiCorp Vault's transit has no disable (a fact of the server flavor). */
  private setEnabled(ref: KeyRef, enabled: boolean, signal: AbortSignal): Promise<KeyInfo> {
    return this.changed(ref, signal, (key) => {
      if (this.capabilities.enableDisable) return keys.softDelete(this.session, key, !enabled, signal);
      const why = 'HashiCorp Vault transit has no disable (OpenBao soft-delete only)';
      const capability = 'enableDisable';
      throw keyportError('Unsupported', why, { provider: PROVIDER_NAME, keyUri: key.uri, capability });
    });
  }

  // ---------------------------------------------------------------- cryptography, grants, import

  readonly encrypt: Contract['encrypt'] = this.on(crypto.encrypt);
  readonly decrypt: Contract['decrypt'] = this.on(crypto.decrypt);
  readonly generateDataKey: Contract['generateDataKey'] = this.on(crypto.generateDataKey);
  readonly sign: Contract['sign'] = this.on(crypto.sign);
  readonly verify: Contract['verify'] = this.on(crypto.verify);
  readonly mac: Contract['mac'] = this.on(crypto.mac);
  readonly verifyMac: Contract['verifyMac'] = this.on(crypto.verifyMac);
  readonly createGrant: Contract['createGrant'] = this.on(grants.createGrant, false);
  async *listGrants(ref: KeyRef, o: ListOptions): AsyncIterable<Grant> {
    yield* grants.listGrants({ s: this.session, key: this.key(ref) }, o);
  }
  readonly revokeGrant: Contract['revokeGrant'] = this.on(grants.revokeGrant, false);
  readonly getImportParameters: Contract['getImportParameters'] = this.on(byok.getImportParameters, false);
  readonly importKeyMaterial: Contract['importKeyMaterial'] = this.on(byok.importKeyMaterial, false);

  /** Many encryptions in one `batch_input` request; one outcome per item, in order. */
  encryptBatch(ref: KeyRef, items: BatchItems<EncryptBatchItem>, o: ExtraCallOptions = {}) {
    return this.mapped(ref, o, (_, signal) =>
      crypto.encryptBatch(this.target(ref), items.map(asBatchItem), signal),
    );
  }
  /** Many decryptions in one request; a bad item (wrong context, foreign ciphertext) fails alone. */
  decryptBatch(ref: KeyRef, items: BatchItems<DecryptBatchItem>, o: ExtraCallOptions = {}) {
    return this.mapped(ref, o, (_, signal) =>
      crypto.decryptBatch(this.target(ref), items.map(asBatchItem), signal),
    );
  }

  // ---------------------------------------------------------------- transit-only

  /** Creates a key of any transit type (including chacha20-poly1305 and ed25519). */
  async createTransitKey(
    name: string,
    type: TransitKeyType,
    opts: keys.TransitKeyOptions = {},
    o: ExtraCallOptions = {},
  ): Promise<TransitKeyData> {
    return this.mapped(keys.keyForName(this.t, name), o, (key, signal) =>
      keys.oneAtATime(this.t, key, signal, async () =>
        this.t.facts.remember(key, await keys.createTransitKey(this.session, key, type, opts, signal)),
      ),
    );
  }

  /** The raw transit key data (any type). */
  readTransitKey(ref: KeyRef, o: ExtraCallOptions = {}): Promise<TransitKeyData> {
    return this.mapped(ref, o, (key, signal) => keys.readKey(this.session, key, signal));
  }

  /** Deletes a key immediately and irreversibly (deletion_allowed, then DELETE). */
  deleteKey(ref: KeyRef, o: ExtraCallOptions = {}): Promise<void> {
    return this.mapped(ref, o, (key, signal) => keys.deleteKey(this.t, key, signal));
  }

  /** min_decryption_version / min_encryption_version (0 = latest for encryption). */
  setVersionPolicy(
    ref: KeyRef,
    policy: { minDecryptionVersion?: number; minEncryptionVersion?: number },
    o: ExtraCallOptions = {},
  ): Promise<KeyInfo> {
    // Unset fields are left out of the JSON body, so Vault keeps their values. Anything but a
    // whole number is refused here: NaN would go out as `null`, which Vault ignores, and the call
    // would report success without changing anything.
    const field = (value: unknown, name: string, min: number): number | undefined => {
      if (value === undefined || (typeof value === 'number' && Number.isSafeInteger(value) && value >= min)) {
        return value;
      }
      const why = `${name} must be an integer of at least ${min}`;
      throw new KeyportError('InvalidArgument', why, { provider: PROVIDER_NAME, keyUri: ref.uri });
    };
    return this.mapped(ref, o, (_, signal) => {
      const body = {
        min_decryption_version: field(policy?.minDecryptionVersion, 'minDecryptionVersion', 1),
        min_encryption_version: field(policy?.minEncryptionVersion, 'minEncryptionVersion', 0),
      };
      return this.changed(ref, signal, (key) => keys.configure(this.session, key, body, signal));
    });
  }

  /** Re-encrypts under the newest version, never dropping the context (see crypto.ts). */
  rewrap(
    ref: KeyRef,
    ciphertext: Uint8Array,
    req: { context?: EncryptionContext } = {},
    o: ExtraCallOptions = {},
  ) {
    return this.mapped(ref, o, (key, signal) =>
      crypto.rewrap({ ...this.t, key }, ciphertext, req.context, signal),
    );
  }
}

/** `new Keyport({ providers: [vaultTransit({ endpoint, auth })] })` */
export function vaultTransit(options: VaultTransitOptions): VaultTransitProvider {
  return new VaultTransitProvider(options);
}

/** The portable half was once a class of its own; both names are this one driver now. */
export const TransitKmsProvider = VaultTransitProvider;
export type TransitKmsProvider = VaultTransitProvider;
