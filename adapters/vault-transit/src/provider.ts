/**
 * The Vault / OpenBao Transit driver: keyport's KmsProvider over node-vault, plus what only
 * transit offers (keys of any transit type, raw key reads, immediate deletion, version policies,
 * a rewrap that keeps the context, batch calls with `{ data }` items). One instance talks to one
 * server (`endpoint`) and any number of transit mounts (named by each key URI).
 *
 * The extras run outside core's call policy when called on the driver, so each maps its own
 * errors and takes an optional signal; `operations.ts` runs them through core instead.
 */
import {
  type Capabilities,
  type CreateKeyRequest,
  type DecryptBatchItem,
  type Driver,
  type DriverCapabilities,
  type EncryptBatchItem,
  type EncryptionContext,
  type ImportKeyMaterialRequest,
  type ImportParameters,
  type ImportParametersRequest,
  type KeyInfo,
  KeyportError,
  type KeyRef,
  type KeySpec,
  type KmsProvider,
  keyportError,
  type ListOptions,
  type ProviderCallOptions,
  parseKeyUri,
  USAGES_BY_SPEC,
  unmodeledKeyError,
} from '@keyport/core';
import { transitCapabilities } from './capabilities.js';
import * as crypto from './crypto.js';
import { mapVaultError, PROVIDER_NAME } from './errors.js';
import * as grants from './grants.js';
import * as byok from './import.js';
import * as keys from './keys.js';
import { checkOptions, type VaultTransitOptions } from './options.js';
import { VaultSession } from './rpc.js';
import {
  type KeyInfoExtras,
  type TransitKeyData,
  type TransitKeyType,
  TYPE_BY_SPEC,
  toKeyInfo,
} from './specs.js';
import {
  formatUri,
  keyId,
  keyPath,
  keyUriOf,
  parseUri,
  type ResolvedKey,
  resolveKey,
  URI_NAME,
} from './uri.js';

/** Options of the driver-only methods: core always passes a signal; direct callers may omit it. */
export interface ExtraCallOptions {
  readonly signal?: AbortSignal;
}

const signalOf = (o: ExtraCallOptions): AbortSignal => o.signal ?? new AbortController().signal;

/** Core names batch items `{ plaintext }` / `{ ciphertext }`; direct callers may pass `{ data }`. */
function asBatchItem(item: EncryptBatchItem | DecryptBatchItem | crypto.BatchItem): crypto.BatchItem {
  if ('data' in item) return item;
  const data = 'plaintext' in item ? item.plaintext : item.ciphertext;
  return item.context === undefined ? { data } : { data, context: item.context };
}

/** The contract's methods, to type the driver's by name. */
type Contract = Driver & DriverCapabilities;

export class VaultTransitProvider implements KmsProvider {
  readonly scheme = 'hcvault';
  readonly name = PROVIDER_NAME;
  readonly capabilities: Capabilities;
  readonly session: VaultSession;
  private readonly facts = new crypto.KeyFacts();
  /** Keys announced with createKey({ external: true }) and not imported yet (this process only). */
  private readonly pending = new Map<string, KeySpec>();
  /**
   * Labels, description and usage given at creation, as this process last saw them. With a
   * metadata store the store is authoritative; without one only the usage is kept (transit RSA
   * keys serve both usages; keyport reports the one asked for).
   */
  private readonly extrasSeen = new Map<string, KeyInfoExtras>();
  private readonly defaultMount: string;
  private readonly store: keys.MetadataStore | undefined;

  constructor(options: VaultTransitOptions) {
    this.session = new VaultSession(options, checkOptions(options));
    this.capabilities = transitCapabilities(options.flavor ?? 'vault');
    this.defaultMount = options.mount ?? 'transit';
    this.store = options.metadataStore && new keys.MetadataStore(this.session, options.metadataStore);
  }

  readonly parseUri = parseUri;
  readonly formatUri = formatUri;

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

  readonly mapError: Contract['mapError'] = (error) => mapVaultError(error);

  private key(ref: KeyRef): ResolvedKey {
    return resolveKey(ref, this.session.address);
  }

  /** A key for a cryptographic call: a key still waiting for its material cannot be used. */
  private target(ref: KeyRef): crypto.Target {
    const key = this.key(ref);
    if (this.pending.has(keyId(key))) {
      throw new KeyportError('KeyStateConflict', 'the key is waiting for imported material', {
        provider: PROVIDER_NAME,
        keyUri: key.uri,
      });
    }
    return { s: this.session, facts: this.facts, key };
  }

  /** A create request's `name` may be a bare name (default mount) or a full key URI. */
  private keyForName(name: string): ResolvedKey {
    const address = this.session.address;
    return this.key({
      uri: name.startsWith('hcvault://') ? name : keyUriOf({ address, mount: this.defaultMount, name }),
    });
  }

  private async extras(key: ResolvedKey, signal: AbortSignal): Promise<KeyInfoExtras> {
    if (this.store === undefined) return this.extrasSeen.get(keyId(key)) ?? {};
    return (await this.store.read(key, signal)) ?? {};
  }

  private async describe(key: ResolvedKey, signal: AbortSignal): Promise<KeyInfo> {
    const [data, extras] = await Promise.all([
      keys.readKey(this.session, key, signal),
      this.extras(key, signal),
    ]);
    const info = toKeyInfo(key, this.facts.remember(key, data), extras);
    if (info === undefined)
      throw unmodeledKeyError(`transit ${data.type} keys`, { provider: PROVIDER_NAME, keyUri: key.uri });
    return info;
  }

  /** Runs a driver-only call (outside core's call policy) with this driver's error mapping. */
  private async mapped<T>(key: ResolvedKey, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw mapVaultError(error, key.uri) ?? error;
    }
  }

  // ---------------------------------------------------------------- keys

  async createKey(req: CreateKeyRequest, o: ProviderCallOptions): Promise<KeyInfo> {
    if (
      this.store === undefined &&
      (Object.keys(req.labels ?? {}).length > 0 || req.description !== undefined)
    ) {
      // Transit keys carry no user metadata; dropping labels silently would lose data.
      throw new KeyportError(
        'InvalidArgument',
        'transit keys cannot carry labels or a description: configure metadataStore to keep them',
      );
    }
    const key = this.keyForName(req.name);
    const extras: KeyInfoExtras = {
      usage: req.usage ?? USAGES_BY_SPEC[req.spec][0],
      ...(req.labels !== undefined ? { labels: req.labels } : {}),
      ...(req.description !== undefined ? { description: req.description } : {}),
    };
    if (req.external === true) {
      if (
        this.pending.has(keyId(key)) ||
        (await keys.tryReadKey(this.session, key, o.signal)) !== undefined
      ) {
        throw keys.alreadyExists(key);
      }
      this.pending.set(keyId(key), req.spec);
    } else {
      const autoRotatePeriodSeconds = keys.rotationSeconds(req.rotation);
      await keys.createTransitKey(
        this.session,
        key,
        TYPE_BY_SPEC[req.spec],
        { autoRotatePeriodSeconds },
        o.signal,
      );
    }
    this.extrasSeen.set(keyId(key), extras);
    await this.store?.write(key, extras, o.signal);
    return req.external === true ? this.pendingInfo(key, req.spec, extras) : this.describe(key, o.signal);
  }

  private pendingInfo(key: ResolvedKey, spec: KeySpec, extras: KeyInfoExtras): KeyInfo {
    return {
      uri: keyUriOf(key),
      spec,
      usage: extras.usage ?? 'encrypt_decrypt',
      state: 'pending_import',
      labels: { ...extras.labels },
      ...(extras.description !== undefined ? { description: extras.description } : {}),
      origin: 'external',
    };
  }

  async describeKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    const key = this.key(ref);
    const spec = this.pending.get(keyId(key));
    if (spec !== undefined) return this.pendingInfo(key, spec, await this.extras(key, o.signal));
    return this.describe(key, o.signal);
  }

  /** Keys of the default mount whose type core can name and whose name a key URI can carry. */
  async *listKeys(o: ListOptions): AsyncIterable<KeyInfo> {
    for (const name of await keys.listKeyNames(this.session, this.defaultMount, o.signal)) {
      if (!URI_NAME.test(name)) continue; // transit accepts names keyport cannot address
      const key = this.keyForName(name);
      const data = await keys.tryReadKey(this.session, key, o.signal);
      if (data === undefined) continue; // deleted while listing
      const info = toKeyInfo(key, data, await this.extras(key, o.signal));
      if (info !== undefined) yield info;
    }
  }

  /** Runs `act` on the key, then describes it as it now is. */
  private async changed(ref: KeyRef, signal: AbortSignal, act: (key: ResolvedKey) => Promise<unknown>) {
    const key = this.key(ref);
    await act(key);
    return this.describe({ ...key, version: undefined }, signal);
  }

  readonly rotateKey: Contract['rotateKey'] = (ref, o) =>
    this.changed(ref, o.signal, (key) => this.session.write(o.signal, keyPath(key, '/rotate')));
  readonly setRotationPolicy: Contract['setRotationPolicy'] = (ref, policy, o) =>
    this.changed(ref, o.signal, (key) => {
      const body = { auto_rotate_period: `${keys.rotationSeconds(policy)}s` };
      return keys.configure(this.session, key, body, o.signal);
    });
  readonly destroyKeyVersion: Contract['destroyKeyVersion'] = (ref, o) =>
    this.changed(ref, o.signal, (key) => keys.destroyVersion(this.session, key, o.signal));
  readonly enableKey: Contract['enableKey'] = (ref, o) => this.setEnabled(ref, true, o.signal);
  readonly disableKey: Contract['disableKey'] = (ref, o) => this.setEnabled(ref, false, o.signal);

  /** OpenBao soft-delete; HashiCorp Vault's transit has no disable (a fact of the server flavor). */
  private setEnabled(ref: KeyRef, enabled: boolean, signal: AbortSignal): Promise<KeyInfo> {
    return this.changed(ref, signal, (key) => {
      if (this.capabilities.enableDisable) return keys.setSoftDeleted(this.session, key, !enabled, signal);
      const why = 'HashiCorp Vault transit has no disable (OpenBao soft-delete only)';
      throw keyportError('Unsupported', why, {
        provider: PROVIDER_NAME,
        keyUri: key.uri,
        capability: 'enableDisable',
      });
    });
  }

  // ---------------------------------------------------------------- cryptography and grants

  readonly encrypt: Contract['encrypt'] = (ref, plaintext, req, o) =>
    crypto.encrypt(this.target(ref), plaintext, req.context, o.signal);
  readonly decrypt: Contract['decrypt'] = (ref, ciphertext, req, o) =>
    crypto.decrypt(this.target(ref), ciphertext, req.context, o.signal);
  readonly generateDataKey: Contract['generateDataKey'] = (ref, req, o) =>
    crypto.generateDataKey(this.target(ref), req, o.signal);
  readonly sign: Contract['sign'] = (ref, message, req, o) =>
    crypto.sign(this.target(ref), message, req, o.signal);
  readonly verify: Contract['verify'] = (ref, message, signature, req, o) =>
    crypto.verify(this.target(ref), message, signature, req, o.signal);
  readonly mac: Contract['mac'] = (ref, message, o) => crypto.mac(this.target(ref), message, o.signal);
  readonly verifyMac: Contract['verifyMac'] = (ref, message, tag, o) =>
    crypto.verifyMac(this.target(ref), message, tag, o.signal);
  readonly createGrant: Contract['createGrant'] = (ref, req, o) =>
    grants.createGrant(this.session, this.key(ref), req, o.signal);
  readonly listGrants: Contract['listGrants'] = (ref, o) =>
    grants.listGrants(this.session, this.key(ref), o.signal);
  readonly revokeGrant: Contract['revokeGrant'] = (ref, id, o) =>
    grants.revokeGrant(this.session, this.key(ref), id, o.signal);

  /** Many encryptions in one `batch_input` request; one outcome per item, in order. */
  encryptBatch(
    ref: KeyRef,
    items: readonly (EncryptBatchItem | crypto.BatchItem)[],
    o: ExtraCallOptions = {},
  ) {
    const t = this.target(ref);
    return this.mapped(t.key, () => crypto.encryptBatch(t, items.map(asBatchItem), signalOf(o)));
  }
  /** Many decryptions in one request; a bad item (wrong context, foreign ciphertext) fails alone. */
  decryptBatch(
    ref: KeyRef,
    items: readonly (DecryptBatchItem | crypto.BatchItem)[],
    o: ExtraCallOptions = {},
  ) {
    const t = this.target(ref);
    return this.mapped(t.key, () => crypto.decryptBatch(t, items.map(asBatchItem), signalOf(o)));
  }

  // ---------------------------------------------------------------- import

  async getImportParameters(
    ref: KeyRef,
    req: ImportParametersRequest,
    o: ProviderCallOptions,
  ): Promise<ImportParameters> {
    const key = this.key(ref);
    // Only an imported key takes more material (as a new version); generated keys never do.
    if (
      !this.pending.has(keyId(key)) &&
      (await keys.readKey(this.session, key, o.signal)).imported_key !== true
    ) {
      throw new KeyportError(
        'KeyStateConflict',
        'the key holds provider-generated material and takes no import',
        {
          provider: PROVIDER_NAME,
          keyUri: key.uri,
        },
      );
    }
    return byok.getImportParameters(this.session, key, o.signal, req.algorithm);
  }

  async importKeyMaterial(
    ref: KeyRef,
    req: ImportKeyMaterialRequest,
    o: ProviderCallOptions,
  ): Promise<KeyInfo> {
    const key = this.key(ref);
    await byok.importKeyMaterial(this.session, key, req, this.pending.get(keyId(key)), o.signal);
    this.pending.delete(keyId(key));
    return this.describe(key, o.signal);
  }

  // ---------------------------------------------------------------- transit-only

  /** Creates a key of any transit type (including chacha20-poly1305 and ed25519). */
  createTransitKey(
    name: string,
    type: TransitKeyType,
    opts: keys.TransitKeyOptions = {},
    o: ExtraCallOptions = {},
  ): Promise<TransitKeyData> {
    const key = this.keyForName(name);
    return this.mapped(key, async () =>
      this.facts.remember(key, await keys.createTransitKey(this.session, key, type, opts, signalOf(o))),
    );
  }

  /** The raw transit key data (any type). */
  readTransitKey(ref: KeyRef, o: ExtraCallOptions = {}): Promise<TransitKeyData> {
    const key = this.key(ref);
    return this.mapped(key, () => keys.readKey(this.session, key, signalOf(o)));
  }

  /** Deletes a key immediately and irreversibly (deletion_allowed, then DELETE). */
  deleteKey(ref: KeyRef, o: ExtraCallOptions = {}): Promise<void> {
    const key = this.key(ref);
    return this.mapped(key, async () => {
      await keys.deleteKey(this.session, key, signalOf(o));
      this.facts.forget(key);
      this.extrasSeen.delete(keyId(key));
      await this.store?.remove(key, signalOf(o));
    });
  }

  /** min_decryption_version / min_encryption_version (0 = latest for encryption). */
  setVersionPolicy(
    ref: KeyRef,
    policy: { minDecryptionVersion?: number; minEncryptionVersion?: number },
    o: ExtraCallOptions = {},
  ): Promise<KeyInfo> {
    // Unset fields are left out of the JSON body, so Vault keeps their values.
    const body = {
      min_decryption_version: policy.minDecryptionVersion,
      min_encryption_version: policy.minEncryptionVersion,
    };
    const signal = signalOf(o);
    return this.mapped(this.key(ref), () =>
      this.changed(ref, signal, (key) => keys.configure(this.session, key, body, signal)),
    );
  }

  /** Re-encrypts under the newest version, never dropping the context (see crypto.ts). */
  rewrap(
    ref: KeyRef,
    ciphertext: Uint8Array,
    req: { context?: EncryptionContext } = {},
    o: ExtraCallOptions = {},
  ) {
    const t = { s: this.session, facts: this.facts, key: this.key(ref) };
    return this.mapped(t.key, () => crypto.rewrap(t, ciphertext, req.context, signalOf(o)));
  }
}

/** `createKeyport({ providers: { vault: vaultTransit({ endpoint, auth }) } })` */
export function vaultTransit(options: VaultTransitOptions): VaultTransitProvider {
  return new VaultTransitProvider(options);
}

/** The portable half was once a class of its own; both names are this one driver now. */
export const TransitKmsProvider = VaultTransitProvider;
export type TransitKmsProvider = VaultTransitProvider;
