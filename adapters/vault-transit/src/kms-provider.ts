/**
 * The Vault / OpenBao Transit provider's portable half: keyport's KmsProvider over node-vault. One instance
 * talks to one server (`endpoint`), any number of transit mounts (named by each key URI).
 */
import {
  type Capabilities,
  type CreateKeyRequest,
  type DataKeyRequest,
  type DataKeyResult,
  type DecryptBatchItem,
  type DecryptResult,
  type EncryptBatchItem,
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
  type KeySpec,
  type KmsProvider,
  type ListOptions,
  type MacResult,
  type ProviderCallOptions,
  parseBuiltInUri,
  parseKeyUri,
  type RotationPolicy,
  type ScheduleDeletionRequest,
  type SigningAlgorithm,
  type SignRequest,
  type SignResult,
  UnsupportedError,
} from '@keyport/core';
import { type BatchItem, type BatchOutcome, decryptBatch, encryptBatch } from './batch.js';
import * as byok from './byok.js';
import { transitCapabilities } from './capabilities.js';
import * as crypto from './crypto.js';
import { mapVaultError, PROVIDER_NAME } from './errors.js';
import * as grants from './grants.js';
import { type KeyInfoExtras, keyUriOf, type TransitKeyData, TYPE_BY_SPEC, toKeyInfo } from './key-types.js';
import * as life from './lifecycle.js';
import { type ResolvedKey, resolveKey } from './locate.js';
import { MetadataStore } from './metadata.js';
import { VaultSession, type VaultTransitOptions } from './session.js';

/** Options of the batch methods: core always passes a signal; direct callers may omit it. */
export interface BatchCallOptions {
  readonly signal?: AbortSignal;
}

const never = (): AbortSignal => new AbortController().signal;

/** Core names batch items `{ plaintext }` / `{ ciphertext }`; this adapter has always taken `{ data }`. */
function asBatchItem(item: EncryptBatchItem | DecryptBatchItem | BatchItem): BatchItem {
  if ('data' in item) return item;
  const data = 'plaintext' in item ? item.plaintext : item.ciphertext;
  return item.context === undefined ? { data } : { data, context: item.context };
}

/** Key names a `hcvault://` URI can carry (core's URI grammar). */
const URI_NAME = /^[A-Za-z0-9_.-]+$/;

/** The portable contract (KmsProvider); `VaultTransitProvider` adds the transit-only extras. */
export class TransitKmsProvider implements KmsProvider {
  readonly scheme = 'hcvault';

  parseUri(uri: string): KeyRef {
    return parseBuiltInUri('hcvault', uri);
  }
  formatUri(ref: KeyRef): string {
    return formatBuiltInUri(ref);
  }
  readonly name = PROVIDER_NAME;
  readonly capabilities: Capabilities;
  readonly session: VaultSession;
  protected readonly facts = new crypto.KeyFacts();
  /** Keys announced with createKey({ external: true }) and not imported yet (this process only). */
  protected readonly pending = new Map<string, KeySpec>();
  /**
   * Labels, description and usage given at creation, as this process last saw them. With a
   * metadata store the store is authoritative; without one only the usage is kept (transit RSA
   * keys serve both usages; keyport reports the one asked for).
   */
  protected readonly extrasSeen = new Map<string, KeyInfoExtras>();
  protected readonly defaultMount: string;
  protected readonly store: MetadataStore | undefined;

  constructor(options: VaultTransitOptions) {
    this.session = new VaultSession(options);
    this.capabilities = transitCapabilities(options.flavor ?? 'vault');
    this.defaultMount = options.mount ?? 'transit';
    this.store =
      options.metadataStore === undefined
        ? undefined
        : new MetadataStore(this.session, options.metadataStore);
  }

  /** A plain hcvault:// URI is this instance's when it names this instance's server. */
  claimsUri(uri: string): boolean {
    try {
      const parsed = parseKeyUri(uri);
      return parsed.scheme === 'hcvault' && parsed.address === this.session.address;
    } catch {
      return false;
    }
  }

  protected key(ref: KeyRef): ResolvedKey {
    return resolveKey(ref, this.session.address);
  }

  /** A key for a cryptographic call: a key still waiting for its material cannot be used. */
  protected usable(ref: KeyRef): ResolvedKey {
    const key = this.key(ref);
    if (this.pending.has(`${key.mount}/${key.name}`)) {
      throw new KeyportError('KeyStateConflict', 'the key is waiting for imported material', {
        provider: PROVIDER_NAME,
        keyUri: key.uri,
      });
    }
    return key;
  }

  /** A create request's `name` may be a bare name (default mount) or a full key URI. */
  protected keyForName(name: string): ResolvedKey {
    const uri = name.startsWith('hcvault://')
      ? name
      : keyUriOf({ address: this.session.address, mount: this.defaultMount, name });
    return this.key({ uri });
  }

  protected async extras(key: ResolvedKey, signal: AbortSignal): Promise<KeyInfoExtras> {
    const id = `${key.mount}/${key.name}`;
    if (this.store === undefined) return this.extrasSeen.get(id) ?? {};
    return (await this.store.read(key, signal)) ?? {};
  }

  protected info(key: ResolvedKey, data: TransitKeyData, extras: KeyInfoExtras): KeyInfo {
    this.facts.remember(key, data);
    const info = toKeyInfo(key, data, extras);
    if (info === undefined) {
      throw new UnsupportedError('keySpec', `keyport has no key spec for transit ${data.type} keys`, {
        provider: PROVIDER_NAME,
        keyUri: key.uri,
      });
    }
    return info;
  }

  protected async describe(key: ResolvedKey, signal: AbortSignal): Promise<KeyInfo> {
    const [data, extras] = await Promise.all([
      crypto.readKey(this.session, key, signal),
      this.extras(key, signal),
    ]);
    return this.info(key, data, extras);
  }

  async close(): Promise<void> {
    this.session.close();
  }

  mapError(error: unknown): KeyportError | undefined {
    return mapVaultError(error);
  }

  /** Runs an adapter-only operation (outside core's call policy) with this adapter's error mapping. */
  protected async mapped<T>(key: ResolvedKey | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw mapVaultError(error, key?.uri) ?? error;
    }
  }

  // ---------------------------------------------------------------- keys and lifecycle

  async createKey(req: CreateKeyRequest, o: ProviderCallOptions): Promise<KeyInfo> {
    const usage = life.checkCreateRequest(req, this.store !== undefined);
    const key = this.keyForName(req.name);
    const id = `${key.mount}/${key.name}`;
    const extras: KeyInfoExtras = {
      usage,
      ...(req.labels !== undefined ? { labels: req.labels } : {}),
      ...(req.description !== undefined ? { description: req.description } : {}),
    };
    if (req.external === true) {
      if ((await life.tryReadKey(this.session, key, o.signal)) !== undefined || this.pending.has(id)) {
        throw new KeyportError('AlreadyExists', 'a transit key with this name exists', { keyUri: key.uri });
      }
      this.pending.set(id, req.spec);
    } else {
      await life.createTransitKey(
        this.session,
        key,
        TYPE_BY_SPEC[req.spec],
        { autoRotatePeriodSeconds: life.rotationSeconds(req.rotation) },
        o.signal,
      );
    }
    this.extrasSeen.set(id, extras);
    await this.store?.write(key, extras, o.signal);
    return req.external === true ? this.pendingInfo(key, req.spec, extras) : this.describe(key, o.signal);
  }

  protected pendingInfo(key: ResolvedKey, spec: KeySpec, extras: KeyInfoExtras): KeyInfo {
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
    const spec = this.pending.get(`${key.mount}/${key.name}`);
    if (spec !== undefined) return this.pendingInfo(key, spec, await this.extras(key, o.signal));
    return this.describe(key, o.signal);
  }

  /**
   * Keys of the default mount whose type core can name (chacha20 / ed25519 keys are skipped) and
   * whose name a key URI can carry.
   */
  async *listKeys(o: ListOptions): AsyncIterable<KeyInfo> {
    for await (const name of life.listKeyNames(this.session, this.defaultMount, o.signal)) {
      // Transit accepts names a key URI cannot carry; such keys exist but keyport cannot address them.
      if (!URI_NAME.test(name)) continue;
      const key = this.keyForName(name);
      const data = await life.tryReadKey(this.session, key, o.signal);
      if (data === undefined) continue; // deleted while listing
      const info = toKeyInfo(key, data, await this.extras(key, o.signal));
      if (info !== undefined) yield info;
    }
  }

  async rotateKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    const key = this.key(ref);
    await life.rotate(this.session, key, o.signal);
    return this.describe(key, o.signal);
  }

  async setRotationPolicy(ref: KeyRef, policy: RotationPolicy, o: ProviderCallOptions): Promise<KeyInfo> {
    const key = this.key(ref);
    await life.configure(
      this.session,
      key,
      { auto_rotate_period: `${life.rotationSeconds(policy)}s` },
      o.signal,
    );
    return this.describe(key, o.signal);
  }

  protected requireOpenBao(op: string, key: ResolvedKey): void {
    if (!this.capabilities.enableDisable) {
      throw new UnsupportedError(
        'enableDisable',
        `${op}: HashiCorp Vault transit has no disable (OpenBao soft-delete only)`,
        {
          provider: PROVIDER_NAME,
          keyUri: key.uri,
        },
      );
    }
  }

  async enableKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    const key = this.key(ref);
    this.requireOpenBao('enableKey', key);
    await life.setSoftDeleted(this.session, key, false, o.signal);
    return this.describe(key, o.signal);
  }

  async disableKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    const key = this.key(ref);
    this.requireOpenBao('disableKey', key);
    await life.setSoftDeleted(this.session, key, true, o.signal);
    return this.describe(key, o.signal);
  }

  async scheduleKeyDeletion(
    ref: KeyRef,
    _req?: ScheduleDeletionRequest,
    _o?: ProviderCallOptions,
  ): Promise<KeyInfo> {
    throw new UnsupportedError('scheduledDeletion', 'transit deletes keys at once; use deleteKey()', {
      provider: PROVIDER_NAME,
      keyUri: ref.uri,
    });
  }

  async cancelKeyDeletion(ref: KeyRef, _o?: ProviderCallOptions): Promise<KeyInfo> {
    return this.scheduleKeyDeletion(ref);
  }

  async destroyKeyVersion(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    const key = this.key(ref);
    await life.destroyVersion(this.session, key, o.signal);
    return this.describe({ ...key, version: undefined }, o.signal);
  }

  // ---------------------------------------------------------------- cryptography

  encrypt(
    ref: KeyRef,
    plaintext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<EncryptResult> {
    return crypto.encrypt(this.session, this.facts, this.usable(ref), plaintext, req.context, o.signal);
  }

  decrypt(
    ref: KeyRef,
    ciphertext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<DecryptResult> {
    return crypto.decrypt(this.session, this.facts, this.usable(ref), ciphertext, req.context, o.signal);
  }

  /**
   * Many encryptions in one `batch_input` request; one outcome per item, in order. Through
   * `Keyport.encryptBatch` it runs under core's call policy; called directly it maps its own errors.
   */
  async encryptBatch(
    ref: KeyRef,
    items: readonly (EncryptBatchItem | BatchItem)[],
    o: BatchCallOptions = {},
  ): Promise<Array<BatchOutcome<{ ciphertext: Uint8Array; keyVersion: string }>>> {
    const key = this.usable(ref);
    const batch = items.map(asBatchItem);
    return this.mapped(key, () => encryptBatch(this.session, this.facts, key, batch, o.signal ?? never()));
  }

  /** Many decryptions in one request; a bad item (wrong context, foreign ciphertext) fails alone. */
  async decryptBatch(
    ref: KeyRef,
    items: readonly (DecryptBatchItem | BatchItem)[],
    o: BatchCallOptions = {},
  ): Promise<Array<BatchOutcome<{ plaintext: Uint8Array; keyVersion: string }>>> {
    const key = this.usable(ref);
    const batch = items.map(asBatchItem);
    return this.mapped(key, () => decryptBatch(this.session, this.facts, key, batch, o.signal ?? never()));
  }

  generateDataKey(ref: KeyRef, req: DataKeyRequest, o: ProviderCallOptions): Promise<DataKeyResult> {
    return crypto.generateDataKey(this.session, this.facts, this.usable(ref), req, o.signal);
  }

  sign(ref: KeyRef, message: Uint8Array, req: SignRequest, o: ProviderCallOptions): Promise<SignResult> {
    return crypto.sign(this.session, this.facts, this.usable(ref), message, req, o.signal);
  }

  verify(
    ref: KeyRef,
    message: Uint8Array,
    signature: Uint8Array,
    req: SignRequest & { algorithm: SigningAlgorithm },
    o: ProviderCallOptions,
  ): Promise<boolean> {
    return crypto.verify(this.session, this.facts, this.usable(ref), message, signature, req, o.signal);
  }

  mac(ref: KeyRef, message: Uint8Array, o: ProviderCallOptions): Promise<MacResult> {
    return crypto.mac(this.session, this.facts, this.usable(ref), message, o.signal);
  }

  verifyMac(ref: KeyRef, message: Uint8Array, tag: Uint8Array, o: ProviderCallOptions): Promise<boolean> {
    return crypto.verifyMac(this.session, this.facts, this.usable(ref), message, tag, o.signal);
  }

  // ---------------------------------------------------------------- grants

  createGrant(ref: KeyRef, req: GrantRequest, o: ProviderCallOptions): Promise<Grant> {
    return grants.createGrant(this.session, this.key(ref), req, o.signal);
  }

  listGrants(ref: KeyRef, o: ListOptions): AsyncIterable<Grant> {
    return grants.listGrants(this.session, this.key(ref), o.signal);
  }

  revokeGrant(ref: KeyRef, grantId: string, o: ProviderCallOptions): Promise<void> {
    return grants.revokeGrant(this.session, this.key(ref), grantId, o.signal);
  }

  // ---------------------------------------------------------------- BYOK

  async getImportParameters(
    ref: KeyRef,
    req: ImportParametersRequest,
    o: ProviderCallOptions,
  ): Promise<ImportParameters> {
    const key = this.key(ref);
    if (req.algorithm !== undefined && !this.capabilities.import.includes(req.algorithm)) {
      throw new UnsupportedError(
        'import',
        `transit imports with ${this.capabilities.import.join(' or ')} only (not ${req.algorithm})`,
        {
          provider: PROVIDER_NAME,
          keyUri: key.uri,
        },
      );
    }
    if (!this.pending.has(`${key.mount}/${key.name}`)) {
      // Only an imported key takes more material (as a new version); generated keys never do.
      const data = await crypto.readKey(this.session, key, o.signal);
      if (data.imported_key !== true) {
        throw new KeyportError(
          'KeyStateConflict',
          'the key holds provider-generated material and takes no import',
          {
            provider: PROVIDER_NAME,
            keyUri: key.uri,
          },
        );
      }
    }
    return byok.getImportParameters(this.session, key, o.signal, req.algorithm);
  }

  async importKeyMaterial(
    ref: KeyRef,
    req: ImportKeyMaterialRequest,
    o: ProviderCallOptions,
  ): Promise<KeyInfo> {
    const key = this.key(ref);
    const id = `${key.mount}/${key.name}`;
    await byok.importKeyMaterial(this.session, key, req, this.pending.get(id), o.signal);
    this.pending.delete(id);
    return this.describe(key, o.signal);
  }
}
