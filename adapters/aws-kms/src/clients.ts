/**
 * Builds and caches the KMS clients the provider talks through. One primary client (the user's,
 * or one built from the options / default credential chain); a key URI naming another region or
 * endpoint (`?region=`, `?endpoint=`, or an ARN's region) gets its own client with the same
 * credentials. SDK retries are turned down to one attempt because core's call policy retries.
 * Clients are built on first use, after `@aws-sdk/client-kms` is loaded (not at import): every
 * client leaves through `primary()` or `forLocation()`, which load the SDK first, so code holding
 * a client may use `kmsSdk()` for the command classes.
 */
import type { KMSClient, KMSClientConfig } from '@aws-sdk/client-kms';
import { type AwsKmsKeyUri, KeyportError, type KeyRef, parseKeyUri } from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';
import { loadKmsSdk } from './sdk.js';

export interface AwsKmsProviderOptions {
  /**
   * An already-built client, used for every key whose URI names no other region or endpoint.
   * It keeps its own retry settings: build it with `maxAttempts: 1` so attempts are not multiplied.
   */
  readonly client?: KMSClient;
  /** Default region; the SDK's chain (AWS_REGION, profile) applies when omitted. */
  readonly region?: string;
  /** Default endpoint (VPC endpoint, FIPS endpoint, an emulator). */
  readonly endpoint?: string;
  /** Static credentials or a provider; the SDK's default credential chain applies when omitted. */
  readonly credentials?: KMSClientConfig['credentials'];
  /** Further client settings (e.g. a `requestHandler` carrying TLS options or a proxy). */
  readonly clientConfig?: Omit<KMSClientConfig, 'region' | 'endpoint' | 'credentials' | 'maxAttempts'>;
  /** Grant tokens sent on every call that accepts them (see `withGrantTokens`). */
  readonly grantTokens?: readonly string[];
}

/** A key as one KMS call needs it: the client for its region/endpoint and the KeyId to send. */
export interface ResolvedKey {
  readonly client: KMSClient;
  /** The URI as the caller gave it. */
  readonly uri: string;
  /** Key ARN, alias ARN, `alias/<name>` or key id, exactly as the URI names it. */
  readonly keyId: string;
  readonly parsed: AwsKmsKeyUri;
}

export class KmsClients {
  private primaryClient: KMSClient | undefined;
  private readonly owned: KMSClient[] = [];
  private readonly derived = new Map<string, KMSClient>();
  private primaryRegion: Promise<string | undefined> | undefined;

  constructor(private readonly options: AwsKmsProviderOptions) {
    this.primaryClient = options.client;
  }

  /** The user's client, used as it is, or the one built from the options (on first use). */
  async primary(): Promise<KMSClient> {
    const { KMSClient } = await loadKmsSdk(); // also for a given client: callers use the commands
    if (this.primaryClient === undefined) {
      this.primaryClient = new KMSClient(this.config(this.options.region, this.options.endpoint));
      this.owned.push(this.primaryClient);
    }
    return this.primaryClient;
  }

  /** Parses an `aws-kms://` URI and picks its client. */
  async resolve(ref: KeyRef | string): Promise<ResolvedKey> {
    const uri = typeof ref === 'string' ? ref : ref.uri;
    const parsed = parseKeyUri(uri);
    if (parsed.scheme !== 'aws-kms') {
      throw new KeyportError('InvalidArgument', `the aws-kms provider cannot serve "${parsed.scheme}" keys`, {
        provider: PROVIDER_NAME,
        keyUri: uri,
      });
    }
    if (typeof ref !== 'string' && ref.version !== undefined) {
      throw new KeyportError('InvalidArgument', 'AWS KMS keys have no addressable versions', {
        provider: PROVIDER_NAME,
        keyUri: uri,
      });
    }
    return {
      client: await this.forLocation(parsed.region, parsed.endpoint),
      uri,
      keyId: parsed.keyId,
      parsed,
    };
  }

  /** The client for a region/endpoint pair; undefined parts mean "the provider's default". */
  async forLocation(region: string | undefined, endpoint: string | undefined): Promise<KMSClient> {
    const wantEndpoint = endpoint ?? this.options.endpoint;
    const sameEndpoint = endpoint === undefined || endpoint === this.options.endpoint;
    const primary = await this.primary();
    if (sameEndpoint && (region === undefined || region === (await this.defaultRegion(primary)))) {
      return primary;
    }
    const key = `${region ?? ''}|${wantEndpoint ?? ''}`;
    let client = this.derived.get(key);
    if (client === undefined) {
      const { KMSClient } = await loadKmsSdk();
      client = new KMSClient(this.config(region ?? this.options.region, wantEndpoint));
      this.derived.set(key, client);
      this.owned.push(client);
    }
    return client;
  }

  private defaultRegion(primary: KMSClient): Promise<string | undefined> {
    this.primaryRegion ??=
      this.options.region !== undefined
        ? Promise.resolve(this.options.region)
        : primary.config.region().then(
            (r) => r,
            () => undefined,
          );
    return this.primaryRegion;
  }

  private config(region: string | undefined, endpoint: string | undefined): KMSClientConfig {
    const credentials = this.options.credentials ?? this.options.client?.config.credentials;
    return {
      ...this.options.clientConfig,
      ...(region !== undefined ? { region } : {}),
      ...(endpoint !== undefined ? { endpoint } : {}),
      ...(credentials !== undefined ? { credentials } : {}),
      maxAttempts: 1,
    };
  }

  /** Destroys the clients this provider built (never the one the user passed in). */
  close(): void {
    for (const client of this.owned) client.destroy();
    this.owned.length = 0;
    this.derived.clear();
  }
}
