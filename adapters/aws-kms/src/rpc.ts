/**
 * The one path to AWS: every request leaves through `KmsRpc.send`, which picks the command, adds
 * the grant tokens where the API takes them and passes the AbortSignal; it maps and retries
 * nothing (core does both). Clients are built on first use (after the SDK loaded) with
 * `maxAttempts: 1`: the user's client, or one from the options / default credential chain, and a
 * client per other region or endpoint a key URI names, with the same credentials.
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
  type SharedRequest,
} from '@keyport/core';
import { answered, PROVIDER_NAME } from './errors.js';
import type { AwsKmsProviderOptions } from './options.js';
import { kmsSdk } from './sdk.js';
import { KeyObjectSha256 } from './sha256.js';
import { keyportSpecOf } from './specs.js';
import { isAlias, parseAwsUri } from './uri.js';

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

/** A key as one KMS call needs it: the client for its region/endpoint and the KeyId to send. */
export interface ResolvedKey {
  readonly client: KMSClient;
  /** The URI as the caller gave it. */
  readonly uri: string;
  /** Key ARN, alias ARN, `alias/<name>` or key id, exactly as the URI names it. */
  readonly keyId: string;
  readonly parsed: AwsKmsKeyUri;
  /** Where its spec is cached: region, endpoint and key id. */
  readonly specKey: string;
}

export function resolvedKey(client: KMSClient, uri: string, parsed: AwsKmsKeyUri): ResolvedKey {
  return { client, uri, keyId: parsed.keyId, parsed, specKey: cacheKeyOf(parsed) };
}

class ClientPool {
  private primaryClient: KMSClient | undefined;
  private primaryRegion: Promise<string | undefined> | undefined;
  private readonly owned: KMSClient[] = [];
  private readonly derived = new Map<string, KMSClient>();

  constructor(readonly options: AwsKmsProviderOptions) {
    this.primaryClient = options.client;
  }

  async primary(): Promise<KMSClient> {
    const { KMSClient } = await kmsSdk.load(); // also for a given client: send() needs the commands
    this.primaryClient ??= this.own(new KMSClient(this.config(this.options.region, this.options.endpoint)));
    return this.primaryClient;
  }

  /** The client for a region/endpoint pair; undefined parts mean "the provider's default". */
  async forLocation(region: string | undefined, endpoint: string | undefined): Promise<KMSClient> {
    const primary = await this.primary();
    if (endpoint === undefined || endpoint === this.options.endpoint) {
      if (region === undefined) return primary;
      this.primaryRegion ??=
        this.options.region !== undefined
          ? Promise.resolve(this.options.region)
          : primary.config.region().catch(() => undefined);
      if (region === (await this.primaryRegion)) return primary;
    }
    const wantEndpoint = endpoint ?? this.options.endpoint;
    const key = `${region ?? ''}|${wantEndpoint ?? ''}`;
    let client = this.derived.get(key);
    if (client === undefined) {
      client = this.own(
        new (kmsSdk.get().KMSClient)(this.config(region ?? this.options.region, wantEndpoint)),
      );
      this.derived.set(key, client);
    }
    return client;
  }

  private own(client: KMSClient): KMSClient {
    this.owned.push(client);
    return client;
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
    for (const client of this.owned.splice(0)) client.destroy();
    this.derived.clear();
  }
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
  ) {}

  static create(options: AwsKmsProviderOptions): KmsRpc {
    return new KmsRpc(new ClientPool(options), options.grantTokens, new Map(), new Map());
  }

  /** The same clients and caches, sending other grant tokens. */
  withGrantTokens(tokens: readonly string[]): KmsRpc {
    return new KmsRpc(this.pool, tokens.length === 0 ? undefined : tokens, this.specs, this.resolved);
  }

  primary(): Promise<KMSClient> {
    return this.pool.primary();
  }

  /** Parses an `aws-kms://` URI and picks its client (no promise once the URI is known). */
  resolve(ref: KeyRef | string): ResolvedKey | Promise<ResolvedKey> {
    const uri = typeof ref === 'string' ? ref : ref.uri;
    const known = this.resolved.get(uri);
    if (known !== undefined && (typeof ref === 'string' || ref.version === undefined)) return known;
    const parsed = parseAwsUri(ref);
    return this.pool.forLocation(parsed.region, parsed.endpoint).then((client) => {
      const key = resolvedKey(client, uri, parsed);
      if (this.resolved.size >= CACHE_LIMIT) this.resolved.clear();
      this.resolved.set(uri, key);
      return key;
    });
  }

  send<Op extends KmsOperation>(
    to: { readonly client: KMSClient },
    op: Op,
    input: InputOf<Op>,
    signal: AbortSignal,
  ): Promise<OutputOf<Op>> {
    const Command = kmsSdk.get()[`${op}Command`] as unknown as new (input: InputOf<Op>) => never;
    const tokens = this.grantTokens !== undefined && TAKES_GRANT_TOKENS.has(op);
    const request = tokens ? { ...input, GrantTokens: [...(this.grantTokens ?? [])] } : input;
    return to.client.send(new Command(request), { abortSignal: signal }) as Promise<OutputOf<Op>>;
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
    const { spec } = keyportSpecOf(answered(out.KeyMetadata, 'key metadata'), key.uri);
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
    return answered(out.KeyMetadata?.Arn, 'a key ARN');
  }

  close(): void {
    this.pool.close();
    this.resolved.clear();
    this.lookups.clear();
  }
}

function cacheKeyOf(parsed: AwsKmsKeyUri): string {
  return `${parsed.region ?? ''}|${parsed.endpoint ?? ''}|${parsed.keyId}`;
}
