/**
 * The PKCS#11 driver: `pkcs11(options)` over any PKCS#11 v2.40 module through pkcs11js. Building
 * it is synchronous (module load, C_Initialize, token lookup, mechanism discovery) so capabilities
 * are known up front; the PIN is read and C_Login runs at the first call (once, shared by every
 * session). Key lifecycle is in keys.ts, cryptography in crypto.ts, BYOK in import.ts; this file
 * routes calls, resolves key URIs and caches keys.
 */
import { endianness } from 'node:os';
import {
  type Capabilities,
  type CreateKeyRequest,
  checkImportKeyMaterialRequest,
  checkImportParametersRequest,
  checkInteger,
  type DataKeyRequest,
  type DataKeyResult,
  type DecryptResult,
  type EncryptRequest,
  type EncryptResult,
  formatBuiltInUri,
  formatKeyUri,
  type ImportKeyMaterialRequest,
  type ImportParameters,
  type ImportParametersRequest,
  type KeyInfo,
  KeyportError,
  type KeyRef,
  type KmsProvider,
  type ListOptions,
  type MacResult,
  type ProviderCallOptions,
  parseBuiltInUri,
  parseKeyUri,
  pkcs11Attribute,
  type SigningAlgorithm,
  type SignRequest,
  type SignResult,
  type UnmodeledKey,
} from '@keyport/core';
import {
  bytesArg,
  labelled,
  listArg,
  nameArg,
  refArg,
  requestArg,
  signArg,
  signalArg,
  uriArg,
} from './arguments.js';
import { computeCapabilities, type OaepHash, readModuleOffer } from './capabilities.js';
import * as calls from './crypto.js';
import { mapPkcs11Error, PROVIDER_NAME } from './errors.js';
import * as byok from './import.js';
import { type KeyAccess, staleKeySuspect, type Target } from './key-access.js';
import { type ResolvedKey, resolveKey } from './key-store.js';
import * as lifecycle from './keys.js';
import { acquireModule, type LoadedModule, reinitializeIfSole, releaseModule } from './module-registry.js';
import { versionOfId } from './objects.js';
import {
  checkProviderOptions,
  type Pkcs11Options,
  type Pkcs11ProviderOptions,
  poolSize,
  type TokenSessionCounts,
} from './options.js';
import type { Handle, Pkcs11 } from './p11.js';
import { ckrOf, P } from './p11.js';
import { checkSignal, SessionPool } from './session-pool.js';
import { lockToken, type TokenLockTarget } from './token-lock.js';

export type Pkcs11CreateKeyRequest = CreateKeyRequest & {
  /** Create the key CKA_EXTRACTABLE (still CKA_SENSITIVE) so `wrapKeyForExport` can wrap it out. */
  readonly exportable?: boolean;
};

const HANDLE_GONE = new Set([P.CKR_OBJECT_HANDLE_INVALID, P.CKR_KEY_HANDLE_INVALID]);

/** Token lookups (below) before "no slot holds the configured token". */
const TOKEN_LOOKUP_ATTEMPTS = 5;

/**
 * The token's slot. Looked up again, with a jittered pause (10–30 ms times the attempt; it
 * blocks, the constructor being synchronous), when C_GetTokenInfo answers CKR_GENERAL_ERROR or no
 * slot matches: SoftHSM2 2.6.1 answers the first, or a blank label, when another process's
 * C_Login is rewriting the token's `token.object` at that moment — getTokenFlags (Token.cpp:480-484)
 * or getTokenLabel (OSToken.cpp:245, whose failure Token.cpp:486 ignores) reads the file empty
 * (why: session-pool.ts, LOGIN_ATTEMPTS). It only reads. When no slot matches, `reload` runs
 * before the next look (the provider re-initialises a module it alone uses): a token SoftHSM2 read
 * empty at C_Initialize is left out of its slot list until the next initialisation.
 */
export function findSlot(
  p11: Pkcs11,
  token: Pkcs11ProviderOptions['token'],
  reload: () => void = () => undefined,
): FoundToken {
  for (let attempt = 1; ; attempt++) {
    let missing = false;
    try {
      const found = scanSlots(p11, token);
      if (found !== undefined || attempt >= TOKEN_LOOKUP_ATTEMPTS) return found ?? noSlot();
      missing = true;
    } catch (e) {
      if (ckrOf(e) !== P.CKR_GENERAL_ERROR || attempt >= TOKEN_LOOKUP_ATTEMPTS) throw e;
    }
    Atomics.wait(
      new Int32Array(new SharedArrayBuffer(4)),
      0,
      0,
      attempt * (10 + Math.floor(Math.random() * 21)),
    );
    // Only a slot list without the token is rebuilt: a CKR_GENERAL_ERROR is a read of the token
    // caught mid-rewrite, which the next C_GetTokenInfo reads whole (an initialisation then would
    // read every token again, during the same logins).
    if (missing) reload();
  }
}

function noSlot(): never {
  throw new KeyportError('Unavailable', 'no slot holds the configured token', {
    provider: PROVIDER_NAME,
    retryable: false,
  });
}

interface FoundToken {
  readonly slot: Handle;
  readonly label: string;
  readonly serial: string;
  readonly info: TokenSessionCounts;
}

function scanSlots(p11: Pkcs11, token: Pkcs11ProviderOptions['token']): FoundToken | undefined {
  if (token.label === undefined && token.serial === undefined) {
    throw new KeyportError('InvalidArgument', 'choose the token by label or serial', {
      provider: PROVIDER_NAME,
    });
  }
  for (const slot of p11.C_GetSlotList(true)) {
    const info = p11.C_GetTokenInfo(slot);
    const label = info.label.trimEnd();
    if (token.label !== undefined && label !== token.label) continue;
    if (token.serial !== undefined && info.serialNumber.trimEnd() !== token.serial) continue;
    return { slot, label, serial: info.serialNumber.trimEnd(), info };
  }
  return undefined;
}

/** A CK_UTF8CHAR field of the module's answer, without its blank padding; undefined when it gave none. */
const padded = (value: unknown): string | undefined =>
  typeof value === 'string' ? value.trimEnd() : undefined;

/** A CK_VERSION as RFC 7512 writes it ("2.6"); undefined when the module gave none. */
function versionText(value: unknown): string | undefined {
  const v = value as { major?: unknown; minor?: unknown } | undefined;
  return typeof v?.major === 'number' && typeof v.minor === 'number' ? `${v.major}.${v.minor}` : undefined;
}

/** The CK_SLOT_ID a pkcs11js slot handle holds (a native CK_ULONG), in decimal. */
function slotIdText(slot: Handle): string | undefined {
  const le = endianness() === 'LE';
  if (slot.length === 8) return String(le ? slot.readBigUInt64LE() : slot.readBigUInt64BE());
  if (slot.length === 4) return String(le ? slot.readUInt32LE() : slot.readUInt32BE());
  return undefined;
}

/** Reads a module answer that only URIs naming the module or slot need: unknown when it fails. */
function tryRead<T>(read: () => T): Partial<T> {
  try {
    return read();
  } catch {
    return {};
  }
}

/**
 * What each RFC 7512 path attribute that says where a key is (every one but object=, type=, id=
 * and x-version=) is for this provider: its token, that token's slot and the module. A URI is for
 * the objects that match all its attributes, so one naming another serial, model or slot is
 * another token's key, not this token's key of the same label. Read once, when the provider is
 * built; undefined where the module does not say (a URI naming it then matches nothing).
 */
function identityOf(p11: Pkcs11, found: FoundToken): ReadonlyMap<string, string | undefined> {
  const token = found.info as Partial<Record<'manufacturerID' | 'model', unknown>>;
  const library = tryRead(() => p11.C_GetInfo());
  const slot = tryRead(() => p11.C_GetSlotInfo(found.slot));
  return new Map([
    ['token', found.label],
    ['serial', found.serial],
    ['manufacturer', padded(token.manufacturerID)],
    ['model', padded(token.model)],
    ['slot-id', slotIdText(found.slot)],
    ['slot-description', padded(slot.slotDescription)],
    ['slot-manufacturer', padded(slot.manufacturerID)],
    ['library-manufacturer', padded(library.manufacturerID)],
    ['library-description', padded(library.libraryDescription)],
    ['library-version', versionText(library.libraryVersion)],
  ]);
}

/** A URI attribute's value as `identityOf` writes it (RFC 7512 values are compared as written). */
function uriIdentityValue(name: string, value: string): string | undefined {
  if (name === 'slot-id') return /^[0-9]{1,20}$/.test(value) ? String(BigInt(value)) : undefined;
  if (name === 'library-version') {
    const m = /^([0-9]{1,3})(?:\.([0-9]{1,3}))?$/.exec(value);
    return m === null ? undefined : `${Number(m[1])}.${Number(m[2] ?? 0)}`;
  }
  // Module fields are blank-padded; a URI may carry the padding or not.
  return value.trimEnd();
}

export class Pkcs11Provider implements KmsProvider, KeyAccess {
  readonly scheme = 'pkcs11';

  parseUri(uri: string): KeyRef {
    try {
      return parseBuiltInUri('pkcs11', uriArg(uri));
    } catch (e) {
      throw labelled(e, PROVIDER_NAME);
    }
  }
  formatUri(ref: KeyRef): string {
    try {
      return formatBuiltInUri(refArg(ref));
    } catch (e) {
      throw labelled(e, PROVIDER_NAME);
    }
  }
  readonly name: string;
  readonly capabilities: Capabilities;
  /** The token's label, as written in key URIs. */
  readonly tokenLabel: string;
  /** The OAEP hash RSA encryption uses (SHA-256 where the module accepts it). */
  readonly oaepHash: OaepHash | undefined;
  readonly oaepHashes: readonly OaepHash[];
  readonly pool: SessionPool;
  private readonly module: LoadedModule;
  private readonly keyCacheMs: number;
  private readonly cache = new Map<string, { at: number; key: ResolvedKey }>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly lockTarget: TokenLockTarget;
  /** Where this provider's keys are, by RFC 7512 attribute (see identityOf). */
  private readonly identity: ReadonlyMap<string, string | undefined>;
  private closing: Promise<void> | undefined;

  constructor(given: Pkcs11ProviderOptions) {
    const options = checkProviderOptions(given);
    this.name = options.name ?? PROVIDER_NAME;
    this.keyCacheMs = options.keyCacheMs ?? 1000;
    this.module = acquireModule(options.modulePath);
    try {
      const found = findSlot(this.p11, options.token, () => {
        reinitializeIfSole(this.module);
      });
      const { slot, label, serial, info } = found;
      this.identity = identityOf(this.p11, found);
      // Checked before anything else runs on the token: a maxSessions the token cannot give fails here.
      const maxSessions = poolSize(options.maxSessions, info);
      this.tokenLabel = label;
      this.lockTarget = {
        directory: options.lockDirectory,
        modulePath: this.module.path,
        tokenSerial: serial,
        tokenLabel: label,
        provider: this.name,
      };
      const offer = readModuleOffer(this.p11, slot, options.oaepHashes);
      this.oaepHashes = offer.oaepHashes;
      this.oaepHash = this.oaepHashes.includes('sha256') ? 'sha256' : this.oaepHashes[0];
      this.capabilities = computeCapabilities(offer);
      this.pool = new SessionPool(this.p11, slot, options.pin, maxSessions);
    } catch (e) {
      releaseModule(this.module);
      throw mapPkcs11Error(e) ?? e;
    }
  }

  /** Constructs and logs in once, so a wrong PIN fails here rather than at the first call. */
  static async open(options: Pkcs11ProviderOptions, signal?: AbortSignal): Promise<Pkcs11Provider> {
    const provider = new Pkcs11Provider(options);
    try {
      await provider.pool.run(signal, () => undefined);
    } catch (e) {
      await provider.close();
      throw mapPkcs11Error(e) ?? e;
    }
    return provider;
  }

  get p11(): Pkcs11 {
    return this.module.p11;
  }

  mapError(error: unknown): KeyportError | undefined {
    return mapPkcs11Error(error);
  }

  // ------------------------------------------------------------------ URIs and key access

  uriFor(name: string, version?: number): string {
    if (
      typeof name !== 'string' ||
      name === '' ||
      (version !== undefined && !Number.isSafeInteger(version))
    ) {
      try {
        nameArg(name);
        checkInteger(version, 'version', 1, 2 ** 32 - 1);
      } catch (e) {
        throw labelled(e, PROVIDER_NAME);
      }
    }
    return formatKeyUri({
      scheme: 'pkcs11',
      attributes: [
        ['token', this.tokenLabel],
        ['object', name],
      ],
      query: [],
      ...(version !== undefined ? { version: String(version) } : {}),
    });
  }

  /** Parsed key references, by URI and by version + URI (URI parsing is the costliest step of a cached call). */
  private readonly targets = new Map<string, Target>();

  target(ref: KeyRef): Target {
    const cacheKey = ref.version === undefined ? ref.uri : `${ref.version}\u0000${ref.uri}`;
    const known = this.targets.get(cacheKey);
    if (known !== undefined) return known;
    const parsed = this.parseTarget(ref);
    if (this.targets.size >= 1024) this.targets.clear();
    this.targets.set(cacheKey, parsed);
    return parsed;
  }

  private parseTarget(ref: KeyRef): Target {
    const parsed = parseKeyUri(ref.uri);
    const bad = (why: string) =>
      new KeyportError('InvalidArgument', why, { provider: this.name, keyUri: ref.uri });
    if (parsed.scheme !== 'pkcs11') throw bad('not a pkcs11: key URI');
    for (const [attribute, value] of parsed.attributes) {
      if (!this.identity.has(attribute)) continue; // object=, type=
      const ours = this.identity.get(attribute);
      if (ours === undefined || uriIdentityValue(attribute, value) !== ours) {
        const what = attribute.startsWith('slot-')
          ? 'slot'
          : attribute.startsWith('library-')
            ? 'module'
            : 'token';
        throw bad(
          attribute === 'token'
            ? 'the URI names another token than this provider serves'
            : `the URI's ${attribute}= names another ${what} than this provider serves`,
        );
      }
    }
    const name = pkcs11Attribute(parsed, 'object');
    if (name === undefined || name === '') throw bad('keyport addresses PKCS#11 keys by object= (CKA_LABEL)');
    const fromId = parsed.id === undefined ? undefined : versionOfId(parsed.id);
    if (parsed.id !== undefined && fromId === undefined)
      throw bad('id= is not a keyport version id (see README)');
    // Two ways of naming the version that disagree are ambiguous: refused, not one picked. (Core
    // writes x-version beside an id= it was given, so the two agreeing is accepted.)
    const named = [ref.version, parsed.version, fromId === undefined ? undefined : String(fromId)];
    const given = named.filter((v) => v !== undefined);
    if (!given.every((v) => typeof v === 'string' && /^[1-9][0-9]{0,9}$/.test(v)))
      throw bad('versions are positive integers');
    if (given.some((v) => v !== given[0]))
      throw bad('the version is named twice, differently (x-version=, id= or the version field): give one');
    const raw = given[0];
    return { name, uri: this.uriFor(name), ...(raw !== undefined ? { version: Number(raw) } : {}) };
  }

  /**
   * Runs `fn` with a session and the resolved key, reusing a recently resolved key (its version
   * objects' handles) unless `fresh`. A cached key that turns out stale — a handle the token no
   * longer knows, or a newer version than it listed (another process rotated) — is resolved again
   * and `fn` runs once more, on the same session: whether `fn` threw at once (its checks and
   * C_*Init run before its first await) or its promise rejected (an async `fn`, whose throws
   * arrive as rejections). Only reads and cryptographic operations take the cached path (writers
   * pass `fresh`), so running one again is safe.
   */
  withKey<T>(
    ref: KeyRef,
    signal: AbortSignal | undefined,
    fn: (session: Handle, key: ResolvedKey, target: Target) => Promise<T>,
    fresh = false,
  ): Promise<T> {
    let target: Target;
    try {
      target = this.target(ref);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.pool.run(signal, (session) => {
      const cached = fresh ? undefined : this.cache.get(target.name);
      if (cached === undefined || Date.now() - cached.at > this.keyCacheMs)
        return this.resolveAndRun(session, target, signal, fn);
      const again = (e: unknown): Promise<T> => {
        const code = ckrOf(e);
        if (code !== undefined ? !HANDLE_GONE.has(code) : !staleKeySuspect(e)) throw e;
        this.cache.delete(target.name);
        return this.resolveAndRun(session, target, signal, fn);
      };
      let run: Promise<T>;
      try {
        run = fn(session, cached.key, target);
      } catch (e) {
        return again(e);
      }
      return run.catch(again);
    });
  }

  private resolveAndRun<T>(
    session: Handle,
    target: Target,
    signal: AbortSignal | undefined,
    fn: (session: Handle, key: ResolvedKey, target: Target) => Promise<T>,
  ): Promise<T> {
    const key = resolveKey(this.p11, session, target.name, target.uri);
    if (this.keyCacheMs > 0) this.cache.set(target.name, { at: Date.now(), key });
    checkSignal(signal); // between the lookup and the operation
    return fn(session, key, target);
  }

  invalidate(name: string): void {
    this.cache.delete(name);
  }

  /**
   * Serialises writers of one key in this process (metadata is replaced, not updated in place),
   * and writers of the token across this host's processes (token-lock.ts). The lock is taken
   * before a session is borrowed: a writer waiting for it holds none.
   */
  async exclusive<T>(name: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    const locked = async (): Promise<T> => {
      const lock = await lockToken(this.lockTarget, signal);
      try {
        return await fn();
      } finally {
        await lock.release();
      }
    };
    const before = this.locks.get(name) ?? Promise.resolve();
    const run = before.then(locked, locked);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(name, settled);
    try {
      return await run;
    } finally {
      this.invalidate(name);
      if (this.locks.get(name) === settled) this.locks.delete(name);
    }
  }

  // ------------------------------------------------------------------ keys and lifecycle

  // Every public method checks its arguments first (arguments.ts): a few type tests when they
  // are well-formed (core's Keyport path), InvalidArgument naming the argument when not.

  createKey(req: Pkcs11CreateKeyRequest, o: ProviderCallOptions): Promise<KeyInfo> {
    // The request's own check (core's, plus `exportable`) is in keys.ts.
    return this.checked(() => lifecycle.createKey(this, req, signalArg(o)));
  }
  describeKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return this.checked(() => lifecycle.describeKey(this, refArg(ref), signalArg(o)));
  }
  listKeys(o: ListOptions): AsyncIterable<KeyInfo | UnmodeledKey> {
    return this.listing(o);
  }
  private async *listing(o: unknown): AsyncIterable<KeyInfo | UnmodeledKey> {
    let signal: AbortSignal | undefined;
    try {
      signal = listArg(o);
    } catch (e) {
      throw labelled(e, this.name);
    }
    yield* lifecycle.listKeys(this, signal);
  }
  rotateKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return this.checked(() => lifecycle.rotateKey(this, refArg(ref), signalArg(o)));
  }
  enableKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return this.checked(() => lifecycle.setEnabled(this, refArg(ref), true, signalArg(o)));
  }
  disableKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return this.checked(() => lifecycle.setEnabled(this, refArg(ref), false, signalArg(o)));
  }
  destroyKeyVersion(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    return this.checked(() => lifecycle.destroyKeyVersion(this, refArg(ref), signalArg(o)));
  }
  // ------------------------------------------------------------------ cryptography (crypto.ts)

  encrypt(
    ref: KeyRef,
    plaintext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<EncryptResult> {
    return this.checked(() =>
      calls.encrypt(
        this,
        refArg(ref),
        bytesArg(plaintext, 'plaintext'),
        requestArg(req, '{ context? }'),
        signalArg(o),
      ),
    );
  }
  decrypt(
    ref: KeyRef,
    ciphertext: Uint8Array,
    req: EncryptRequest,
    o: ProviderCallOptions,
  ): Promise<DecryptResult> {
    return this.checked(() =>
      calls.decrypt(
        this,
        refArg(ref),
        bytesArg(ciphertext, 'ciphertext'),
        requestArg(req, '{ context? }'),
        signalArg(o),
      ),
    );
  }
  generateDataKey(ref: KeyRef, req: DataKeyRequest, o: ProviderCallOptions): Promise<DataKeyResult> {
    return this.checked(() =>
      calls.generateDataKey(this, refArg(ref), requestArg(req, '{ bytes?, context? }'), signalArg(o)),
    );
  }
  sign(ref: KeyRef, message: Uint8Array, req: SignRequest, o: ProviderCallOptions): Promise<SignResult> {
    return this.checked(() =>
      calls.sign(this, refArg(ref), bytesArg(message, 'message'), signArg(req), signalArg(o)),
    );
  }
  verify(
    ref: KeyRef,
    message: Uint8Array,
    signature: Uint8Array,
    req: SignRequest & { algorithm: SigningAlgorithm },
    o: ProviderCallOptions,
  ): Promise<boolean> {
    return this.checked(() =>
      calls.verify(
        this,
        refArg(ref),
        bytesArg(message, 'message'),
        bytesArg(signature, 'signature'),
        signArg(req),
        signalArg(o),
      ),
    );
  }
  mac(ref: KeyRef, message: Uint8Array, o: ProviderCallOptions): Promise<MacResult> {
    return this.checked(() => calls.mac(this, refArg(ref), bytesArg(message, 'message'), signalArg(o)));
  }
  verifyMac(ref: KeyRef, message: Uint8Array, mac: Uint8Array, o: ProviderCallOptions): Promise<boolean> {
    return this.checked(() =>
      calls.verifyMac(this, refArg(ref), bytesArg(message, 'message'), bytesArg(mac, 'mac'), signalArg(o)),
    );
  }

  // ------------------------------------------------------------------ grants and BYOK

  getImportParameters(
    ref: KeyRef,
    req: ImportParametersRequest,
    o: ProviderCallOptions,
  ): Promise<ImportParameters> {
    return this.checked(() =>
      byok.getImportParameters(this, refArg(ref), checkImportParametersRequest(req), signalArg(o)),
    );
  }
  importKeyMaterial(ref: KeyRef, req: ImportKeyMaterialRequest, o: ProviderCallOptions): Promise<KeyInfo> {
    return this.checked(() =>
      byok.importKeyMaterial(this, refArg(ref), checkImportKeyMaterialRequest(req), signalArg(o)),
    );
  }

  /** Wraps an `exportable` key for import elsewhere (BYOK out of the HSM); see import.ts. */
  async wrapKeyForExport(
    ref: KeyRef,
    options: byok.WrapForExportOptions,
    o?: Partial<ProviderCallOptions>,
  ): Promise<Uint8Array> {
    // Called directly, not through Keyport: map pkcs11js errors here.
    let uri: string | undefined;
    try {
      const checked = refArg(ref);
      uri = checked.uri;
      return await byok.wrapKeyForExport(this, checked, options, signalArg(o, false));
    } catch (e) {
      throw this.directError(e, uri);
    }
  }

  /** The SPKI DER public key of an RSA or EC key version. */
  async getPublicKey(ref: KeyRef, o?: Partial<ProviderCallOptions>): Promise<Uint8Array> {
    let uri: string | undefined;
    try {
      const checked = refArg(ref);
      uri = checked.uri;
      return await byok.publicKeyOf(this, checked, signalArg(o, false));
    } catch (e) {
      throw this.directError(e, uri);
    }
  }

  /** Runs a call whose arguments `fn` checks first: a bad one is a rejection, never a throw. */
  private checked<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return fn();
    } catch (e) {
      return Promise.reject(labelled(e, this.name));
    }
  }

  /** An error of a method core never fronts: pkcs11js errors mapped, keyport's labelled. */
  private directError(e: unknown, keyUri: string | undefined): unknown {
    const details = { provider: this.name, ...(keyUri !== undefined ? { keyUri } : {}) };
    return (mapPkcs11Error(e) ?? (e instanceof KeyportError ? e : undefined))?.withDetails(details) ?? e;
  }

  // ------------------------------------------------------------------ shutdown

  /** Closes the sessions (waiting for borrowed ones) and finalises the module if this was its last user. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.pool.close();
      await this.pool.drained();
      releaseModule(this.module);
    })();
    return this.closing;
  }
}

/**
 * The driver for one token of one PKCS#11 module. Synchronous: the module is loaded and its
 * mechanisms read now; the PIN is read and the user logged in at the first call. Use
 * `Pkcs11Provider.open` to log in up front (a wrong PIN then fails there).
 */
export function pkcs11(options: Pkcs11Options): Pkcs11Provider {
  return new Pkcs11Provider(options);
}
