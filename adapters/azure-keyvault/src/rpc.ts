/**
 * The one send path to the vaults: every request goes through `send` (KeyClient) or `sendCrypto`
 * (CryptographyClient) with the caller's AbortSignal, and nothing is mapped or retried here (core
 * maps with mapError and retries; the SDK's own retries are off). Only configured vaults are
 * reachable: a key URI naming another host is refused before any request, so a credential's
 * token never goes to a host the caller did not configure.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type * as KeysSdk from '@azure/keyvault-keys';
import type { CryptographyClient, KeyClient, KeyClientOptions, KeyVaultKey } from '@azure/keyvault-keys';
import {
  KeyportError,
  type KeyRef,
  type KeySpec,
  type ProviderCallOptions,
  parseKeyUri,
  type SharedRequest,
} from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';
import { type CheckedOptions, invalid, type TokenCredential, type Vault } from './options.js';
import { identitySdk, keysSdk } from './sdk.js';

const KEY_NAME = /^[A-Za-z0-9-]{1,127}$/;
/** Refs whose resolution is remembered, in all (see `Rpc.resolve`). */
export const RESOLVED_MAX = 1024;
/** Key specs remembered, per vault and key name: beyond this, the oldest is forgotten (and looked up again). */
export const MAX_KEY_SPECS = 4096;
/** The SDK's own wait between polls of a long-running operation. */
const SDK_POLL_INTERVAL_MS = 2000;
/** Markers of unanswered or unfinished creates remembered (see `Rpc.unfinishedCreates`): beyond this, the oldest is forgotten. */
export const MAX_UNFINISHED = 10_000;

/**
 * A Map that forgets its oldest entry when a new one would make it hold more than `max`: a cache
 * that callers naming ever more keys cannot grow without bound. Reads cost what a Map's do.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(readonly max: number) {
    super();
  }
  override set(key: K, value: V): this {
    if (this.size >= this.max && !this.has(key)) {
      const oldest = this.keys().next();
      if (oldest.done !== true) this.delete(oldest.value);
    }
    return super.set(key, value);
  }
}

export interface ResolvedKey {
  readonly vault: Vault;
  readonly name: string;
  readonly version: string | undefined;
}

export interface SdkOptions {
  abortSignal: AbortSignal;
  onResponse?: (raw: { parsedBody?: unknown }) => void;
}

const VERSION = /^[A-Za-z0-9]{1,64}$/;

/** An answer that is not what Key Vault gives: Internal, saying what was wrong and never echoing it. */
export const unexpected = (what: string) =>
  new KeyportError('Internal', `the vault answered ${what}`, { provider: PROVIDER_NAME, retryable: false });

/**
 * The vault, name and version a key id (`https://vault/keys/name[/version]`) names, if it is one
 * of Key Vault's own alphabet; undefined otherwise.
 */
export function parseKid(kid: unknown): { origin: string; name: string; version?: string } | undefined {
  if (typeof kid !== 'string' || kid.length > 2048 || !URL.canParse(kid)) return undefined;
  const url = new URL(kid);
  const m = /^\/keys\/([^/]+)(?:\/([^/]*))?\/?$/.exec(url.pathname);
  const name = m?.[1];
  const version = m?.[2] || undefined;
  if (name === undefined || !KEY_NAME.test(name) || (version !== undefined && !VERSION.test(version))) {
    return undefined;
  }
  return { origin: url.origin, name, ...(version !== undefined ? { version } : {}) };
}

/** Key Vault names are case-insensitive: `Key1` and `key1` are one key. */
export const sameName = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * The version an answer's `kid` names, refusing a `kid` naming another vault or key (a proxy's
 * answer for another key must not become this key's version in a ciphertext), or, for a ref
 * pinned to a version, another version: the ciphertext would name the pinned one while made under
 * the other, and never open.
 */
function versionOfKid(kid: unknown, key: ResolvedKey): string | undefined {
  if (kid === undefined) return undefined;
  const parsed = parseKid(kid);
  if (parsed === undefined) throw unexpected('with a key id that is not one of a Key Vault key');
  if (parsed.origin !== key.vault.url || !sameName(parsed.name, key.name)) {
    throw unexpected('with a key id naming another vault or key than the one asked');
  }
  // Version ids, like names, are case-insensitive.
  if (key.version !== undefined && parsed.version !== undefined && !sameName(parsed.version, key.version)) {
    throw unexpected('with a key id naming another version than the one asked');
  }
  return parsed.version;
}

type PipelinePolicy = NonNullable<KeyClientOptions['additionalPolicies']>[number]['policy'];

/**
 * A pipeline policy refusing any request to another origin than the vault's, before the
 * authentication policy runs: a listing's `nextLink` (followed as given by the SDK, host and all)
 * or any other link in an answer never takes a request, or the credential's token, elsewhere.
 */
function sameVaultOnly(vault: Vault): PipelinePolicy {
  return {
    name: 'keyportSameVaultOnly',
    sendRequest(request, next) {
      if (!URL.canParse(request.url) || new URL(request.url).origin !== vault.url) {
        return Promise.reject(unexpected('a link to another host than the vault: not followed'));
      }
      return next(request);
    },
  };
}

/** The caller's signal while a listing's page is being fetched (see `Rpc.pages`). */
const pageSignal = new AsyncLocalStorage<AbortSignal>();

/**
 * A pipeline policy giving a listing's page request the caller's signal. The SDK sends the pages
 * after the first (its `nextLink`s) with no options at all, so without it an abort stopped
 * core's wait but the HTTP request ran on; with it the request is destroyed.
 */
const callerSignal: PipelinePolicy = {
  name: 'keyportCallerSignal',
  sendRequest(request, next) {
    // A request made with options already has the caller's signal; the SDK's nextLink requests have none.
    const signal = pageSignal.getStore();
    if (signal !== undefined) request.abortSignal ??= signal;
    return next(request);
  },
};

/**
 * The most bytes one answer may carry, as decompressed: Key Vault's largest (a backup of a key's
 * at most 500 versions) is a few MB. Without a bound the SDK read any body whole into memory,
 * and the pipeline asks for gzip, so a few MB sent compressed became gigabytes.
 */
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/** Every status's body as a stream (core-rest-pipeline reads `Infinity` as any status). */
const EVERY_STATUS = new Set([Number.POSITIVE_INFINITY]);

/** An answer's body as text, refused once it passes MAX_ANSWER_BYTES (the stream is then destroyed). */
async function boundedText(body: AsyncIterable<string | Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Leaving the loop early (the bound, an abort) destroys the stream, and with it the socket.
  for await (const chunk of body) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += bytes.length;
    if (size > MAX_ANSWER_BYTES) {
      throw unexpected(
        `an answer of more than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB: it was not read further`,
      );
    }
    chunks.push(bytes);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A pipeline policy bounding every answer's size (see MAX_ANSWER_BYTES). It runs last before the
 * transport (per attempt, after authentication): the transport hands it the body as a stream,
 * which it reads up to the bound into the text the SDK's deserialization then parses as before.
 * A request already streaming its answer is left alone (the SDK's key calls stream none); a
 * transport that answers with text anyway (a caller's httpClient) is passed through.
 */
const boundedAnswers: PipelinePolicy = {
  name: 'keyportBoundedAnswers',
  async sendRequest(request, next) {
    if (request.streamResponseStatusCodes !== undefined) return next(request);
    request.streamResponseStatusCodes = EVERY_STATUS;
    let response: Awaited<ReturnType<typeof next>>;
    try {
      response = await next(request);
    } finally {
      // Deserialization reads only the bodies of requests that did not ask to stream.
      delete request.streamResponseStatusCodes;
    }
    const body = response.readableStreamBody;
    if (body === undefined) return response;
    delete response.readableStreamBody;
    response.bodyAsText = await boundedText(body);
    return response;
  },
};

/** keyport's policies, on every client it sends through, and where in the pipeline each goes. */
const policiesFor = (vault: Vault): { policy: PipelinePolicy; position: 'perCall' | 'perRetry' }[] => [
  { policy: sameVaultOnly(vault), position: 'perCall' },
  { policy: callerSignal, position: 'perCall' },
  { policy: boundedAnswers, position: 'perRetry' },
];

/** What a KeyClient holds (a private field in the SDK's typings) that keyport adds its policies to. */
interface ReachablePipeline {
  addPolicy(policy: PipelinePolicy, options?: { phase?: 'Serialize'; afterPhase?: 'Sign' }): void;
  removePolicy(options: { name: string }): unknown;
}

/**
 * A caller-built KeyClient given keyport's policies, as the clients keyport builds have them. The
 * SDK takes policies only at construction (`additionalPolicies`), so they go into the pipeline the
 * client keeps (`client.pipeline`, private in the typings, the one the SDK itself adds its policies
 * to): the routing ones in the Serialize phase, before authentication, the answer bound after
 * Sign, next to the transport. A client whose pipeline cannot be reached (a
 * look-alike object, an SDK that moved it) is refused: its requests could follow a link anywhere.
 * Replaced by name, so a client given to several providers carries them once.
 */
function holdCallerClient(vault: Vault, client: KeyClient): void {
  const pipeline = (client as unknown as { client?: { pipeline?: Partial<ReachablePipeline> } }).client
    ?.pipeline;
  if (typeof pipeline?.addPolicy !== 'function' || typeof pipeline.removePolicy !== 'function') {
    throw invalid(
      'keyClient must be a KeyClient from @azure/keyvault-keys whose pipeline keyport can hold to its vault: give vaultUrl and clientOptions instead',
    );
  }
  for (const { policy, position } of policiesFor(vault)) {
    pipeline.removePolicy({ name: policy.name });
    // As the SDK places `additionalPolicies`: per call before authentication, per retry after it.
    pipeline.addPolicy(policy, position === 'perCall' ? { phase: 'Serialize' } : { afterPhase: 'Sign' });
  }
}

export class Rpc {
  /**
   * Key specs per vault and key name: rotation keeps a key's type and size, so one lookup serves
   * (a version of another size added elsewhere is read anew, see keys.ts `keySpecAgain`).
   */
  readonly specs: Map<string, KeySpec> = new BoundedMap(MAX_KEY_SPECS);
  /** Spec look-ups in flight, shared by concurrent callers: a cold burst makes one `get`, not one each. */
  readonly specLookups = new Map<string, SharedRequest<KeySpec>>();
  /** Creates and imports of a new key name in flight, per vault and name (see `oneCreateAtATime`). */
  readonly creating = new Map<string, Promise<void>>();
  /**
   * The marker of each createKey this instance sent and has not seen answered (without a
   * rotation) or finished (with one), per vault and name: only this instance's repeat answers
   * with or finishes that key (see keys.ts `unfinishedId`).
   */
  readonly unfinishedCreates: Map<string, string> = new BoundedMap(MAX_UNFINISHED);
  private readonly byHost: ReadonlyMap<string, Vault>;
  private readonly keyClients = new Map<Vault, Promise<KeyClient>>();
  /** By key id, least recently used first: the client, or its build while the SDK loads. */
  private readonly cryptoClients = new Map<string, CryptographyClient | Promise<CryptographyClient>>();
  private readonly resolved = new Map<string, Map<string | undefined, ResolvedKey>>();
  /** Entries in `resolved`, over every URI: the bound is on the total, not per URI. */
  private resolvedCount = 0;
  private defaultCredential: Promise<TokenCredential> | undefined;

  constructor(readonly config: CheckedOptions) {
    this.byHost = new Map(config.vaults.map((v) => [v.host.toLowerCase(), v]));
    for (const vault of config.vaults) if (vault.client !== undefined) holdCallerClient(vault, vault.client);
  }

  /** One request to a vault's KeyClient. */
  async send<T>(
    vault: Vault,
    o: ProviderCallOptions,
    request: (keys: KeyClient, options: SdkOptions) => Promise<T>,
  ) {
    return request(await this.keyClient(vault), { abortSignal: o.signal });
  }

  /**
   * A listing's pages, each fetched with the caller's signal: `open` gets it for the first page, and
   * `callerSignal` gives it to the SDK's requests for the later ones, made while a page is pulled here.
   */
  async *pages<T>(
    vault: Vault,
    o: ProviderCallOptions,
    open: (keys: KeyClient, options: SdkOptions) => AsyncIterable<T>,
  ): AsyncIterable<T> {
    const iterator = (await this.send(vault, o, async (kc, so) => open(kc, so)))[Symbol.asyncIterator]();
    let resting = false;
    try {
      for (;;) {
        const step = await pageSignal.run(o.signal, () => iterator.next());
        if (step.done === true) return;
        resting = true;
        yield step.value;
        resting = false;
      }
    } finally {
      // Left at a yield (the consumer stopped early): the SDK's iterator is closed, as `for await` would.
      if (resting) await iterator.return?.();
    }
  }

  /**
   * One request to a key's CryptographyClient, and the key version that served it: the ref's, else
   * the one the vault's answer names in `kid` (a versionless call uses the latest).
   */
  sendCrypto<T>(
    key: ResolvedKey,
    o: ProviderCallOptions,
    request: (crypto: CryptographyClient, options: SdkOptions) => Promise<T>,
  ): Promise<{ result: T; version: string | undefined }> {
    let kid: unknown;
    const options = {
      abortSignal: o.signal,
      onResponse: (raw: { parsedBody?: unknown }) => {
        kid = (raw.parsedBody as { kid?: unknown } | undefined)?.kid;
      },
    };
    const answered = (result: T) => {
      const named = versionOfKid(kid, key);
      return { result, version: key.version ?? named };
    };
    // Every encrypt and decrypt comes here: a client already built is used in this step.
    const client = this.cryptoClient(key);
    return client instanceof Promise
      ? client.then((c) => request(c, options)).then(answered)
      : request(client, options).then(answered);
  }

  /** The wait between polls of a deletion or recovery: the option, else the SDK's default. */
  get pollIntervalMs(): number {
    return this.config.pollIntervalMs ?? SDK_POLL_INTERVAL_MS;
  }

  /** Where bare key names go: the first configured vault. */
  get defaultVault(): Vault {
    return this.config.vaults[0] as Vault;
  }

  /**
   * The vault, key name and version a ref names (the ref's version wins over none in the URI).
   * Remembered per URI and version (a bounded map, emptied when full): parsing the URI was a
   * visible share of the adapter's own time on every call.
   */
  resolve(ref: KeyRef): ResolvedKey {
    // By URI, then by version (undefined for none): unambiguous whatever the strings hold.
    let byVersion = this.resolved.get(ref.uri);
    let key = byVersion?.get(ref.version);
    if (key === undefined) {
      key = this.parseRef(ref);
      // Bounded in all: one URI with many versions counts as many as many URIs would.
      if (this.resolvedCount >= RESOLVED_MAX) {
        this.resolved.clear();
        this.resolvedCount = 0;
        byVersion = undefined;
      }
      if (byVersion === undefined) {
        byVersion = new Map();
        this.resolved.set(ref.uri, byVersion);
      }
      byVersion.set(ref.version, key);
      this.resolvedCount++;
    }
    return key;
  }

  private parseRef(ref: KeyRef): ResolvedKey {
    const parsed = parseKeyUri(ref.uri);
    if (parsed.scheme !== 'azurekeyvault') throw invalid('not an azurekeyvault:// key URI', ref.uri);
    const vault = this.byHost.get(parsed.vaultHost.toLowerCase());
    if (vault === undefined)
      throw invalid('the key URI names a vault this provider is not configured for', ref.uri);
    const version = ref.version ?? parsed.version;
    // Name and version become URL path segments: nothing but Key Vault's own alphabet gets there.
    if (!KEY_NAME.test(parsed.name) || (version !== undefined && !/^[A-Za-z0-9]{1,64}$/.test(version))) {
      throw invalid('not a Key Vault key name or version', ref.uri);
    }
    return { vault, name: parsed.name, version };
  }

  /** The vault a new key's name or URI points to, and the bare name. */
  forNewKey(nameOrUri: string): { vault: Vault; name: string } {
    if (nameOrUri.startsWith('azurekeyvault://')) {
      const r = this.resolve({ uri: nameOrUri });
      if (r.version !== undefined) throw invalid('a new key URI names no version', nameOrUri);
      return r;
    }
    if (!KEY_NAME.test(nameOrUri)) throw invalid('Key Vault key names are 1-127 letters, digits or dashes');
    return { vault: this.defaultVault, name: nameOrUri };
  }

  /** `azurekeyvault://host/keys/name[/version]`. */
  uriOf(vault: Vault, name: string, version?: string): string {
    return `azurekeyvault://${vault.host}/keys/${name}${version === undefined ? '' : `/${version}`}`;
  }

  close(): void {
    this.cryptoClients.clear();
  }

  /** The caller's credential, else a `DefaultAzureCredential` (and `@azure/identity`) made once. */
  private credential(): Promise<TokenCredential> {
    if (this.config.credential !== undefined) return Promise.resolve(this.config.credential);
    this.defaultCredential ??= identitySdk.load().then((identity) => new identity.DefaultAzureCredential());
    this.defaultCredential.catch(() => {
      this.defaultCredential = undefined;
    });
    return this.defaultCredential;
  }

  /** Builds a client once the SDK and credential are there; a failed build is forgotten by `cache`. */
  private async built<T>(make: (sdk: typeof KeysSdk, credential: TokenCredential) => T): Promise<T> {
    const [sdk, credential] = await Promise.all([keysSdk.load(), this.credential()]);
    return make(sdk, credential);
  }

  private keyClient(vault: Vault): Promise<KeyClient> {
    if (vault.client !== undefined) return Promise.resolve(vault.client);
    let client = this.keyClients.get(vault);
    if (client === undefined) {
      client = this.built(
        (sdk, credential) => new sdk.KeyClient(vault.url, credential, this.pipelineOptions(vault)),
      );
      this.remember(this.keyClients, vault, client);
    }
    return client;
  }

  /**
   * A CryptographyClient that always calls the vault. It is built from a KeyVaultKey without key
   * material, so the SDK neither fetches the key nor runs anything locally with the public key:
   * every operation reaches the vault, which enforces key state, validity dates and permissions.
   */
  private cryptoClient(key: ResolvedKey): CryptographyClient | Promise<CryptographyClient> {
    const id = `${key.vault.url}/keys/${key.name}${key.version === undefined ? '' : `/${key.version}`}`;
    const client = this.cryptoClients.get(id);
    if (client !== undefined) {
      // Map order is insertion order: re-inserting keeps recently used clients at the end.
      this.cryptoClients.delete(id);
      this.cryptoClients.set(id, client);
      return client;
    }
    const remoteOnly: KeyVaultKey = {
      name: key.name,
      id,
      properties: {
        id,
        name: key.name,
        vaultUrl: key.vault.url,
        ...(key.version ? { version: key.version } : {}),
      },
    };
    const building = this.built(
      (sdk, credential) =>
        new sdk.CryptographyClient(remoteOnly, credential, this.pipelineOptions(key.vault)),
    );
    this.cryptoClients.set(id, building);
    // Built: the entry becomes the client itself (later calls use it without waiting); failed
    // (SDK missing): dropped, so the next call tries again.
    building.then(
      (built) => {
        if (this.cryptoClients.get(id) === building) this.cryptoClients.set(id, built);
      },
      () => {
        if (this.cryptoClients.get(id) === building) this.cryptoClients.delete(id);
      },
    );
    if (this.cryptoClients.size > this.config.maxCryptographyClients) {
      const oldest = this.cryptoClients.keys().next().value;
      if (oldest !== undefined) this.cryptoClients.delete(oldest);
    }
    return building;
  }

  /** The caller's SDK options, with keyport's policies (see `sameVaultOnly`, `callerSignal`). */
  private pipelineOptions(vault: Vault): KeyClientOptions {
    const given = this.config.clientOptions;
    return { ...given, additionalPolicies: [...(given.additionalPolicies ?? []), ...policiesFor(vault)] };
  }

  /** Caches a client being built; a failed build (SDK missing) is dropped so the next call retries. */
  private remember<K, T>(cache: Map<K, Promise<T>>, key: K, client: Promise<T>): void {
    cache.set(key, client);
    client.catch(() => {
      if (cache.get(key) === client) cache.delete(key);
    });
  }
}
