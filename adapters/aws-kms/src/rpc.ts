/**
 * The one path to AWS: every request leaves through `KmsRpc.send`, which picks the command, adds
 * the grant tokens where the API takes them and passes the AbortSignal; it maps and retries
 * nothing (core does both). Clients are built on first use (after the SDK loaded) with
 * `maxAttempts: 1`: the user's client, or one from the options / default credential chain, and a
 * client per other region or endpoint a key URI names, with the same credentials (at most
 * MAX_LOCATION_CLIENTS of those, least recently used dropped once no call is using it). A URI's
 * endpoint must be the configured one or an allowed one (`EndpointRule`): anything else is
 * refused before a client is built or a request made.
 *
 * A key's spec never changes, and encrypt/decrypt must know it (RSA and symmetric requests
 * differ), so it is looked up once per key here rather than on every call.
 */
import type * as Sdk from '@aws-sdk/client-kms';
import type { KMSClient, KMSClientConfig } from '@aws-sdk/client-kms';
import {
  type AwsKmsKeyUri,
  abortedWaitError,
  BYTE_KEYS_THROW,
  type Driver,
  type DriverCapabilities,
  joinSharedRequest,
  type KeyRef,
  type KeySpec,
  keyportError,
  quote,
  type SharedRequest,
} from '@keyport/core';
import { EndpointRule } from './endpoints.js';
import { answered, PROVIDER_NAME } from './errors.js';
import type { AwsKmsProviderOptions } from './options.js';
import { kmsSdk } from './sdk.js';
import { KeyObjectSha256 } from './sha256.js';
import { keyportSpecOf } from './specs.js';
import { answerNamesKey, isAlias, parseAwsUri } from './uri.js';

type Module = typeof Sdk;
export type KmsOperation =
  Exclude<keyof Module, '$Command'> extends infer K ? (K extends `${infer Op}Command` ? Op : never) : never;
type CommandOf<Op extends KmsOperation> = Module[`${Op}Command`];
export type InputOf<Op extends KmsOperation> = ConstructorParameters<CommandOf<Op>>[0];
export type OutputOf<Op extends KmsOperation> = Awaited<
  ReturnType<ReturnType<InstanceType<CommandOf<Op>>['resolveMiddleware']>>
>['output'];

type Contract = Driver & DriverCapabilities;
type Method<M extends keyof Contract> = Extract<Contract[M], (...args: never[]) => unknown>;
/** An operation module's implementation of the contract method `M` (the driver passes its rpc first). */
export type DriverOp<M extends keyof Contract, R = ReturnType<Method<M>>> = (
  rpc: KmsRpc,
  ...args: Parameters<Method<M>>
) => R;

/** The operations whose requests carry GrantTokens. */
const TAKES_GRANT_TOKENS: ReadonlySet<string> = new Set<KmsOperation>([
  'Encrypt',
  'Decrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'ReEncrypt',
  'Sign',
  'Verify',
  'GenerateMac',
  'VerifyMac',
  'GetPublicKey',
  'DescribeKey',
  'CreateGrant',
]);
const CACHE_LIMIT = 4096;

/**
 * The most any answer may hold. AWS's largest are a page of 100 grants (each at most 8 context
 * pairs of 384-character values, a name and principals of 256) or of 1000 keys or rotations, well
 * under 2 MiB; the SDK reads a body whole (and then as one string) before parsing it. Without a
 * bound, an endpoint answering without end (a broken proxy, a hostile server) had one call hold
 * what it sent: a 400 MiB Encrypt answer was taken as a 300 MB ciphertext (520 MiB held), a 3 GiB
 * one held the process for 47 s, far past the call's 20 s deadline.
 */
export const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

function answerTooLarge(size: string): Error {
  return keyportError(
    'Internal',
    `AWS KMS answered with ${size}, more than the ${MAX_ANSWER_BYTES / 1024 / 1024} MiB any KMS answer can be`,
    { provider: PROVIDER_NAME, retryable: false },
  );
}

/** The body as bytes, read to its end unless it grows past MAX_ANSWER_BYTES (then it is cut off). */
async function readBounded(body: AsyncIterable<unknown>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    const bytes = typeof chunk === 'string' ? new TextEncoder().encode(chunk) : (chunk as Uint8Array);
    size += bytes.length;
    // leaving the loop destroys the stream, closing the connection under the rest
    if (size > MAX_ANSWER_BYTES) throw answerTooLarge(`over ${size} bytes`);
    chunks.push(bytes);
  }
  return chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks);
}

interface RawResponse {
  readonly headers?: Readonly<Record<string, string | undefined>>;
  body?: unknown;
}
type Handler = (args: unknown) => Promise<{ readonly response: unknown }>;

/**
 * Bounds the answer's body before the SDK reads it (added to every command, next to the
 * transport): a declared length over the bound is refused before any of it is read; a declared
 * length within it is all Node reads of a body, so only an undeclared length (chunked) is counted.
 */
const boundAnswer =
  (next: Handler): Handler =>
  async (args) => {
    const out = await next(args);
    const response = out.response as RawResponse | undefined;
    const body = response?.body;
    if (response === undefined || body === undefined || body === null) return out;
    const declared = response.headers?.['content-length'];
    const length = declared !== undefined && /^[0-9]{1,16}$/.test(declared) ? Number(declared) : undefined;
    if (length !== undefined && length > MAX_ANSWER_BYTES) {
      (body as { destroy?: () => void }).destroy?.();
      throw answerTooLarge(`${length} bytes`);
    }
    if (body instanceof Uint8Array) {
      if (body.length > MAX_ANSWER_BYTES) throw answerTooLarge(`${body.length} bytes`);
    } else if (
      length === undefined &&
      typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
    ) {
      response.body = await readBounded(body as AsyncIterable<unknown>);
    }
    return out;
  };
const BOUND_ANSWER = { step: 'deserialize', name: 'keyportBoundAnswer', priority: 'low' } as const;

interface Stacked {
  readonly middlewareStack: { add(middleware: unknown, options: object): void };
}

/** A client this provider built, its answers bounded once for all its calls. */
function bounded(client: KMSClient): KMSClient {
  (client as unknown as Stacked).middlewareStack.add(boundAnswer, BOUND_ANSWER);
  return client;
}

/**
 * The clients for regions/endpoints other than the default kept at once. URIs may come from
 * users (`?endpoint=`, `?region=`): past this many locations, the least recently used client is
 * dropped (and closed once no call is using it), so distinct values cannot pile up clients.
 */
export const MAX_LOCATION_CLIENTS = 32;

/**
 * A client and the calls in flight on it. An evicted route is never used for a new call (the
 * pool gives its location a fresh client); it is closed when its last call ends.
 */
export interface Route {
  readonly client: KMSClient;
  /** `region|endpoint` of a client for another location; undefined for the default client. */
  readonly location: string | undefined;
  /** The region and endpoint the client was built with (to build it again once evicted). */
  readonly region: string | undefined;
  readonly endpoint: string | undefined;
  /**
   * Whether the client bounds its answers itself (one this provider built); a client the caller
   * passed is left as it is, so each command sent through it carries the bound instead.
   */
  readonly bounded: boolean;
  calls: number;
  evicted: boolean;
}

/** A key as one KMS call needs it: the route to its region/endpoint and the KeyId to send. */
export interface ResolvedKey {
  readonly route: Route;
  /** The URI as the caller gave it. */
  readonly uri: string;
  /** Key ARN, alias ARN, `alias/<name>` or key id, exactly as the URI names it. */
  readonly keyId: string;
  readonly parsed: AwsKmsKeyUri;
  /** Where its spec is cached: region, endpoint and key id. */
  readonly specKey: string;
}

export function resolvedKey(route: Route, uri: string, parsed: AwsKmsKeyUri): ResolvedKey {
  return { route, uri, keyId: parsed.keyId, parsed, specKey: cacheKeyOf(parsed) };
}

/**
 * The key id or ARN an answer names, refused (`Internal`) unless it can be the key the request
 * named (`asked`: the KeyId sent, the key's own by default). AWS answers for the key it was
 * asked about; an answer for another key, account or region comes from an endpoint that is not
 * doing what was asked (a proxy, a misconfigured endpoint): its key ARN would be recorded as the
 * one that wrapped (ESDK-style EDKs record it), its plaintext taken as this key's, its metadata,
 * spec or grants reported as this key's.
 */
export function answeredKey(
  value: string | undefined,
  key: Pick<ResolvedKey, 'uri' | 'keyId' | 'parsed'>,
  what: string,
  asked: string = key.keyId,
): string {
  const named = answered(value, what);
  if (!answerNamesKey(asked, named, key.parsed.region))
    throw keyportError(
      'Internal',
      `AWS KMS answered with ${what} of another key (${quote(named, 256)}) than the one asked for (${quote(asked, 256)})`,
      { provider: PROVIDER_NAME, keyUri: key.uri, retryable: false },
    );
  return named;
}

class ClientPool {
  private primaryRoute: Route | undefined;
  private primaryRegion: Promise<string | undefined> | undefined;
  /** Clients for other locations, least recently used first (a Map keeps insertion order). */
  private readonly derived = new Map<string, Route>();
  /** Evicted clients that calls are still using: closed when the last one ends (or on close). */
  private readonly draining = new Set<Route>();
  private readonly endpoints: EndpointRule;

  constructor(readonly options: AwsKmsProviderOptions) {
    if (options.client !== undefined) this.primaryRoute = route(options.client, undefined, false);
    this.endpoints = new EndpointRule(options.endpoint, options.allowedEndpoints);
  }

  /**
   * The endpoint a parsed URI may reach: undefined for the provider's own, else an allowed one
   * (normalised). Throws `InvalidArgument` for any other, synchronously: no client, no request.
   */
  endpointOf(parsed: AwsKmsKeyUri, uri: string): string | undefined {
    return this.endpoints.endpointOf(parsed, uri);
  }

  async primary(): Promise<Route> {
    const { KMSClient } = await kmsSdk.load(); // also for a given client: send() needs the commands
    this.primaryRoute ??= route(
      bounded(new KMSClient(this.config(this.options.region, this.options.endpoint))),
      undefined,
      true,
    );
    return this.primaryRoute;
  }

  /**
   * The route for a region/endpoint pair; undefined parts mean "the provider's default". The
   * endpoint is one `endpointOf` returned: never a URI's own text.
   */
  async forLocation(region: string | undefined, endpoint: string | undefined): Promise<Route> {
    const primary = await this.primary();
    if (endpoint === undefined) {
      if (region === undefined) return primary;
      this.primaryRegion ??=
        this.options.region !== undefined
          ? Promise.resolve(this.options.region)
          : primary.client.config.region().catch(() => undefined);
      if (region === (await this.primaryRegion)) return primary;
    }
    const wantEndpoint = endpoint ?? this.options.endpoint;
    return this.at(`${region ?? ''}|${wantEndpoint ?? ''}`, region ?? this.options.region, wantEndpoint);
  }

  /** The live route for a location (made if none), now the most recently used. */
  private at(location: string, region: string | undefined, endpoint: string | undefined): Route {
    let found = this.derived.get(location);
    if (found !== undefined) {
      this.derived.delete(location);
    } else {
      const client = bounded(new (kmsSdk.get().KMSClient)(this.config(region, endpoint)));
      found = route(client, location, true, region, endpoint);
      if (this.derived.size >= MAX_LOCATION_CLIENTS) {
        const [oldest, evicted] = this.derived.entries().next().value as [string, Route];
        this.derived.delete(oldest);
        evicted.evicted = true;
        if (evicted.calls === 0) this.release(evicted);
        else this.draining.add(evicted);
      }
    }
    this.derived.set(location, found);
    return found;
  }

  /**
   * The route a call should take: `given`, unless it was evicted since it was resolved (a URI's
   * resolution is cached), then a live one for the same location. Counts the call in.
   */
  enter(given: Route): Route {
    let r = given;
    if (r.location !== undefined) {
      if (r.evicted) r = this.at(r.location, r.region, r.endpoint);
      else if (this.derived.size > 1) {
        this.derived.delete(r.location); // most recently used
        this.derived.set(r.location, r);
      }
    }
    r.calls++;
    return r;
  }

  leave(r: Route): void {
    r.calls--;
    if (r.calls === 0 && r.evicted && this.draining.delete(r)) this.release(r);
  }

  /**
   * Closes a client this provider built. With a `requestHandler` in `clientConfig`, every client
   * shares it (and its sockets): destroying one client would cut the others' calls, so a dropped
   * client is only forgotten; `close()` still destroys them all.
   */
  private release(r: Route): void {
    if (this.options.clientConfig?.requestHandler === undefined) r.client.destroy();
  }

  private config(region: string | undefined, endpoint: string | undefined): KMSClientConfig {
    const credentials = this.options.credentials ?? this.options.client?.config.credentials;
    return {
      ...(BYTE_KEYS_THROW ? { sha256: KeyObjectSha256 } : {}),
      ...this.options.clientConfig,
      ...(region !== undefined ? { region } : {}),
      ...(endpoint !== undefined ? { endpoint } : {}),
      ...(credentials !== undefined ? { credentials } : {}),
      maxAttempts: 1,
    };
  }

  /** Destroys the clients this provider built (never the one the user passed in). */
  close(): void {
    if (this.primaryRoute !== undefined && this.primaryRoute.client !== this.options.client)
      this.primaryRoute.client.destroy();
    this.primaryRoute = undefined;
    for (const r of [...this.derived.values(), ...this.draining]) {
      r.evicted = true;
      r.client.destroy();
    }
    this.derived.clear();
    this.draining.clear();
  }
}

function route(
  client: KMSClient,
  location: string | undefined,
  isBounded: boolean,
  region?: string | undefined,
  endpoint?: string | undefined,
): Route {
  return { client, location, region, endpoint, bounded: isBounded, calls: 0, evicted: false };
}

/** A caller that stopped waiting for a shared spec lookup (its own signal fired). */
const lookUpAborted = abortedWaitError(PROVIDER_NAME, 'the AWS KMS call');

export class KmsRpc {
  /** Spec lookups in flight, by spec key: concurrent first callers of a key share one DescribeKey. */
  private readonly lookups = new Map<string, SharedRequest<KeySpec>>();

  private constructor(
    private readonly pool: ClientPool,
    private readonly grantTokens: readonly string[] | undefined,
    private readonly specs: Map<string, KeySpec>,
    /** URI -> its parse and client: parsing a URI costs more CPU than the rest of the driver's call. */
    private readonly resolved: Map<string, ResolvedKey>,
    /** createKey's creations in flight, by name (keys.ts). */
    readonly creating: Map<string, Promise<unknown>>,
  ) {}

  static create(options: AwsKmsProviderOptions): KmsRpc {
    return new KmsRpc(
      new ClientPool(options),
      tokensToSend(options.grantTokens),
      new Map(),
      new Map(),
      new Map(),
    );
  }

  /** The same clients and caches, sending other grant tokens. */
  withGrantTokens(tokens: readonly string[]): KmsRpc {
    return new KmsRpc(this.pool, tokensToSend(tokens), this.specs, this.resolved, this.creating);
  }

  /**
   * The region a route's client signs for and sends to, as the SDK resolved it (a `fips-` prefix
   * dropped); undefined when it has none (then no request could have been sent).
   */
  regionOf(to: { readonly route: Route }): Promise<string | undefined> {
    return to.route.client.config.region().catch(() => undefined);
  }

  /** The route to the default region and endpoint. */
  primary(): Promise<Route> {
    return this.pool.primary();
  }

  /** Parses an `aws-kms://` URI and picks its client (no promise once the URI is known). */
  resolve(ref: KeyRef | string): ResolvedKey | Promise<ResolvedKey> {
    const uri = typeof ref === 'string' ? ref : ref.uri;
    const known = this.resolved.get(uri);
    if (known !== undefined && (typeof ref === 'string' || ref.version === undefined)) return known;
    const parsed = parseAwsUri(ref);
    const endpoint = this.pool.endpointOf(parsed, uri);
    return this.pool.forLocation(parsed.region, endpoint).then((route) => {
      const key = resolvedKey(route, uri, parsed);
      if (this.resolved.size >= CACHE_LIMIT) this.resolved.clear();
      this.resolved.set(uri, key);
      return key;
    });
  }

  async send<Op extends KmsOperation>(
    to: { readonly route: Route },
    op: Op,
    input: InputOf<Op>,
    signal: AbortSignal,
  ): Promise<OutputOf<Op>> {
    const Command = kmsSdk.get()[`${op}Command`] as unknown as new (input: InputOf<Op>) => never;
    const tokens = this.grantTokens !== undefined && TAKES_GRANT_TOKENS.has(op);
    const request = tokens ? { ...input, GrantTokens: [...(this.grantTokens ?? [])] } : input;
    const route = this.pool.enter(to.route);
    try {
      const command = new Command(request);
      if (!route.bounded) (command as Stacked).middlewareStack.add(boundAnswer, BOUND_ANSWER);
      return (await route.client.send(command, { abortSignal: signal })) as OutputOf<Op>;
    } finally {
      this.pool.leave(route);
    }
  }

  /** The key's spec: known, or one DescribeKey per key however many callers need it at once. */
  specOf(key: ResolvedKey, signal: AbortSignal): KeySpec | Promise<KeySpec> {
    return (
      this.specs.get(key.specKey) ??
      joinSharedRequest(
        this.lookups,
        key.specKey,
        (own) => this.describeSpec(key, own),
        signal,
        lookUpAborted,
      )
    );
  }

  private async describeSpec(key: ResolvedKey, signal: AbortSignal): Promise<KeySpec> {
    const out = await this.send(key, 'DescribeKey', { KeyId: key.keyId }, signal);
    const { spec } = keyportSpecOf(metadataOf(out.KeyMetadata, key), key.uri);
    this.remember(key.parsed, spec);
    return spec;
  }

  /** Records the spec of the key a URI names (as the caller wrote it or as keyport printed it). */
  remember(parsed: AwsKmsKeyUri, spec: KeySpec): void {
    if (this.specs.size >= CACHE_LIMIT) this.specs.clear();
    this.specs.set(cacheKeyOf(parsed), spec);
  }

  /** An alias may be pointed at another key: forget what we knew when AWS says the usage is wrong. */
  forget(key: ResolvedKey): void {
    this.specs.delete(key.specKey);
  }

  /**
   * A KeyId for APIs that take no alias (grants, import, key management): aliases are resolved
   * to the key ARN with DescribeKey; key ids and ARNs pass as they are.
   */
  async keyIdOrArn(key: ResolvedKey, signal: AbortSignal): Promise<string> {
    if (!isAlias(key.keyId)) return key.keyId;
    const out = await this.send(key, 'DescribeKey', { KeyId: key.keyId }, signal);
    return metadataOf(out.KeyMetadata, key).Arn as string;
  }

  close(): void {
    this.pool.close();
    this.resolved.clear();
    this.lookups.clear();
  }
}

/**
 * DescribeKey's metadata, refused (`Internal`) unless it is of the key asked for (`asked`, the
 * key's own KeyId by default): its ARN must name that key, and its KeyId be the ARN's.
 */
export function metadataOf(
  meta: Sdk.KeyMetadata | undefined,
  key: Pick<ResolvedKey, 'uri' | 'keyId' | 'parsed'>,
  asked: string = key.keyId,
): Sdk.KeyMetadata {
  const m = answered(meta, 'key metadata');
  const arn = answeredKey(m.Arn, key, 'a key ARN', asked);
  if (m.KeyId !== undefined) answeredKey(m.KeyId, key, 'a key id', arn);
  return m;
}

/** No tokens means no GrantTokens field at all, not an empty list on every request. */
function tokensToSend(tokens: readonly string[] | undefined): readonly string[] | undefined {
  return tokens === undefined || tokens.length === 0 ? undefined : tokens;
}

function cacheKeyOf(parsed: AwsKmsKeyUri): string {
  return `${parsed.region ?? ''}|${parsed.endpoint ?? ''}|${parsed.keyId}`;
}
