/** What `awsKms()` takes, checked once at construction (unknown or mistyped options are refused). */
import type { KMSClient, KMSClientConfig } from '@aws-sdk/client-kms';
import { checkOptions, checkString, invalidArgument } from '@keyport/core';
import { endpointProblem, normaliseEndpoint } from './endpoints.js';

export interface AwsKmsProviderOptions {
  /**
   * An already-built client, used for every key whose URI names no other region or endpoint.
   * It keeps its own retry settings: build it with `maxAttempts: 1` so attempts are not multiplied.
   */
  readonly client?: KMSClient;
  /** Default region; the SDK's chain (AWS_REGION, profile) applies when omitted. */
  readonly region?: string;
  /**
   * Default endpoint (VPC endpoint, FIPS endpoint, an emulator). A key URI's `?endpoint=` naming
   * it (after normalisation) uses it too.
   */
  readonly endpoint?: string;
  /**
   * Further endpoints a key URI's `?endpoint=` may name, as `http(s)://host[:port]` (no user name,
   * password, path, query or fragment). A URI naming any endpoint other than these and `endpoint`
   * is refused (`InvalidArgument`) before any request: key URIs may come from users, and requests
   * carry signed credentials and plaintext.
   */
  readonly allowedEndpoints?: readonly string[];
  /** Static credentials or a provider; the SDK's default credential chain applies when omitted. */
  readonly credentials?: KMSClientConfig['credentials'];
  /**
   * Further client settings (e.g. a `requestHandler` carrying TLS options or a proxy). No
   * `retryStrategy`: core's call policy retries, and an SDK strategy would multiply its attempts.
   */
  readonly clientConfig?: Omit<
    KMSClientConfig,
    'region' | 'endpoint' | 'credentials' | 'maxAttempts' | 'retryStrategy'
  >;
  /** Grant tokens sent on every call that accepts them (see `withGrantTokens`). */
  readonly grantTokens?: readonly string[];
}

/** A host name label, as the SDK checks a region: no spaces, dots or slashes. */
const REGION = /^(?!-)[a-zA-Z0-9-]{1,63}(?<!-)$/;

const KNOWN = {
  client: true,
  region: true,
  endpoint: true,
  credentials: true,
  clientConfig: true,
  grantTokens: true,
  allowedEndpoints: true,
} as const satisfies Record<keyof AwsKmsProviderOptions, true>;

/**
 * AWS accepts at most 10 grant tokens per request, each 1 to 8192 characters. A copy is kept
 * (frozen), read index by index so a sparse array's holes are refused rather than sent as null.
 */
export function checkGrantTokens(tokens: unknown, option = 'grantTokens'): readonly string[] {
  if (!Array.isArray(tokens) || tokens.length > 10) throw invalidArgument(option, 'expected 0 to 10 strings');
  return Object.freeze(
    Array.from(tokens as unknown[], (t, i) => checkString(t, `${option}[${i}]`, { min: 1, max: 8192 })),
  );
}

/**
 * Each entry an absolute http(s) URL of a host and optional port, nothing else. A copy is kept
 * (frozen), read index by index (holes refused). A bad entry is named by its index only: it may
 * hold a password.
 */
function checkAllowedEndpoints(list: unknown): readonly string[] {
  if (!Array.isArray(list)) throw invalidArgument('allowedEndpoints', 'expected a list of http(s) URLs');
  return Object.freeze(
    Array.from(list as unknown[], (value, i) => {
      const option = `allowedEndpoints[${i}]`;
      const endpoint = checkString(value, option, { min: 1, max: 2048 });
      const normal = normaliseEndpoint(endpoint);
      if ('problem' in normal)
        throw invalidArgument(option, `${normal.problem}: expected http(s)://host[:port]`);
      return endpoint;
    }),
  );
}

export function checkAwsKmsOptions(options: unknown): AwsKmsProviderOptions {
  const o = checkOptions(options, 'awsKms options', KNOWN);
  // what the SDK takes as a region (a host name label); it refuses anything else only at each call,
  // with a plain Error keyport can only call Internal (a trailing space or newline, a dot, a slash)
  if (o.region !== undefined && !REGION.test(checkString(o.region, 'region', { min: 1, max: 64 })))
    throw invalidArgument('region', 'expected a region name such as eu-west-1 (letters, digits and "-")');
  if (o.endpoint !== undefined) {
    // Checked here, not at the first call: the value is only named, never shown (it may hold a
    // password, which is itself refused).
    const problem = endpointProblem(checkString(o.endpoint, 'endpoint', { min: 1, max: 2048 }));
    if (problem !== undefined) throw invalidArgument('endpoint', `${problem}: expected an http(s) URL`);
  }
  if (o.grantTokens !== undefined) o.grantTokens = checkGrantTokens(o.grantTokens);
  if (o.allowedEndpoints !== undefined) o.allowedEndpoints = checkAllowedEndpoints(o.allowedEndpoints);
  if (o.clientConfig !== undefined) {
    if (typeof o.clientConfig !== 'object' || o.clientConfig === null)
      throw invalidArgument('clientConfig', 'expected an object of KMSClient settings');
    // the adapter's clients make one attempt per call (core retries); a strategy would override that
    if ((o.clientConfig as { retryStrategy?: unknown }).retryStrategy !== undefined)
      throw invalidArgument(
        'clientConfig.retryStrategy',
        "not allowed: keyport's call policy retries (createKeyport({ retry })), an SDK strategy would multiply its attempts",
      );
  }
  return o as AwsKmsProviderOptions;
}
