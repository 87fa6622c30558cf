/**
 * Building the KeyManagementServiceClient: from an already-built client, from explicit options
 * (endpoint, port, TLS, credentials), or from Application Default Credentials when nothing is
 * given. gRPC by default; `transport: 'rest'` selects the client's HTTP/JSON fallback.
 */
import type { KeyManagementServiceClient } from '@google-cloud/kms';
import { checkEnum, checkOptions, KeyportError, parseKeyUri, quote } from '@keyport/core';
import type { CapabilityOptions } from './capabilities.js';
import { boundRestAnswers } from './rest.js';
import { defined } from './rpc.js';
import { authSdk, kmsSdk } from './sdk.js';

export type KmsClientOptions = NonNullable<ConstructorParameters<typeof KeyManagementServiceClient>[0]>;

export interface GcpKmsProviderOptions extends CapabilityOptions {
  /** An already-built client; every other connection option is then ignored. The caller closes it. */
  readonly client?: KeyManagementServiceClient;
  /** `grpc` (default) or `rest` (the client's `fallback` mode, HTTP/1.1 + JSON). */
  readonly transport?: 'grpc' | 'rest';
  /** Host name of the endpoint (default `cloudkms.googleapis.com`). */
  readonly apiEndpoint?: string;
  readonly port?: number;
  /** REST only: `http` for a plain-HTTP endpoint such as a local mock (default `https`). */
  readonly protocol?: 'http' | 'https';
  /** gRPC only: channel credentials, e.g. `grpc.credentials.createInsecure()` for a local server. */
  readonly sslCreds?: KmsClientOptions['sslCreds'];
  /** A google-auth-library client (OAuth2Client, GoogleAuth, ...). Without it: ADC. */
  readonly authClient?: KmsClientOptions['authClient'];
  /** Service-account credentials (`client_email`, `private_key`). */
  readonly credentials?: KmsClientOptions['credentials'];
  readonly keyFilename?: string;
  readonly projectId?: string;
  /** Anything else the client accepts, passed through unchanged (explicit fields above win). */
  readonly clientOptions?: KmsClientOptions;
  /**
   * The key ring `createKey` puts keys named by a bare id into, and `listKeys` lists:
   * `projects/<p>/locations/<l>/keyRings/<r>`. Created on first use when it does not exist.
   */
  readonly keyRing?: string;
  /** Protection level of keys keyport creates (default SOFTWARE). */
  readonly protectionLevel?: 'SOFTWARE' | 'HSM';
  /** Import job key size (default 3072): RSA_OAEP_3072_SHA256_AES_256 or RSA_OAEP_4096_SHA256_AES_256. */
  readonly importJobKeyBits?: 3072 | 4096;
  /** Extra request metadata sent on every call (e.g. `x-goog-user-project`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Name shown in audit events and errors (default `gcp-kms`). */
  readonly name?: string;
}

const KEY_RING = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[A-Za-z0-9_-]{1,63}$/;

/**
 * A key ring every key URI inside it can name: the project, location and ring segments follow the
 * `gcp-kms://` grammar (no `.`/`..` segments, no `?`, `#`, `%`, spaces), so a hostile `keyRing`
 * cannot steer a REST path elsewhere nor create keys keyport could not address afterwards.
 */
function isKeyRing(keyRing: unknown): boolean {
  if (typeof keyRing !== 'string' || !KEY_RING.test(keyRing)) return false;
  try {
    parseKeyUri(`gcp-kms://${keyRing}/cryptoKeys/k`);
    return true;
  } catch {
    return false;
  }
}

const OPTION_FIELDS = {
  client: true,
  transport: true,
  apiEndpoint: true,
  port: true,
  protocol: true,
  sslCreds: true,
  authClient: true,
  credentials: true,
  keyFilename: true,
  projectId: true,
  clientOptions: true,
  keyRing: true,
  protectionLevel: true,
  importJobKeyBits: true,
  headers: true,
  name: true,
  dataKeys: true,
} as const satisfies Record<keyof GcpKmsProviderOptions, true>;

/**
 * The options a careless caller can get wrong, checked when the provider is built (not on first
 * call). Returns the checked copy, which is what the provider keeps: a Proxy given as options
 * cannot answer differently after the check.
 */
export function checkGcpKmsOptions(options: unknown): GcpKmsProviderOptions {
  // A misspelt option is refused, not ignored: a misspelt `apiEndpoint` would send requests (and
  // credentials) to Google's production endpoint, a misspelt `keyRing` leave createKey without one.
  // Core's check names the key (never its value) and refuses accessors, symbol keys and objects
  // that are not plain (a getter would run caller code and could answer differently each read).
  const o = checkOptions(options, 'gcpKms options', OPTION_FIELDS) as GcpKmsProviderOptions;
  const { keyRing, transport, protectionLevel, importJobKeyBits, dataKeys } = o;
  if (keyRing !== undefined && !isKeyRing(keyRing)) {
    throw new KeyportError('InvalidArgument', 'keyRing must be projects/<p>/locations/<l>/keyRings/<r>');
  }
  if (transport !== undefined) checkEnum(transport, 'options.transport', ['grpc', 'rest']);
  if (protectionLevel !== undefined)
    checkEnum(protectionLevel, 'options.protectionLevel', ['SOFTWARE', 'HSM']);
  if (dataKeys !== undefined) checkEnum(dataKeys, 'options.dataKeys', ['emulated', 'none']);
  if (importJobKeyBits !== undefined && importJobKeyBits !== 3072 && importJobKeyBits !== 4096) {
    throw new KeyportError('InvalidArgument', 'importJobKeyBits is 3072 or 4096');
  }
  if (o.headers !== undefined) return { ...o, headers: checkHeaders(o.headers) };
  return o;
}

/** An HTTP field name (RFC 9110 token), which gRPC metadata keys are too. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/;
/** Visible characters, spaces and tabs: no CR, LF or NUL that would end or split the header. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\uffff]{0,8192}$/;

/**
 * The `headers` option, copied once into a frozen, prototype-free record of checked strings. It
 * is sent with every call: a getter in it would run (and could answer anew) on each one, and a
 * CR or LF in a value would split the header (REST) or fail every call (gRPC). Names are shown
 * in errors, values never (a header may carry a token).
 */
function checkHeaders(value: unknown): Readonly<Record<string, string>> {
  const entries: Record<string, unknown> = Object.create(null);
  checkOptions(value, 'options.headers', {}, entries);
  const out: Record<string, string> = Object.create(null);
  for (const [name, v] of Object.entries(entries)) {
    if (!HEADER_NAME.test(name))
      throw new KeyportError('InvalidArgument', `options.headers: ${quote(name)} is not a header name`);
    if (name.toLowerCase().endsWith('-bin'))
      throw new KeyportError(
        'InvalidArgument',
        `options.headers: ${quote(name)}: binary (-bin) metadata is not supported`,
      );
    if (typeof v !== 'string' || !HEADER_VALUE.test(v))
      throw new KeyportError(
        'InvalidArgument',
        `options.headers: ${quote(name)}: expected a string without CR, LF or other control characters, at most 8192 characters`,
      );
    out[name] = v;
  }
  return Object.freeze(out);
}

/**
 * The largest answer the client takes (64 MiB). google-gax turns grpc-js's 4 MiB limit off (-1),
 * and its REST fallback reads each answer whole with no limit, so a hostile or broken endpoint
 * could make the client buffer gigabytes for one answer; Cloud KMS's largest answers (a page of
 * 1,000 keys with 64 labels each) are a few MiB. grpc-js refuses a longer answer from its length
 * prefix, before buffering it; over REST see rest.ts. `clientOptions` may set another
 * `grpc.max_receive_message_length`.
 */
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/**
 * Builds the client the options describe (no `client` given), loading `@google-cloud/kms` first.
 * The provider owns, and closes, the client built here.
 */
export async function buildClient(options: GcpKmsProviderOptions): Promise<KeyManagementServiceClient> {
  const rest = options.transport === 'rest';
  const { apiEndpoint, port, authClient, credentials, keyFilename, projectId, protocol, sslCreds } = options;
  const opts: KmsClientOptions = {
    ...(!rest && { 'grpc.max_receive_message_length': MAX_ANSWER_BYTES }),
    ...options.clientOptions,
    ...defined({ apiEndpoint, port, authClient, credentials, keyFilename, projectId }),
    ...(rest ? { fallback: true, ...defined({ protocol }) } : defined({ sslCreds })),
  };
  // Over REST the answer-size limit goes on the GoogleAuth the client fetches through, which must
  // be keyport's own: the one the client makes when it is given no auth, or one around a given
  // `authClient` (as the gRPC client does with it), never the caller's object. A GoogleAuth given
  // as `clientOptions.auth` is the caller's, used as it is.
  const bound = rest && opts.auth === undefined;
  if (bound && opts.authClient !== undefined) {
    const { GoogleAuth } = await authSdk.load();
    opts.auth = new GoogleAuth({ authClient: opts.authClient, ...defined({ projectId: opts.projectId }) });
  }
  const { KeyManagementServiceClient: Client } = await kmsSdk.load();
  const client = new Client(opts);
  if (bound) boundRestAnswers(client.auth, MAX_ANSWER_BYTES);
  return client;
}
