/**
 * `LocalProvider`: the KmsProvider over one keystore file, acting as one principal.
 * Key and grant management is the owner's; other principals use keys through grants.
 */
import { randomBytes } from 'node:crypto';
import {
  type Capabilities,
  type CreateKeyRequest,
  type DataKeyRequest,
  type DataKeyResult,
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
  type KeyportError,
  type KeyRef,
  type KmsProvider,
  keyportError,
  type ListOptions,
  type MacResult,
  type ProviderCallOptions,
  parseBuiltInUri,
  quote,
  type RotationPolicy,
  type ScheduleDeletionRequest,
  type SigningAlgorithm,
  type SignRequest,
  type SignResult,
} from '@keyport/core';
import {
  createKeyArg,
  grantArg,
  importMaterialArg,
  importParametersArg,
  keyRefArg,
  rotationPolicyArg,
  scheduleDeletionArg,
  signalOf,
} from './arguments.js';
import { DELETION_DAYS, IMPORT_PARAMETERS_TTL_MS, LOCAL_CAPABILITIES } from './capabilities.js';
import * as calls from './crypto.js';
import { localError, PROVIDER_NAME, throwIfAborted } from './errors.js';
import { newStoredGrant, toGrant } from './grants.js';
import {
  checkImportAlgorithm,
  newImportJob,
  requireAwaitingImport,
  unwrapMaterial,
  wrappingPublicKey,
} from './import.js';
import type { KeystoreAccess, ResolvedRef } from './key-access.js';
import { checkImportedMaterial, generateMaterial } from './key-material.js';
import { addDays, addPrimaryVersion, destroyVersion, requireState, toKeyInfo } from './key-state.js';
import { newKey, rotationSchedule } from './keys.js';
import type { StoredKey } from './model.js';

export class LocalProvider implements KmsProvider {
  readonly scheme = 'local';

  parseUri(uri: string): KeyRef {
    return parseBuiltInUri('local', uri);
  }
  formatUri(ref: KeyRef): string {
    return formatBuiltInUri(ref);
  }
  readonly name = PROVIDER_NAME;
  readonly capabilities: Capabilities = LOCAL_CAPABILITIES;
  /** The opened keystore; until then (`localKeystore`), only URIs can be made (`#uris`). */
  #opened: KeystoreAccess | undefined;
  readonly #uris: KeystoreAccess;
  readonly #open: ((signal: AbortSignal | undefined) => Promise<KeystoreAccess>) | undefined;
  /** The `principal` option of `localKeystore`, when given. */
  readonly #principalOption: string | undefined;
  #opening: Promise<KeystoreAccess> | undefined;
  /** The signal of the call that started `#opening` (it governs that open). */
  #openingSignal: AbortSignal | undefined;
  #closed = false;

  /**
   * An opened keystore (`openLocalKeystore`), or — with `lazy` — one opened at the first call
   * (`localKeystore`): `access` then only makes URIs.
   */
  constructor(
    access: KeystoreAccess,
    lazy?: {
      readonly open: (signal: AbortSignal | undefined) => Promise<KeystoreAccess>;
      readonly principal?: string | undefined;
    },
  ) {
    this.#uris = access;
    this.#open = lazy?.open;
    this.#principalOption = lazy?.principal;
    if (lazy === undefined) this.#opened = access;
  }

  get #access(): KeystoreAccess {
    if (this.#opened === undefined) throw localError('Internal', 'the keystore is not open yet');
    return this.#opened;
  }

  /**
   * Opens the keystore once, at the first call (shared by concurrent first calls). A failed open
   * (wrong passphrase, lock timeout) is not remembered: the next call tries again. The open runs
   * under the signal of the call that started it; when that signal fires, the calls that joined
   * it open again under their own instead of failing with another call's Aborted.
   */
  async #ready(o: { signal?: AbortSignal } | undefined): Promise<void> {
    for (;;) {
      if (this.#opened !== undefined) return;
      const startedWith = this.#opening === undefined ? o?.signal : this.#openingSignal;
      try {
        await this.#openOnce(o);
        return;
      } catch (error) {
        // The shared open ran under another caller's signal, which fired: that caller's abort
        // (or deadline) is not this call's failure, so open again under this call's own signal.
        if (startedWith !== o?.signal && startedWith?.aborted === true && o?.signal?.aborted !== true) {
          continue;
        }
        throw error;
      }
    }
  }

  async #openOnce(o: { signal?: AbortSignal } | undefined): Promise<void> {
    if (this.#closed) throw localError('Unavailable', 'the local keystore provider is closed');
    const open = this.#open;
    if (open === undefined) return;
    if (this.#opening === undefined) this.#openingSignal = o?.signal;
    this.#opening ??= open(o?.signal).then(
      (access) => {
        if (this.#closed) {
          access.file.close();
          throw localError('Unavailable', 'the local keystore provider is closed');
        }
        this.#opened = access;
        return access;
      },
      (error: unknown) => {
        this.#opening = undefined;
        throw error;
      },
    );
    await this.#opening;
  }

  /**
   * The principal this provider acts as. With `localKeystore` and no `principal` option it is
   * the keystore's owner, known once the first call has opened the file.
   */
  get principal(): string {
    const principal = this.#opened?.principal ?? this.#principalOption;
    if (principal === undefined)
      throw localError(
        'KeyStateConflict',
        'the principal (the keystore owner) is known after the first call',
      );
    return principal;
  }

  /** The URI of the key `name` in this keystore. */
  keyUri(name: string, version?: string): string {
    return this.#uris.uriOf(name, version === undefined ? undefined : this.#uris.versionNumber(version));
  }

  #info(key: StoredKey, now: Date): KeyInfo {
    return toKeyInfo(key, this.#access.uriOf(key.name), now);
  }

  // ------------------------------------------------------------------ keys and lifecycle

  async createKey(request: CreateKeyRequest, o: ProviderCallOptions): Promise<KeyInfo> {
    await this.#ready(o);
    const req = createKeyArg(request);
    const uri = req.name.includes('://') ? req.name : this.#access.uriOf(req.name);
    const ref = this.#access.resolve({ uri });
    if (ref.version !== undefined)
      throw localError('InvalidArgument', 'a new key cannot name a version', uri);
    const body = await this.#access.readAsOwner(signalOf(o), 'create keys', ref.uri);
    const draft = newKey(req, ref, this.#access.now());
    if (body.keys.some((k) => k.name === ref.name)) {
      throw localError('AlreadyExists', `a key named ${quote(ref.name)} already exists`, ref.uri);
    }
    const material =
      draft.origin === 'provider' ? await generateMaterial(draft.spec, signalOf(o)) : undefined;
    try {
      return await this.#access.mutate(
        signalOf(o),
        'create keys',
        (b, now) => {
          if (b.keys.some((k) => k.name === ref.name)) {
            throw localError('AlreadyExists', `a key named ${quote(ref.name)} already exists`, ref.uri);
          }
          const key: StoredKey = { ...draft, createdAt: now.toISOString() };
          if (material !== undefined) addPrimaryVersion(key, material.toString('base64'), now);
          b.keys.push(key);
          return this.#info(key, now);
        },
        ref.uri,
      );
    } finally {
      material?.fill(0);
    }
  }

  async describeKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    await this.#ready(o);
    const use = await this.#access.useKey(ref, signalOf(o), 'describe');
    return this.#info(use.key, use.now);
  }

  /** The owner sees every key; another principal sees the keys it holds a live `describe` grant on. */
  async *listKeys(o: ListOptions): AsyncIterable<KeyInfo> {
    await this.#ready(o);
    throwIfAborted(signalOf(o));
    const body = await this.#access.file.read(signalOf(o));
    const now = this.#access.now();
    const me = this.#access.principal;
    for (const key of body.keys) {
      throwIfAborted(signalOf(o));
      const visible =
        me === body.owner ||
        key.grants.some(
          (g) =>
            g.grantee === me &&
            g.operations.includes('describe') &&
            (g.expiresAt === undefined || now < new Date(g.expiresAt)),
        );
      if (visible) yield this.#info(key, now);
    }
  }

  async #change(
    keyRef: KeyRef,
    o: ProviderCallOptions,
    what: string,
    change: (key: StoredKey, now: Date, ref: ResolvedRef) => void,
  ): Promise<KeyInfo> {
    await this.#ready(o);
    const ref = this.#access.resolve(keyRef);
    return this.#access.mutateKey(ref, signalOf(o), what, (key, now) => {
      change(key, now, ref);
      return this.#info(key, now);
    });
  }

  async rotateKey(keyRef: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    await this.#ready(o);
    const ref = this.#access.resolve(keyRef);
    const body = await this.#access.readAsOwner(signalOf(o), 'rotate keys', ref.uri);
    const seen = body.keys.find((k) => k.name === ref.name);
    if (seen === undefined)
      throw localError('NotFound', `no key named ${quote(ref.name)} in this keystore`, ref.uri);
    if (seen.origin === 'external') {
      throw keyportError(
        'Unsupported',
        'keys with imported material are rotated by importing into a new key',
        {
          provider: PROVIDER_NAME,
          keyUri: ref.uri,
          capability: 'rotation',
        },
      );
    }
    requireState(seen, this.#access.now(), ['enabled'], ref.uri, 'rotateKey');
    const material = await generateMaterial(seen.spec, signalOf(o));
    try {
      return await this.#change(keyRef, o, 'rotate keys', (key, now) => {
        requireState(key, now, ['enabled'], ref.uri, 'rotateKey');
        addPrimaryVersion(key, material.toString('base64'), now, ref.uri);
      });
    } finally {
      material.fill(0);
    }
  }

  async setRotationPolicy(keyRef: KeyRef, given: RotationPolicy, o: ProviderCallOptions): Promise<KeyInfo> {
    await this.#ready(o);
    const policy = rotationPolicyArg(given, keyRefArg(keyRef).uri);
    return this.#change(keyRef, o, 'set rotation policies', (key, now, ref) => {
      requireState(key, now, ['enabled', 'disabled'], ref.uri, 'setRotationPolicy');
      const schedule = rotationSchedule(policy, key.origin, now, ref.uri);
      delete key.rotationPeriodDays;
      delete key.nextRotationAt;
      Object.assign(key, schedule);
    });
  }

  async enableKey(keyRef: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    await this.#ready(o);
    return this.#change(keyRef, o, 'enable keys', (key, now, ref) => {
      requireState(key, now, ['enabled', 'disabled'], ref.uri, 'enableKey');
      key.state = 'enabled';
    });
  }

  async disableKey(keyRef: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    await this.#ready(o);
    return this.#change(keyRef, o, 'disable keys', (key, now, ref) => {
      requireState(key, now, ['enabled', 'disabled'], ref.uri, 'disableKey');
      key.state = 'disabled';
    });
  }

  async scheduleKeyDeletion(
    keyRef: KeyRef,
    given: ScheduleDeletionRequest,
    o: ProviderCallOptions,
  ): Promise<KeyInfo> {
    await this.#ready(o);
    const req = scheduleDeletionArg(given, keyRefArg(keyRef).uri);
    const days = req.days ?? DELETION_DAYS.default;
    if (!Number.isInteger(days) || days < DELETION_DAYS.min || days > DELETION_DAYS.max) {
      throw localError(
        'InvalidArgument',
        `deletion waiting period must be ${DELETION_DAYS.min}-${DELETION_DAYS.max} whole days`,
        keyRefArg(keyRef).uri,
      );
    }
    return this.#change(keyRef, o, 'schedule key deletion', (key, now, ref) => {
      requireState(key, now, ['enabled', 'disabled', 'pending_import'], ref.uri, 'scheduleKeyDeletion');
      key.state = 'pending_deletion';
      key.deletionDate = addDays(now, days).toISOString();
    });
  }

  /** As AWS KMS does, a cancelled deletion leaves the key disabled: enable it deliberately. */
  async cancelKeyDeletion(keyRef: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    await this.#ready(o);
    return this.#change(keyRef, o, 'cancel key deletion', (key, now, ref) => {
      requireState(key, now, ['pending_deletion'], ref.uri, 'cancelKeyDeletion');
      key.state = key.primaryVersion === 0 ? 'pending_import' : 'disabled';
      delete key.deletionDate;
    });
  }

  async destroyKeyVersion(keyRef: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    await this.#ready(o);
    return this.#change(keyRef, o, 'destroy key versions', (key, now, ref) => {
      if (ref.version === undefined)
        throw localError('InvalidArgument', 'destroyKeyVersion needs a version', ref.uri);
      requireState(key, now, ['enabled', 'disabled'], ref.uri, 'destroyKeyVersion');
      const version = key.versions.find((v) => v.version === ref.version);
      if (version === undefined)
        throw localError('NotFound', `key version ${ref.version} does not exist`, ref.uri);
      if (version.version === key.primaryVersion) {
        throw localError(
          'KeyStateConflict',
          'the primary version cannot be destroyed; rotate first',
          ref.uri,
        );
      }
      if (version.state === 'destroyed') {
        throw localError('KeyStateConflict', `key version ${ref.version} is already destroyed`, ref.uri);
      }
      destroyVersion(version, now);
    });
  }

  // ------------------------------------------------------------------ cryptography

  async encrypt(
    ref: KeyRef,
    plaintext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<EncryptResult> {
    await this.#ready(o);
    return calls.encrypt(this.#access, ref, plaintext, req, signalOf(o));
  }

  async decrypt(
    ref: KeyRef,
    ciphertext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<DecryptResult> {
    await this.#ready(o);
    return calls.decrypt(this.#access, ref, ciphertext, req, signalOf(o));
  }

  async generateDataKey(ref: KeyRef, req: DataKeyRequest, o: ProviderCallOptions): Promise<DataKeyResult> {
    await this.#ready(o);
    return calls.generateDataKey(this.#access, ref, req, signalOf(o));
  }

  async sign(
    ref: KeyRef,
    message: Uint8Array,
    req: SignRequest,
    o: ProviderCallOptions,
  ): Promise<SignResult> {
    await this.#ready(o);
    return calls.sign(this.#access, ref, message, req, signalOf(o));
  }

  async verify(
    ref: KeyRef,
    message: Uint8Array,
    signature: Uint8Array,
    req: SignRequest & { algorithm: SigningAlgorithm },
    o: ProviderCallOptions,
  ): Promise<boolean> {
    await this.#ready(o);
    return calls.verify(this.#access, ref, message, signature, req, signalOf(o));
  }

  async mac(ref: KeyRef, message: Uint8Array, o: ProviderCallOptions): Promise<MacResult> {
    await this.#ready(o);
    return calls.mac(this.#access, ref, message, signalOf(o));
  }

  async verifyMac(
    ref: KeyRef,
    message: Uint8Array,
    mac: Uint8Array,
    o: ProviderCallOptions,
  ): Promise<boolean> {
    await this.#ready(o);
    return calls.verifyMac(this.#access, ref, message, mac, signalOf(o));
  }

  /** Not part of KmsProvider: the SPKI DER public key of an RSA or EC key version. */
  async getPublicKey(ref: KeyRef, o: ProviderCallOptions): Promise<Uint8Array> {
    await this.#ready(o);
    return calls.getPublicKey(this.#access, ref, signalOf(o));
  }

  // ------------------------------------------------------------------ grants

  async createGrant(keyRef: KeyRef, given: GrantRequest, o: ProviderCallOptions): Promise<Grant> {
    await this.#ready(o);
    const ref = this.#access.resolve(keyRef);
    const req = grantArg(given, ref.uri);
    return this.#access.mutateKey(ref, signalOf(o), 'create grants', (key, now) => {
      requireState(key, now, ['enabled', 'disabled', 'pending_import'], ref.uri, 'createGrant');
      const grant = newStoredGrant(key, req, randomBytes(16).toString('hex'), now, ref.uri);
      key.grants.push(grant);
      return toGrant(grant, ref.uri);
    });
  }

  /** Live grants only: expired grants no longer exist (they are dropped on the next write). */
  async *listGrants(keyRef: KeyRef, o: ListOptions): AsyncIterable<Grant> {
    await this.#ready(o);
    const ref = this.#access.resolve(keyRef);
    const body = await this.#access.readAsOwner(signalOf(o), 'list grants', ref.uri);
    const key = body.keys.find((k) => k.name === ref.name);
    if (key === undefined)
      throw localError('NotFound', `no key named ${quote(ref.name)} in this keystore`, ref.uri);
    const now = this.#access.now();
    for (const g of key.grants) {
      throwIfAborted(signalOf(o), ref.uri);
      if (g.expiresAt === undefined || now < new Date(g.expiresAt)) yield toGrant(g, ref.uri);
    }
  }

  async revokeGrant(keyRef: KeyRef, grantId: string, o: ProviderCallOptions): Promise<void> {
    await this.#ready(o);
    const ref = this.#access.resolve(keyRef);
    if (typeof grantId !== 'string' || grantId.length === 0 || grantId.length > 1024) {
      throw localError('InvalidArgument', 'grantId: expected a grant id string', ref.uri);
    }
    await this.#access.mutateKey(ref, signalOf(o), 'revoke grants', (key) => {
      const before = key.grants.length;
      key.grants = key.grants.filter((g) => g.id !== grantId);
      if (key.grants.length === before) throw localError('NotFound', 'no such grant on this key', ref.uri);
    });
  }

  // ------------------------------------------------------------------ import (BYOK)

  async getImportParameters(
    keyRef: KeyRef,
    given: ImportParametersRequest,
    o: ProviderCallOptions,
  ): Promise<ImportParameters> {
    await this.#ready(o);
    const req = importParametersArg(given, keyRefArg(keyRef).uri);
    const algorithm = req.algorithm ?? 'RSAES_OAEP_SHA_256';
    checkImportAlgorithm(algorithm, keyRefArg(keyRef).uri);
    const ref = this.#access.resolve(keyRef);
    await this.#access.readAsOwner(signalOf(o), 'import key material', ref.uri);
    const job = await newImportJob(
      addDays(this.#access.now(), IMPORT_PARAMETERS_TTL_MS / 86_400_000),
      algorithm,
    );
    return this.#access.mutateKey(ref, signalOf(o), 'import key material', (key, now) => {
      requireAwaitingImport(key, now, ref.uri);
      key.importJob = job;
      return {
        keyUri: ref.uri,
        algorithm,
        wrappingPublicKey: wrappingPublicKey(job),
        importToken: Buffer.from(job.token, 'base64'),
        expiresAt: new Date(job.expiresAt),
      };
    });
  }

  async importKeyMaterial(
    keyRef: KeyRef,
    given: ImportKeyMaterialRequest,
    o: ProviderCallOptions,
  ): Promise<KeyInfo> {
    await this.#ready(o);
    const req = importMaterialArg(given, keyRefArg(keyRef).uri);
    checkImportAlgorithm(req.algorithm, keyRefArg(keyRef).uri);
    if (req.expiresAt !== undefined) {
      throw keyportError('Unsupported', 'imported material cannot expire in the local keystore', {
        provider: PROVIDER_NAME,
        keyUri: keyRefArg(keyRef).uri,
        capability: 'importExpiry',
      });
    }
    return this.#change(keyRef, o, 'import key material', (key, now, ref) => {
      requireAwaitingImport(key, now, ref.uri);
      if (key.importJob === undefined) {
        throw localError(
          'KeyStateConflict',
          'no import parameters issued; call getImportParameters first',
          ref.uri,
        );
      }
      const material = unwrapMaterial(
        key.importJob,
        req.algorithm,
        req.wrappedMaterial,
        req.importToken,
        now,
        ref.uri,
      );
      try {
        checkImportedMaterial(key.spec, material, ref.uri);
        const version = key.versions.find((v) => v.state === 'pending_import');
        if (version === undefined) throw localError('Internal', 'pending import version missing', ref.uri);
        version.material = material.toString('base64');
        version.state = 'enabled';
        key.primaryVersion = version.version;
        key.state = 'enabled';
        delete key.importJob;
      } finally {
        material.fill(0);
      }
    });
  }

  /**
   * The local provider throws KeyportErrors itself; anything else (a file-system surprise) is
   * left to core's classification.
   */
  mapError(_error: unknown): KeyportError | undefined {
    return undefined;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#uris.file.close(); // the same file object as the opened access's
  }
}
