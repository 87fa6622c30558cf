/** What `vaultTransit(options)` takes, and the checks made before anything is sent. */
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { checkOptions as checkFields, KeyportError } from '@keyport/core';
import type NodeVault from 'node-vault';

export type VaultAuth =
  | {
      readonly method: 'token';
      readonly token: string;
      /** Renew the token before it expires (it must be renewable). Default true. */
      readonly renew?: boolean;
    }
  | {
      readonly method: 'approle';
      readonly roleId: string;
      readonly secretId?: string;
      /** Auth mount path; default `approle`. */
      readonly mount?: string;
    }
  | {
      readonly method: 'kubernetes';
      readonly role: string;
      /** The service account JWT; read from `jwtPath` when absent. */
      readonly jwt?: string;
      /** Default `/var/run/secrets/kubernetes.io/serviceaccount/token`. */
      readonly jwtPath?: string;
      /** Auth mount path; default `kubernetes`. */
      readonly mount?: string;
    };

/** TLS settings for talking to Vault over HTTPS. */
export interface VaultTlsOptions {
  /** PEM CA bundle to trust instead of the system roots. */
  readonly ca?: string | Uint8Array;
  /** Client certificate and key (cert auth, mTLS listeners). */
  readonly cert?: string | Uint8Array;
  readonly key?: string | Uint8Array;
  /** Defaults to true; turning it off is for throwaway test servers only. */
  readonly rejectUnauthorized?: boolean;
}

/**
 * A KV v2 mount where keyport keeps the labels, description and usage of transit keys (transit
 * has no place for them), at `<kvMount>/data/<prefix>/<transit mount>/<key name>`.
 */
export interface MetadataStoreOptions {
  /** A KV v2 mount, e.g. `secret`. */
  readonly kvMount: string;
  /** Path under the mount; default `keyport/keys`. */
  readonly prefix?: string;
}

export interface VaultTransitOptions {
  /** `http(s)://host:port` of the server. Key URIs name the same host:port. */
  readonly endpoint: string;
  /** How to authenticate. A bare string is a token. */
  readonly auth?: VaultAuth | string;
  /** Vault Enterprise namespace (sent as X-Vault-Namespace). */
  readonly namespace?: string;
  /** Transit mount used when a key is created by name; default `transit`. */
  readonly mount?: string;
  /**
   * Further mounts known to be transit engines. A key URI naming any other mount is used only
   * once the server has said the mount is a transit engine (one read of
   * `sys/internal/ui/mounts/<mount>` per mount); list mounts here where that read is blocked.
   */
  readonly transitMounts?: readonly string[];
  /**
   * `openbao` unlocks OpenBao-only features: disable/enable through transit soft-delete.
   * Default `vault` (the common subset).
   */
  readonly flavor?: 'vault' | 'openbao';
  readonly tls?: VaultTlsOptions;
  /**
   * An already-built node-vault client. It must already hold a token (or pass `auth`).
   * Its transport cannot take an AbortSignal, so an aborted call stops waiting at once but the
   * HTTP request itself runs to completion; build from options to get real cancellation.
   */
  readonly client?: NodeVault.client;
  /** Without it, creating a key with labels or a description is refused. */
  readonly metadataStore?: MetadataStoreOptions;
  /** Renew the token once this fraction of its lease has passed; default 2/3. */
  readonly renewAfterFraction?: number;
}

/** More mounts than a deployment plausibly has: a bound, not a policy. */
const MAX_TRANSIT_MOUNTS = 1024;
const PATH_SEGMENT = /^[A-Za-z0-9_.-]+$/;
/** A namespace name as Vault accepts one (graphic, no space, `+` or `*`), limited to what a header carries. */
const NAMESPACE_SEGMENT = /^[\x21-\x29\x2c-\x2e\x30-\x7e]+$/;

/** What construction keeps: the endpoint as a URL and a checked copy of the options. */
export interface CheckedOptions {
  readonly url: URL;
  /**
   * A frozen, prototype-free copy (its `auth`, `tls` and `metadataStore` too): what was checked
   * is what is used, even if the caller's object changes later or is a Proxy answering anew.
   */
  readonly options: VaultTransitOptions;
}

const OPTION_FIELDS = {
  endpoint: true,
  auth: true,
  namespace: true,
  mount: true,
  transitMounts: true,
  flavor: true,
  tls: true,
  client: true,
  metadataStore: true,
  renewAfterFraction: true,
} as const satisfies Record<keyof VaultTransitOptions, true>;
const AUTH_FIELDS = {
  token: { method: true, token: true, renew: true },
  approle: { method: true, roleId: true, secretId: true, mount: true },
  kubernetes: { method: true, role: true, jwt: true, jwtPath: true, mount: true },
} as const satisfies { [M in VaultAuth['method']]: Record<keyof Extract<VaultAuth, { method: M }>, true> };
const METADATA_STORE_FIELDS = { kvMount: true, prefix: true } as const satisfies Record<
  keyof MetadataStoreOptions,
  true
>;
const TLS_FIELDS = { ca: true, cert: true, key: true, rejectUnauthorized: true } as const satisfies Record<
  keyof VaultTlsOptions,
  true
>;

function bad(why: string): never {
  throw new KeyportError('InvalidArgument', `vaultTransit: ${why}`, { provider: 'hcvault' });
}

/**
 * Core's option check (the one every adapter uses): a plain object of own data properties, every
 * key known, no symbol keys, accessors or throwing proxies; an unknown key is named (quoted and
 * shortened), never its value, which may be a secret. Answers a prototype-free copy.
 */
function fields(
  value: unknown,
  option: string,
  known: Readonly<Record<string, true>>,
  extensions?: Record<string, unknown>,
): Record<string, unknown> {
  try {
    return checkFields(value, option, known, extensions);
  } catch (e) {
    if (e instanceof KeyportError) bad(e.message);
    throw e;
  }
}

/** The endpoint as a URL and the options checked; a malformed option is refused at construction, not on the first call. */
export function checkOptions(options: unknown): CheckedOptions {
  if (typeof options !== 'object' || options === null) bad('options are required');
  // A misspelt option is refused, not ignored: a misspelt `auth` would leave the call to the
  // environment's VAULT_TOKEN (another identity), a misspelt `namespace` to the root namespace.
  const o = fields(options, 'options', OPTION_FIELDS);
  const endpoint = o.endpoint;
  const url =
    typeof endpoint === 'string' && URL.canParse(endpoint) ? new URL(endpoint) : bad('endpoint is not a URL');
  if (url.protocol !== 'http:' && url.protocol !== 'https:') bad('endpoint must be http(s)://host:port');
  // Requests go to `<protocol>//<host>/v1/...` and key URIs name host:port only: a path (a proxy
  // prefix) would be dropped without a word, and credentials do not belong in a URL.
  if (url.username !== '' || url.password !== '') bad('endpoint must not carry credentials: pass auth');
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    bad('endpoint must be http(s)://host:port, without a path, query or fragment');
  }
  const fraction = o.renewAfterFraction;
  if (fraction !== undefined && !(typeof fraction === 'number' && fraction > 0 && fraction <= 1)) {
    bad('renewAfterFraction must be a number in (0, 1]');
  }
  if (o.flavor !== undefined && o.flavor !== 'vault' && o.flavor !== 'openbao') {
    bad("flavor must be 'vault' or 'openbao'");
  }
  // Paths a request is built from: a `..` segment would be folded by the URL (`transit/../sys`
  // addresses `sys`), and an empty one (`/transit`, `transit/`) makes a path no key URI can name.
  const path = (value: unknown, name: string, keyUriMount = false): void => {
    if (value === undefined) return;
    const segments = typeof value === 'string' ? value.split('/') : [];
    const ok =
      segments.length > 0 &&
      segments.every(
        (s) => PATH_SEGMENT.test(s) && s !== '.' && s !== '..' && !(keyUriMount && s === 'keys'),
      );
    if (!ok)
      bad(`${name} must be a path of letters, digits, "_", "-" and "." (no empty, "." or ".." segments)`);
  };
  path(o.mount, 'mount', true);
  const extra = o.transitMounts;
  if (extra !== undefined) {
    if (!Array.isArray(extra) || extra.length > MAX_TRANSIT_MOUNTS)
      bad(`transitMounts must be an array of at most ${MAX_TRANSIT_MOUNTS} mount paths`);
    o.transitMounts = Object.freeze(
      Array.from({ length: extra.length }, (_, i) => {
        const m: unknown = extra[i];
        if (typeof m !== 'string') bad(`transitMounts[${i}] must be a mount path`);
        path(m, `transitMounts[${i}]`, true);
        return m as string;
      }),
    );
  }
  // The namespace travels as the X-Vault-Namespace header, which the server canonicalizes with
  // path.Clean: `team/..` would silently address the root namespace; a control character (CR/LF)
  // in a header value fails every call, or smuggles a header. One trailing `/` (`admin/`, as
  // Vault's documentation writes namespaces) is read as without it and is accepted.
  const ns = o.namespace;
  if (
    ns !== undefined &&
    (typeof ns !== 'string' ||
      !ns
        .replace(/(.)\/$/, '$1')
        .split('/')
        .every((s) => NAMESPACE_SEGMENT.test(s) && s !== '.' && s !== '..'))
  ) {
    bad(
      'namespace must be a path of visible ASCII characters other than "+" and "*" (no spaces, control characters, leading "/", or empty, "." or ".." segments)',
    );
  }
  // The namespace and TLS settings are given to the client keyport builds; a client passed in is
  // used as it is, so with one they would be dropped without a word: the calls would go to the
  // client's namespace (the root one, unless set on it) over the client's TLS settings.
  if (o.client !== undefined && (ns !== undefined || o.tls !== undefined)) {
    bad('namespace and tls configure the client keyport builds: with client, set them on that client');
  }
  if (o.auth !== undefined && typeof o.auth !== 'string') o.auth = checkAuth(o.auth, path);
  // A token read from a file keeps its trailing newline: as a header value it failed every call
  // with Node's own "Invalid character in header" (Internal). The token itself is never echoed.
  const auth = o.auth as VaultAuth | string | undefined;
  const token = typeof auth === 'string' ? auth : auth?.method === 'token' ? auth.token : undefined;
  if (token !== undefined && (typeof token !== 'string' || token === '' || !/^[\x21-\x7e]+$/.test(token))) {
    bad(
      'the token must be a non-empty string of visible ASCII characters (no spaces or line breaks: trim a token read from a file)',
    );
  }
  if (o.tls !== undefined) o.tls = checkTls(o.tls);
  if (o.metadataStore !== undefined) {
    if (typeof o.metadataStore !== 'object' || o.metadataStore === null)
      bad('metadataStore must be { kvMount, prefix? }');
    const store = fields(o.metadataStore, 'metadataStore', METADATA_STORE_FIELDS);
    path(store.kvMount ?? '', 'metadataStore.kvMount');
    path(store.prefix, 'metadataStore.prefix');
    o.metadataStore = Object.freeze(store);
  }
  return { url, options: Object.freeze(o) as unknown as VaultTransitOptions };
}

/** `auth` as an object: a known method, only that method's fields, each of its type. */
function checkAuth(auth: unknown, path: (value: unknown, name: string) => void): VaultAuth {
  // Every field is read once, through core's check, before the method is looked at: a getter or
  // proxy could otherwise answer one method here and another when the client logs in.
  const given: Record<string, unknown> = Object.setPrototypeOf({}, null);
  fields(auth, 'auth', {}, given);
  const method = given.method;
  if (method !== 'token' && method !== 'approle' && method !== 'kubernetes') {
    bad("auth must be a token string or an object whose method is 'token', 'approle' or 'kubernetes'");
  }
  const a = fields(given, 'auth', AUTH_FIELDS[method]);
  const text = (name: string, optional = false) => {
    if (optional && a[name] === undefined) return;
    if (typeof a[name] !== 'string' || a[name] === '') bad(`auth.${name} must be a non-empty string`);
  };
  if (method === 'token') {
    text('token');
    if (a.renew !== undefined && typeof a.renew !== 'boolean') bad('auth.renew must be a boolean');
  }
  if (method === 'approle') {
    text('roleId');
    text('secretId', true);
  }
  if (method === 'kubernetes') {
    text('role');
    text('jwt', true);
    text('jwtPath', true);
  }
  path(a.mount, 'auth.mount');
  return Object.freeze(a) as unknown as VaultAuth;
}

/**
 * `tls` at construction: known fields of the right types, and PEM that Node can load (a CA bundle,
 * a certificate and its key), so a bad value is refused here and not by the first call's handshake.
 * The values themselves are never echoed (a key is a secret).
 */
function checkTls(tls: unknown): VaultTlsOptions {
  const t = fields(tls, 'tls', TLS_FIELDS);
  const pem: Record<string, string | Uint8Array> = {};
  for (const name of ['ca', 'cert', 'key'] as const) {
    const value = t[name];
    if (value === undefined) continue;
    if (!(typeof value === 'string' || value instanceof Uint8Array) || value.length === 0) {
      bad(`tls.${name} must be a non-empty PEM string or Uint8Array`);
    }
    pem[name] = value as string | Uint8Array;
  }
  if (t.rejectUnauthorized !== undefined && typeof t.rejectUnauthorized !== 'boolean') {
    bad('tls.rejectUnauthorized must be a boolean');
  }
  if ((pem.cert === undefined) !== (pem.key === undefined)) bad('tls.cert and tls.key go together');
  // Bytes are copied into memory of their own (never Node's shared Buffer pool) and wiped after.
  const copies: Buffer[] = [];
  const load = (v: string | Uint8Array) => {
    if (typeof v === 'string') return v;
    const copy = Buffer.from(new Uint8Array(v).buffer);
    copies.push(copy);
    return copy;
  };
  try {
    for (const name of ['ca', 'cert'] as const) {
      const value = pem[name];
      if (value !== undefined && !certificatesLoad(load(value))) {
        bad(`tls.${name} is not PEM certificates Node can load`);
      }
    }
    if (pem.cert !== undefined && pem.key !== undefined) {
      try {
        createSecureContext({ cert: load(pem.cert), key: load(pem.key) });
      } catch {
        bad('tls.key is not a PEM private key Node can load, or does not match tls.cert');
      }
    }
  } finally {
    for (const copy of copies) copy.fill(0);
  }
  return Object.freeze(t) as VaultTlsOptions;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** One or more PEM certificates, each of which parses (Node's TLS would skip text that is not PEM). */
function certificatesLoad(pem: string | Buffer): boolean {
  const blocks = (typeof pem === 'string' ? pem : pem.toString('latin1')).match(PEM_CERTIFICATE) ?? [];
  try {
    for (const block of blocks) new X509Certificate(block);
    return blocks.length > 0;
  } catch {
    return false;
  }
}
