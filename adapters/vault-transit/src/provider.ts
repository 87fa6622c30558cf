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
  type UnmodeledKey,
} from '@keyport/core';
import * as args from './arguments.js';
import { transitCapabilities } from './capabilities.js';
import * as crypto from './crypto.js';
import { mapVaultError, PROVIDER_NAME } from './errors.js';
import * as grants from './grants.js';
import * as byok from './import.js';
import * as keys from './keys.js';
import { TransitMounts } from './mounts.js';
import { checkOptions, type VaultTransitOptions } from './options.js';
import { VaultSession } from './rpc.js';
import type { TransitKeyData, TransitKeyType } from './specs.js';
import { formatUri, keyPath, parseUri, type ResolvedKey, resolveKey } from './uri.js';

/** Options of the driver-only methods: core always passes a signal; direct callers may omit it. */
export interface ExtraCallOptions {
  readonly signal?: AbortSignal;
}

/** Keys this driver resolved itself (a caller's object with a `mount` field is not one). */
const RESOLVED = new WeakSet<ResolvedKey>();

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

  constructor(given: VaultTransitOptions) {
    // From here on only the checked copy is read: the caller's object may change or be a Proxy.
    const { options, url } = checkOptions(given);
    this.session = new VaultSession(options, url);
    this.capabilities = transitCapabilities(options.flavor ?? 'vault');
    const defaultMount = options.mount ?? 'transit';
    this.t = {
      s: this.session,
      mounts: new TransitMounts(this.session, [defaultMount, ...(options.transitMounts ?? [])]),
      facts: new keys.KeyFacts(),
      defaultMount,
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

  /** The key a ref names on this server; a ref that is not one is InvalidArgument. */
  private key(ref: KeyRef | ResolvedKey): ResolvedKey {
    if (RESOLVED.has(ref as ResolvedKey)) return ref as ResolvedKey;
    const key = resolveKey(args.keyRefArg(ref), this.session.address);
    RESOLVED.add(key);
    return key;
  }

  /**
   * A key for a cryptographic call: a key still waiting for its material cannot be used. The
   * server is asked only for a key announced here (its import may have landed unseen).
   */
  private async target(ref: KeyRef | ResolvedKey, signal: AbortSignal): Promise<keys.KeyTarget> {
    const key = this.key(ref);
    if ((await keys.stillPending(this.t, key, signal)) !== undefined) {
      const why = 'the key is waiting for imported material';
      throw new KeyportError('KeyStateConflict', why, { provider: PROVIDER_NAME, keyUri: key.uri });
    }
    return { ...this.t, key };
  }

  /**
   * A contract method from a module function of the key, its other arguments checked by `check`
   * (given the key URI) first; `usable` refuses a key still waiting for its material
   * (cryptography), grants and import take any key.
   */
  private checked<A extends [...unknown[], { signal: AbortSignal }], R>(
    fn: (t: keys.KeyTarget, ...rest: A) => Promise<R>,
    check: (uri: string, ...given: A) => A,
    usable = true,
  ) {
    return async (ref: KeyRef, ...given: A): Promise<R> => {
      const key = this.key(ref);
      const checked = check(key.uri, ...given);
      // Every check answers the call's `{ signal }` last.
      const { signal } = checked[checked.length - 1] as { signal: AbortSignal };
      await this.t.mounts.check(key, signal);
      return fn(usable ? await this.target(key, signal) : { ...this.t, key }, ...checked);
    };
  }

  /** The key a name makes in the default mount (the name is checked there). */
  private resolvedName(name: string): ResolvedKey {
    const key = keys.keyForName(this.t, name);
    RESOLVED.add(key);
    return key;
  }

  /**
   * Runs `act` on the key, then describes it as it now is. A key whose creation did not finish
   * is described (without a rotation period) rather than refused: the change was made.
   */
  private async changed(
    ref: KeyRef | ResolvedKey,
    signal: AbortSignal,
    act: (key: ResolvedKey) => Promise<unknown>,
  ) {
    const key = this.key(ref);
    await this.t.mounts.check(key, signal);
    await act(key);
    return keys.describe(this.t, { ...key, version: undefined }, signal, 'present');
  }

  /** Runs a driver-only call (outside core's call policy) with this driver's error mapping. */
  private async mapped<T>(
    ref: KeyRef | ResolvedKey,
    o: ExtraCallOptions,
    fn: (key: ResolvedKey, signal: AbortSignal) => Promise<T>,
  ) {
    const key = this.key(ref);
    const signal = args.signalOf(o);
    try {
      await this.t.mounts.check(key, signal);
      return await fn(key, signal);
    } catch (error) {
      throw mapVaultError(error, key.uri) ?? error;
    }
  }

  // ---------------------------------------------------------------- keys

  readonly createKey: Contract['createKey'] = async (req, o) =>
    keys.createKey(this.t, args.createKeyArg(req), args.signalOf(o));
  readonly describeKey: Contract['describeKey'] = async (ref, o) => {
    const key = this.key(ref);
    const signal = args.signalOf(o);
    await this.t.mounts.check(key, signal);
    return keys.describeKey(this.t, key, signal);
  };
  /** Checked when the listing starts (a refusal is the first `next`'s, never a synchronous throw). */
  async *listKeys(o: ListOptions): AsyncIterable<KeyInfo | UnmodeledKey> {
    yield* keys.listKeys(this.t, args.signalOf(o, true));
  }
  readonly rotateKey: Contract['rotateKey'] = async (ref, o) => {
    const signal = args.signalOf(o);
    return this.changed(ref, signal, (key) => this.session.write(signal, keyPath(key, '/rotate')));
  };
  readonly setRotationPolicy: Contract['setRotationPolicy'] = async (ref, given, o) => {
    const policy = args.rotationPolicyArg(given, this.key(ref).uri);
    const signal = args.signalOf(o);
    return this.changed(ref, signal, (key) => {
      const body = { auto_rotate_period: `${keys.rotationSeconds(policy)}s` };
      return keys.configure(this.session, key, body, signal);
    });
  };
  readonly destroyKeyVersion: Contract['destroyKeyVersion'] = async (ref, o) => {
    const signal = args.signalOf(o);
    return this.changed(ref, signal, (key) => keys.destroyVersion(this.session, key, signal));
  };
  readonly enableKey: Contract['enableKey'] = async (ref, o) => this.setEnabled(ref, true, args.signalOf(o));
  readonly disableKey: Contract['disableKey'] = async (ref, o) =>
    this.setEnabled(ref, false, args.signalOf(o));

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

  // Every argument is checked before the key is used (see arguments.ts); `call` is `{ signal }`.
  readonly encrypt: Contract['encrypt'] = this.checked(crypto.encrypt, (uri, plaintext, req, o) => [
    args.bytesArg(plaintext, 'plaintext', uri),
    { context: args.contextArg(req, uri) } as typeof req,
    { signal: args.signalOf(o) },
  ]);
  readonly decrypt: Contract['decrypt'] = this.checked(crypto.decrypt, (uri, ciphertext, req, o) => [
    args.bytesArg(ciphertext, 'ciphertext', uri),
    { context: args.contextArg(req, uri) } as typeof req,
    { signal: args.signalOf(o) },
  ]);
  readonly generateDataKey: Contract['generateDataKey'] = this.checked(
    crypto.generateDataKey,
    (uri, req, o) => [args.dataKeyArg(req, uri), { signal: args.signalOf(o) }],
  );
  readonly sign: Contract['sign'] = this.checked(crypto.sign, (uri, message, req, o) => [
    args.bytesArg(message, 'message', uri),
    args.signArg(req, uri),
    { signal: args.signalOf(o) },
  ]);
  readonly verify: Contract['verify'] = this.checked(crypto.verify, (uri, message, signature, req, o) => [
    args.bytesArg(message, 'message', uri),
    args.bytesArg(signature, 'signature', uri),
    args.signArg(req, uri) as typeof req,
    { signal: args.signalOf(o) },
  ]);
  readonly mac: Contract['mac'] = this.checked(crypto.mac, (uri, message, o) => [
    args.bytesArg(message, 'message', uri),
    { signal: args.signalOf(o) },
  ]);
  readonly verifyMac: Contract['verifyMac'] = this.checked(crypto.verifyMac, (uri, message, tag, o) => [
    args.bytesArg(message, 'message', uri),
    args.bytesArg(tag, 'mac', uri),
    { signal: args.signalOf(o) },
  ]);
  readonly createGrant: Contract['createGrant'] = this.checked(
    grants.createGrant,
    (uri, req, o) => [args.grantArg(req, uri), { signal: args.signalOf(o) }],
    false,
  );
  async *listGrants(ref: KeyRef, o: ListOptions): AsyncIterable<Grant> {
    const key = this.key(ref);
    const signal = args.signalOf(o, true);
    await this.t.mounts.check(key, signal);
    yield* grants.listGrants({ s: this.session, key }, { signal });
  }
  readonly revokeGrant: Contract['revokeGrant'] = this.checked(
    grants.revokeGrant,
    (uri, id, o) => [args.grantIdArg(id, uri), { signal: args.signalOf(o) }],
    false,
  );
  readonly getImportParameters: Contract['getImportParameters'] = this.checked(
    byok.getImportParameters,
    (uri, req, o) => [args.importParametersArg(req, uri), { signal: args.signalOf(o) }],
    false,
  );
  readonly importKeyMaterial: Contract['importKeyMaterial'] = this.checked(
    byok.importKeyMaterial,
    (uri, req, o) => [args.importMaterialArg(req, uri), { signal: args.signalOf(o) }],
    false,
  );

  /** Many encryptions in one `batch_input` request; one outcome per item, in order. */
  encryptBatch(ref: KeyRef, items: BatchItems<EncryptBatchItem>, o: ExtraCallOptions = {}) {
    return this.mapped(ref, o, async (key, signal) => {
      const checked = args.batchArg(items, 'plaintext', key.uri);
      return crypto.encryptBatch(await this.target(key, signal), checked, signal);
    });
  }
  /** Many decryptions in one request; a bad item (wrong context, foreign ciphertext) fails alone. */
  decryptBatch(ref: KeyRef, items: BatchItems<DecryptBatchItem>, o: ExtraCallOptions = {}) {
    return this.mapped(ref, o, async (key, signal) => {
      const checked = args.batchArg(items, 'ciphertext', key.uri);
      return crypto.decryptBatch(await this.target(key, signal), checked, signal);
    });
  }

  // ---------------------------------------------------------------- transit-only

  /** Creates a key of any transit type (including chacha20-poly1305 and ed25519). */
  async createTransitKey(
    name: string,
    type: TransitKeyType,
    opts: keys.TransitKeyOptions = {},
    o: ExtraCallOptions = {},
  ): Promise<TransitKeyData> {
    return this.mapped(this.resolvedName(name), o, (key, signal) =>
      keys.oneAtATime(this.t, key, signal, async () => {
        // A key made now is a new key: what was remembered of an earlier one of the name is not its.
        this.t.facts.forget(key);
        return this.t.facts.remember(key, await keys.createTransitKey(this.session, key, type, opts, signal));
      }),
    );
  }

  /** The raw transit key data (any type). */
  async readTransitKey(ref: KeyRef, o: ExtraCallOptions = {}): Promise<TransitKeyData> {
    return this.mapped(ref, o, (key, signal) => keys.readKey(this.session, key, signal));
  }

  /** Deletes a key immediately and irreversibly (deletion_allowed, then DELETE). */
  async deleteKey(ref: KeyRef, o: ExtraCallOptions = {}): Promise<void> {
    return this.mapped(ref, o, (key, signal) => keys.deleteKey(this.t, key, signal));
  }

  /** min_decryption_version / min_encryption_version (0 = latest for encryption). */
  async setVersionPolicy(
    ref: KeyRef,
    policy: { minDecryptionVersion?: number; minEncryptionVersion?: number },
    o: ExtraCallOptions = {},
  ): Promise<KeyInfo> {
    // Unset fields are left out of the JSON body, so Vault keeps their values. Anything but a
    // whole number is refused here: NaN would go out as `null`, which Vault ignores, and the call
    // would report success without changing anything.
    return this.mapped(ref, o, (key, signal) => {
      const checked = args.versionPolicyArg(policy, key.uri);
      const body = {
        min_decryption_version: checked.minDecryptionVersion,
        min_encryption_version: checked.minEncryptionVersion,
      };
      return this.changed(key, signal, (k) => keys.configure(this.session, k, body, signal));
    });
  }

  /** Re-encrypts under the newest version, never dropping the context (see crypto.ts). */
  async rewrap(
    ref: KeyRef,
    ciphertext: Uint8Array,
    req: { context?: EncryptionContext } = {},
    o: ExtraCallOptions = {},
  ) {
    return this.mapped(ref, o, (key, signal) => {
      const bytes = args.bytesArg(ciphertext, 'ciphertext', key.uri);
      return crypto.rewrap({ ...this.t, key }, bytes, args.contextArg(req, key.uri), signal);
    });
  }
}

/** `new Keyport({ providers: [vaultTransit({ endpoint, auth })] })` */
export function vaultTransit(options: VaultTransitOptions): VaultTransitProvider {
  return new VaultTransitProvider(options);
}

/** The portable half was once a class of its own; both names are this one driver now. */
export const TransitKmsProvider = VaultTransitProvider;
export type TransitKmsProvider = VaultTransitProvider;
