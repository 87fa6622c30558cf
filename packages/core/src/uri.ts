/**
 * Key URIs: one string names a key (and optionally a version) at any provider.
 *
 * `<scheme>[+<instance>]:<rest>`: the scheme names a driver (`aws-kms`, `hcvault`, `acme`...),
 * the optional instance selector names one of several configured instances of it (two AWS
 * accounts, two Vault clusters); `<rest>` is the driver's own grammar. Core splits the selector
 * off and hands drivers the plain `<scheme>:<rest>` form, so a driver never sees instance names
 * and every URI written before instances existed still resolves (to the scheme's default
 * instance). See packages/core/README.md.
 *
 * This module also holds the grammars of the built-in schemes (envelope, CLI and BYOK name keys
 * without a driver at hand). Every parser here accepts only the canonical form its formatter
 * writes (apart from RFC 7512 percent-encoding, which is normalised), so
 * `formatKeyUri(parseKeyUri(s)) === s` for every URI keyport prints. Anything ambiguous is
 * refused with InvalidArgument naming the part that is wrong. Credentials never belong in a
 * URI: PKCS#11 `pin-value` is refused, and so is an AWS `endpoint` naming a user or password.
 */
import { KeyportError, quote } from './errors.js';
import type { KeyRef } from './types.js';

/** Present on every parsed URI: the instance selector, when the URI names one. */
interface InstanceSelector {
  /** `prod` in `aws-kms+prod://…`; absent means the scheme's default instance. */
  readonly instance?: string;
}

export interface AwsKmsKeyUri extends InstanceSelector {
  readonly scheme: 'aws-kms';
  /** A key ARN, an alias ARN, `alias/<name>` or a bare key id. */
  readonly keyId: string;
  /** From the ARN, or from `?region=` when the key id is not an ARN. */
  readonly region?: string;
  /** Service endpoint override (emulators, VPC endpoints). */
  readonly endpoint?: string;
}

export interface AzureKeyVaultKeyUri extends InstanceSelector {
  readonly scheme: 'azurekeyvault';
  /** `<vault>.vault.azure.net`, `<hsm>.managedhsm.azure.net`, or host:port of a test server. */
  readonly vaultHost: string;
  readonly name: string;
  readonly version?: string;
}

export interface GcpKmsKeyUri extends InstanceSelector {
  readonly scheme: 'gcp-kms';
  readonly project: string;
  readonly location: string;
  readonly keyRing: string;
  readonly cryptoKey: string;
  readonly version?: string;
}

export interface VaultTransitKeyUri extends InstanceSelector {
  readonly scheme: 'hcvault';
  /** host:port of the Vault / OpenBao server. */
  readonly address: string;
  /** Transit mount path, may contain `/` (e.g. `team-a/transit`). */
  readonly mount: string;
  readonly name: string;
  readonly version?: string;
}

export interface Pkcs11KeyUri extends InstanceSelector {
  readonly scheme: 'pkcs11';
  /** RFC 7512 path attributes in their original order (decoded), without `id` and `x-version`. */
  readonly attributes: ReadonlyArray<readonly [string, string]>;
  /** CKA_ID bytes, when given. */
  readonly id?: Uint8Array;
  /** RFC 7512 query attributes in their original order (decoded): module-path, pin-source... */
  readonly query: ReadonlyArray<readonly [string, string]>;
  readonly version?: string;
}

export interface LocalKeyUri extends InstanceSelector {
  readonly scheme: 'local';
  /** Keystore file path. */
  readonly path: string;
  readonly name: string;
  readonly version?: string;
}

export type ParsedKeyUri =
  | AwsKmsKeyUri
  | AzureKeyVaultKeyUri
  | GcpKmsKeyUri
  | VaultTransitKeyUri
  | Pkcs11KeyUri
  | LocalKeyUri;

export type KeyUriScheme = ParsedKeyUri['scheme'];

export const KEY_URI_SCHEMES: readonly KeyUriScheme[] = [
  'aws-kms',
  'azurekeyvault',
  'gcp-kms',
  'hcvault',
  'pkcs11',
  'local',
];

function invalid(uri: string, part: string, why: string): never {
  // The URI names a key, not a secret, so it may appear in the message (pin-value is refused
  // before this point and never echoed).
  // `part` may be an attribute name taken from the URI: plain words as they are, anything else quoted.
  const label = /^[A-Za-z0-9-]{1,32}$/.test(part) ? part : quote(part, 32);
  throw new KeyportError('InvalidArgument', `invalid key URI (${label}): ${why}`, { keyUri: redact(uri) });
}

/**
 * Cuts anything that looks like a PIN value, or an endpoint carrying a user name or password
 * (`@`, raw or percent-encoded), out of a URI before it appears in an error.
 */
function redact(uri: string): string {
  return uri
    .replace(/([:;?&])([^:;?&=#]*)=([^;?&#]*)/g, (pair, sep: string, name: string) =>
      isPinValueName(name) ? `${sep}${name}=<redacted>` : pair,
    )
    .replace(/(endpoint=)[^&#]*(?:@|%40)[^&#]*/gi, '$1<redacted>');
}

/**
 * An attribute name that is `pin-value` once percent-decoded, in any case (`pin%2Dvalue`,
 * `%70in-value`, `PIN-VALUE`): refused as unknown, not as a PIN, since names are not decoded
 * when parsed, yet its value is a PIN all the same and must not reach the error.
 */
function isPinValueName(name: string): boolean {
  let decoded = name;
  try {
    decoded = decodeURIComponent(name);
  } catch {
    // a malformed escape: compared as written
  }
  return decoded.toLowerCase().endsWith('pin-value');
}

const NAME = /^[A-Za-z0-9_.-]+$/;
/**
 * `.` and `..` as a whole path segment: a URL resolver (fetch, Vault's router) folds them into
 * the path, so `hcvault://h/transit/keys/..` would address `/v1/transit/` rather than a key.
 */
const DOT_SEGMENT = /^\.\.?$/;
const DIGITS = /^[1-9][0-9]*$/;
const HOST_PORT = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[1-9][0-9]{0,4})?$/;

/** Splits `a=1&b=2`, refusing unknown names, duplicates and empty values. */
function parseQuery(uri: string, query: string | undefined, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (query === undefined) return out;
  if (query === '') invalid(uri, 'query', 'empty query string');
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) invalid(uri, 'query', `parameter without a name or value`);
    const name = part.slice(0, eq);
    const raw = part.slice(eq + 1);
    if (!allowed.includes(name))
      invalid(uri, 'query', `unknown parameter ${quote(name)} (allowed: ${allowed.join(', ')})`);
    if (out.has(name)) invalid(uri, 'query', `parameter ${quote(name)} given twice`);
    let value: string;
    try {
      value = decodeURIComponent(raw);
    } catch {
      invalid(uri, 'query', `parameter ${quote(name)} is not valid percent-encoding`);
    }
    if (value === '') invalid(uri, 'query', `parameter ${quote(name)} is empty`);
    if (encodeQueryValue(value) !== raw)
      invalid(uri, 'query', `parameter ${quote(name)} is not in canonical encoding`);
    out.set(name, value);
  }
  return out;
}

function encodeQueryValue(value: string): string {
  return encodeURIComponent(value).replace(/%3A/g, ':').replace(/%2F/g, '/');
}

function formatQuery(pairs: ReadonlyArray<readonly [string, string | undefined]>): string {
  const parts = pairs
    .filter((p): p is [string, string] => p[1] !== undefined)
    .map(([k, v]) => `${k}=${encodeQueryValue(v)}`);
  return parts.length === 0 ? '' : `?${parts.join('&')}`;
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

// ---------------------------------------------------------------- aws-kms

const AWS_REGION = /^[a-z]{2}(?:-[a-z]+)+-[0-9]+$/;
const AWS_ARN = /^arn:(aws[a-z-]*):kms:([a-z0-9-]+):([0-9]{12}):(key\/[A-Za-z0-9-]+|alias\/[A-Za-z0-9/_-]+)$/;
const AWS_KEY_ID = /^(?:[A-Za-z0-9-]+|alias\/[A-Za-z0-9/_-]+)$/;

function parseAws(uri: string, rest: string): AwsKmsKeyUri {
  const [keyId, query] = splitOnce(rest, '?');
  const params = parseQuery(uri, query, ['region', 'endpoint']);
  if (keyId === '') invalid(uri, 'key', 'missing key ARN, alias or key id');
  const arn = AWS_ARN.exec(keyId);
  let region = params.get('region');
  if (arn) {
    if (region !== undefined)
      invalid(uri, 'region', 'region is given by the ARN; ?region= would be ambiguous');
    region = arn[2];
  } else if (keyId.startsWith('arn:')) {
    invalid(
      uri,
      'key',
      'malformed KMS ARN (arn:<partition>:kms:<region>:<account>:key/<id> or alias/<name>)',
    );
  } else if (!AWS_KEY_ID.test(keyId)) {
    invalid(uri, 'key', 'expected a key ARN, alias/<name> or a key id');
  }
  if (region !== undefined && !AWS_REGION.test(region)) invalid(uri, 'region', 'not an AWS region name');
  const endpoint = params.get('endpoint');
  if (endpoint?.includes('@')) {
    invalid(
      uri,
      'endpoint',
      'no user name or password: credentials never go into a URI; give them to the provider',
    );
  }
  if (endpoint !== undefined && !/^https?:\/\/[^\s/?#@]+\/?$/.test(endpoint)) {
    invalid(uri, 'endpoint', 'expected http(s)://host[:port]');
  }
  return {
    scheme: 'aws-kms',
    keyId,
    ...(region !== undefined ? { region } : {}),
    ...(endpoint !== undefined ? { endpoint } : {}),
  };
}

function formatAws(k: AwsKmsKeyUri): string {
  const fromArn = k.keyId.startsWith('arn:');
  return `aws-kms://${k.keyId}${formatQuery([
    ['region', fromArn ? undefined : k.region],
    ['endpoint', k.endpoint],
  ])}`;
}

// ---------------------------------------------------------------- azurekeyvault

const AZURE_NAME = /^[A-Za-z0-9-]{1,127}$/;
const AZURE_VERSION = /^[A-Za-z0-9]{1,64}$/;

function parseAzure(uri: string, rest: string): AzureKeyVaultKeyUri {
  if (rest.includes('?') || rest.includes('#'))
    invalid(uri, 'path', 'Key Vault URIs take no query or fragment');
  const parts = rest.split('/');
  const [host, keys, name, version, ...extra] = parts;
  if (!host || !HOST_PORT.test(host)) invalid(uri, 'vault', 'expected <vault>.vault.azure.net or host:port');
  if (keys !== 'keys') invalid(uri, 'path', 'expected /keys/<name>[/<version>]');
  if (name === undefined || !AZURE_NAME.test(name))
    invalid(uri, 'name', 'key names are 1-127 letters, digits or dashes');
  if (extra.length > 0) invalid(uri, 'path', 'unexpected segments after the version');
  if (version !== undefined && !AZURE_VERSION.test(version)) invalid(uri, 'version', 'expected a version id');
  return { scheme: 'azurekeyvault', vaultHost: host, name, ...(version !== undefined ? { version } : {}) };
}

function formatAzure(k: AzureKeyVaultKeyUri): string {
  return `azurekeyvault://${k.vaultHost}/keys/${k.name}${k.version !== undefined ? `/${k.version}` : ''}`;
}

// ---------------------------------------------------------------- gcp-kms

const GCP_PROJECT = /^[A-Za-z0-9.:_-]{1,100}$/;
const GCP_ID = /^[A-Za-z0-9_-]{1,63}$/;

function parseGcp(uri: string, rest: string): GcpKmsKeyUri {
  if (rest.includes('?') || rest.includes('#'))
    invalid(uri, 'path', 'Cloud KMS URIs take no query or fragment');
  const s = rest.split('/');
  const expect = (i: number, word: string): void => {
    if (s[i] !== word) invalid(uri, 'path', `expected "${word}" as segment ${i + 1}`);
  };
  expect(0, 'projects');
  expect(2, 'locations');
  expect(4, 'keyRings');
  expect(6, 'cryptoKeys');
  const [, project, , location, , keyRing, , cryptoKey] = s;
  if (!project || !GCP_PROJECT.test(project) || DOT_SEGMENT.test(project))
    invalid(uri, 'project', 'malformed project id');
  if (!location || !GCP_ID.test(location)) invalid(uri, 'location', 'malformed location');
  if (!keyRing || !GCP_ID.test(keyRing)) invalid(uri, 'keyRing', 'malformed key ring id');
  if (!cryptoKey || !GCP_ID.test(cryptoKey)) invalid(uri, 'cryptoKey', 'malformed crypto key id');
  let version: string | undefined;
  if (s.length > 8) {
    expect(8, 'cryptoKeyVersions');
    version = s[9];
    if (version === undefined || !DIGITS.test(version))
      invalid(uri, 'version', 'crypto key versions are positive integers');
    if (s.length > 10) invalid(uri, 'path', 'unexpected segments after the version');
  }
  return {
    scheme: 'gcp-kms',
    project,
    location,
    keyRing,
    cryptoKey,
    ...(version !== undefined ? { version } : {}),
  };
}

function formatGcp(k: GcpKmsKeyUri): string {
  const base = `gcp-kms://${gcpResourceName(k)}`;
  return k.version === undefined ? base : `${base}/cryptoKeyVersions/${k.version}`;
}

/** The Cloud KMS resource name (without a version) of a parsed URI. */
export function gcpResourceName(k: GcpKmsKeyUri): string {
  return `projects/${k.project}/locations/${k.location}/keyRings/${k.keyRing}/cryptoKeys/${k.cryptoKey}`;
}

// ---------------------------------------------------------------- hcvault

const MOUNT_SEGMENT = /^[A-Za-z0-9_.-]+$/;

function parseVault(uri: string, rest: string): VaultTransitKeyUri {
  const [path, query] = splitOnce(rest, '?');
  const params = parseQuery(uri, query, ['version']);
  const segments = path.split('/');
  const address = segments.shift();
  if (!address || !HOST_PORT.test(address)) invalid(uri, 'address', 'expected host:port of the Vault server');
  // The name is the last segment and "keys" the one before it; a key may itself be named "keys".
  const keysAt = segments.length - 2;
  if (keysAt < 1 || segments[keysAt] !== 'keys') invalid(uri, 'path', 'expected /<mount>/keys/<name>');
  if (segments.indexOf('keys') !== keysAt) invalid(uri, 'mount', 'a mount containing "keys" is ambiguous');
  const mountSegments = segments.slice(0, keysAt);
  if (!mountSegments.every((m) => MOUNT_SEGMENT.test(m) && !DOT_SEGMENT.test(m)))
    invalid(uri, 'mount', 'malformed mount path ("." and ".." segments included)');
  const name = segments[keysAt + 1];
  if (!name || !NAME.test(name)) invalid(uri, 'name', 'key names are letters, digits, "_", "-" or "."');
  if (DOT_SEGMENT.test(name)) invalid(uri, 'name', 'a key cannot be named "." or ".."');
  const version = params.get('version');
  if (version !== undefined && !DIGITS.test(version))
    invalid(uri, 'version', 'transit versions are positive integers');
  return {
    scheme: 'hcvault',
    address,
    mount: mountSegments.join('/'),
    name,
    ...(version !== undefined ? { version } : {}),
  };
}

function formatVault(k: VaultTransitKeyUri): string {
  return `hcvault://${k.address}/${k.mount}/keys/${k.name}${formatQuery([['version', k.version]])}`;
}

// ---------------------------------------------------------------- pkcs11 (RFC 7512)

const PKCS11_PATH_ATTRS = [
  'token',
  'manufacturer',
  'serial',
  'model',
  'library-manufacturer',
  'library-description',
  'library-version',
  'object',
  'type',
  'id',
  'slot-description',
  'slot-manufacturer',
  'slot-id',
  'x-version',
];
const PKCS11_QUERY_ATTRS = ['pin-source', 'module-name', 'module-path'];
/** RFC 7512 `pk11-res-avail` / `pk11-qchar` minus the separators: bytes that need no escape. */
const PK11_PATH_SAFE = /[A-Za-z0-9\-._~:[\]@!$'()*+,=&]/;
const PK11_QUERY_SAFE = /[A-Za-z0-9\-._~:[\]@!$'()*+,=/?|;]/;

const UTF8 = new TextEncoder();

function pctDecodeBytes(uri: string, part: string, s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] as string;
    if (ch === '%') {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) invalid(uri, part, 'bad percent-encoding');
      out.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      out.push(...UTF8.encode(ch));
    }
  }
  return Uint8Array.from(out);
}

function pctEncode(bytes: Uint8Array, safe: RegExp, forceHex: boolean): string {
  let out = '';
  for (const b of bytes) {
    const ch = String.fromCharCode(b);
    out += !forceHex && b < 0x80 && safe.test(ch) ? ch : `%${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

function utf8Text(uri: string, part: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return invalid(uri, part, 'value is not UTF-8');
  }
}

function parsePkcs11(uri: string, rest: string): Pkcs11KeyUri {
  const [path, query] = splitOnce(rest, '?');
  const attributes: Array<[string, string]> = [];
  let id: Uint8Array | undefined;
  let version: string | undefined;
  const seen = new Set<string>();
  if (path !== '') {
    for (const attr of path.split(';')) {
      const [name, raw] = splitOnce(attr, '=');
      if (raw === undefined || name === '')
        invalid(uri, 'path', 'attributes are name=value separated by ";"');
      if (!PKCS11_PATH_ATTRS.includes(name)) invalid(uri, name, 'unknown RFC 7512 path attribute');
      if (seen.has(name)) invalid(uri, name, 'attribute given twice');
      seen.add(name);
      const bytes = pctDecodeBytes(uri, name, raw);
      if (name === 'id') id = bytes;
      else if (name === 'x-version') {
        version = utf8Text(uri, name, bytes);
        if (!DIGITS.test(version)) invalid(uri, 'x-version', 'versions are positive integers');
      } else attributes.push([name, utf8Text(uri, name, bytes)]);
    }
  }
  const q: Array<[string, string]> = [];
  if (query !== undefined) {
    for (const attr of query.split('&')) {
      const [name, raw] = splitOnce(attr, '=');
      if (name === 'pin-value')
        invalid(uri, 'pin-value', 'PINs never go in a URI; use pin-source or the adapter options');
      if (raw === undefined || name === '')
        invalid(uri, 'query', 'attributes are name=value separated by "&"');
      if (!PKCS11_QUERY_ATTRS.includes(name)) invalid(uri, name, 'unknown RFC 7512 query attribute');
      if (seen.has(name)) invalid(uri, name, 'attribute given twice');
      seen.add(name);
      q.push([name, utf8Text(uri, name, pctDecodeBytes(uri, name, raw))]);
    }
  }
  if (!seen.has('object') && id === undefined) invalid(uri, 'object', 'a key URI needs object= or id=');
  return {
    scheme: 'pkcs11',
    attributes,
    ...(id !== undefined ? { id } : {}),
    query: q,
    ...(version !== undefined ? { version } : {}),
  };
}

function formatPkcs11(k: Pkcs11KeyUri): string {
  const path = k.attributes.map(([n, v]) => `${n}=${pctEncode(UTF8.encode(v), PK11_PATH_SAFE, false)}`);
  if (k.id !== undefined) path.push(`id=${pctEncode(k.id, PK11_PATH_SAFE, true)}`);
  if (k.version !== undefined) path.push(`x-version=${k.version}`);
  const query = k.query.map(([n, v]) => `${n}=${pctEncode(UTF8.encode(v), PK11_QUERY_SAFE, false)}`);
  return `pkcs11:${path.join(';')}${query.length > 0 ? `?${query.join('&')}` : ''}`;
}

/** A PKCS#11 path attribute's value, if present. */
export function pkcs11Attribute(k: Pkcs11KeyUri, name: string): string | undefined {
  return k.attributes.find(([n]) => n === name)?.[1] ?? k.query.find(([n]) => n === name)?.[1];
}

// ---------------------------------------------------------------- local

function parseLocal(uri: string, rest: string): LocalKeyUri {
  const [beforeHash, name] = splitOnce(rest, '#');
  if (name === undefined) invalid(uri, 'name', 'expected local://<keystore-path>#<key name>');
  if (!NAME.test(name)) invalid(uri, 'name', 'key names are letters, digits, "_", "-" or "."');
  const [rawPath, query] = splitOnce(beforeHash, '?');
  const params = parseQuery(uri, query, ['version']);
  if (rawPath === '') invalid(uri, 'path', 'missing keystore path');
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    invalid(uri, 'path', 'bad percent-encoding');
  }
  if (encodeLocalPath(path) !== rawPath) invalid(uri, 'path', 'not in canonical encoding');
  // No file system takes a NUL in a path (Node refuses it with a raw TypeError at open).
  if (path.includes('\0')) invalid(uri, 'path', 'a keystore path cannot contain NUL (%00)');
  const version = params.get('version');
  if (version !== undefined && !DIGITS.test(version))
    invalid(uri, 'version', 'versions are positive integers');
  return { scheme: 'local', path, name, ...(version !== undefined ? { version } : {}) };
}

function encodeLocalPath(path: string): string {
  return encodeURIComponent(path).replace(/%2F/g, '/').replace(/%3A/g, ':').replace(/%5C/g, '\\');
}

function formatLocal(k: LocalKeyUri): string {
  return `local://${encodeLocalPath(k.path)}${formatQuery([['version', k.version]])}#${k.name}`;
}

// ---------------------------------------------------------------- instance selector

/** Instance names: what a user may call a configured driver instance. */
export const INSTANCE_NAME = /^[a-z][a-z0-9-]{0,62}$/;
const PREFIX = /^([a-z][a-z0-9.-]*)(?:\+([^:/?#]*))?:/;

/** A key URI cut into its scheme, instance selector and the driver-level URI (selector removed). */
export interface SplitKeyUri {
  readonly scheme: string;
  readonly instance?: string;
  /** `<scheme>:<rest>`: what the driver parses. */
  readonly driverUri: string;
}

export function splitKeyUri(uri: string): SplitKeyUri {
  if (typeof uri !== 'string') throw new KeyportError('InvalidArgument', 'a key URI must be a string');
  const m = PREFIX.exec(uri);
  if (!m) invalid(uri, 'scheme', 'expected <scheme>://... or <scheme>+<instance>://...');
  const scheme = m[1] as string;
  const instance = m[2];
  if (instance === undefined) return { scheme, driverUri: uri };
  if (!INSTANCE_NAME.test(instance))
    invalid(uri, 'instance', 'instance names are a lower-case letter, then letters, digits or "-"');
  return { scheme, instance, driverUri: `${scheme}:${uri.slice(m[0].length)}` };
}

/** `driverUri` with the instance selector put in (or left out when undefined). */
export function qualifyKeyUri(driverUri: string, instance: string | undefined): string {
  const { scheme, instance: had, driverUri: plain } = splitKeyUri(driverUri);
  if (had !== undefined && instance !== undefined && had !== instance)
    invalid(driverUri, 'instance', `already names instance "${had}"`);
  return instance === undefined ? plain : `${scheme}+${instance}:${plain.slice(scheme.length + 1)}`;
}

/** The instance selector of a URI, if it has one. */
export function keyUriInstance(uri: string): string | undefined {
  return splitKeyUri(uri).instance;
}

// ---------------------------------------------------------------- third-party grammars

/** A scheme's grammar as a driver provides it (every driver is one). */
export interface KeyUriGrammar {
  readonly scheme: string;
  /** Validates a driver-level URI; `version` is the version it pins, if any. */
  parseUri(uri: string): KeyRef;
  /** The canonical URI of `ref.uri`'s key pinned to `ref.version` (unpinned when undefined). */
  formatUri(ref: KeyRef): string;
}

/**
 * Grammars of schemes keyport does not ship, learnt from the drivers `Keyport` registers, so the
 * URI helpers below (used by envelopes and journals) work for them too. Only syntax lives here,
 * never a client: the first grammar for a scheme wins, built-in schemes cannot be replaced.
 */
const thirdPartyGrammars = new Map<string, KeyUriGrammar>();

export function registerKeyUriGrammar(grammar: KeyUriGrammar): void {
  if ((KEY_URI_SCHEMES as readonly string[]).includes(grammar.scheme)) return;
  if (!thirdPartyGrammars.has(grammar.scheme)) thirdPartyGrammars.set(grammar.scheme, grammar);
}

function isBuiltIn(scheme: string): scheme is KeyUriScheme {
  return (KEY_URI_SCHEMES as readonly string[]).includes(scheme);
}

// ---------------------------------------------------------------- dispatch

/** The scheme of a URI string, lower-case, without the instance selector or parsing the rest. */
export function keyUriScheme(uri: string): string {
  return splitKeyUri(uri).scheme;
}

/** Parses a URI of a built-in scheme (third-party schemes: `parseKeyRef`). */
export function parseKeyUri(uri: string): ParsedKeyUri {
  const { scheme, instance, driverUri } = splitKeyUri(uri);
  if (/\s/.test(uri)) invalid(uri, 'uri', 'whitespace is not allowed');
  const parsed = parseBuiltIn(uri, scheme, driverUri);
  return instance === undefined ? parsed : { ...parsed, instance };
}

function parseBuiltIn(uri: string, scheme: string, driverUri: string): ParsedKeyUri {
  let rest: string;
  if (scheme === 'pkcs11') rest = driverUri.slice('pkcs11:'.length);
  else {
    if (!driverUri.startsWith(`${scheme}://`)) invalid(uri, 'scheme', 'expected <scheme>://...');
    rest = driverUri.slice(scheme.length + 3);
  }
  switch (scheme) {
    case 'aws-kms':
      return parseAws(uri, rest);
    case 'azurekeyvault':
      return parseAzure(uri, rest);
    case 'gcp-kms':
      return parseGcp(uri, rest);
    case 'hcvault':
      return parseVault(uri, rest);
    case 'pkcs11':
      return parsePkcs11(uri, rest);
    case 'local':
      return parseLocal(uri, rest);
    default:
      return invalid(uri, 'scheme', `unknown scheme ${quote(scheme)} (known: ${knownSchemes().join(', ')})`);
  }
}

function knownSchemes(): string[] {
  return [...KEY_URI_SCHEMES, ...thirdPartyGrammars.keys()];
}

export function formatKeyUri(k: ParsedKeyUri): string {
  if (typeof k !== 'object' || k === null) {
    throw new KeyportError('InvalidArgument', 'formatKeyUri: expected a parsed key URI object');
  }
  return qualifyKeyUri(formatBuiltIn(k), k.instance);
}

function formatBuiltIn(k: ParsedKeyUri): string {
  switch (k.scheme) {
    case 'aws-kms':
      return formatAws(k);
    case 'azurekeyvault':
      return formatAzure(k);
    case 'gcp-kms':
      return formatGcp(k);
    case 'hcvault':
      return formatVault(k);
    case 'pkcs11':
      return formatPkcs11(k);
    case 'local':
      return formatLocal(k);
    default:
      throw new KeyportError(
        'InvalidArgument',
        `formatKeyUri: unknown scheme ${quote((k as { scheme?: unknown }).scheme)}`,
      );
  }
}

/** The version a URI pins, if any (AWS KMS has no addressable versions). */
export function keyUriVersion(k: ParsedKeyUri): string | undefined {
  return k.scheme === 'aws-kms' ? undefined : k.version;
}

/**
 * Any scheme, built-in or learnt from a registered driver: the URI validated, with the version
 * it pins. The instance selector stays in `uri`.
 */
export function parseKeyRef(uri: string): KeyRef {
  const { scheme, instance, driverUri } = splitKeyUri(uri);
  if (isBuiltIn(scheme)) {
    const version = keyUriVersion(parseKeyUri(uri));
    return version === undefined ? { uri } : { uri, version };
  }
  const grammar = thirdPartyGrammars.get(scheme);
  if (grammar === undefined)
    invalid(uri, 'scheme', `unknown scheme ${quote(scheme)} (known: ${knownSchemes().join(', ')})`);
  const ref = grammar.parseUri(driverUri);
  const qualified = qualifyKeyUri(ref.uri, instance);
  return ref.version === undefined ? { uri: qualified } : { uri: qualified, version: ref.version };
}

/** The same URI pinned to `version` (or unpinned when undefined); the instance selector is kept. */
export function withKeyVersion(uri: string, version: string | undefined): string {
  const { scheme, instance, driverUri } = splitKeyUri(uri);
  if (!isBuiltIn(scheme)) {
    const grammar = thirdPartyGrammars.get(scheme);
    if (grammar === undefined)
      invalid(uri, 'scheme', `unknown scheme ${quote(scheme)} (known: ${knownSchemes().join(', ')})`);
    const formatted = grammar.formatUri(
      version === undefined ? { uri: driverUri } : { uri: driverUri, version },
    );
    return qualifyKeyUri(formatted, instance);
  }
  const k = parseKeyUri(uri);
  if (version !== undefined && (typeof version !== 'string' || !/^[A-Za-z0-9]{1,64}$/.test(version))) {
    invalid(uri, 'version', 'expected a version string of letters and digits');
  }
  if (k.scheme === 'aws-kms') {
    if (version !== undefined) invalid(uri, 'version', 'AWS KMS keys have no addressable versions');
    return uri;
  }
  const { version: _old, ...rest } = k;
  return formatKeyUri((version === undefined ? rest : { ...rest, version }) as ParsedKeyUri);
}

/**
 * `parseUri` for a driver of a built-in scheme: the URI must be of `scheme` and carry no
 * instance selector (core strips selectors before drivers see URIs).
 */
export function parseBuiltInUri(scheme: KeyUriScheme, uri: string): KeyRef {
  const split = splitKeyUri(uri);
  if (split.scheme !== scheme) invalid(uri, 'scheme', `expected a ${scheme} key URI`);
  if (split.instance !== undefined)
    invalid(uri, 'instance', 'drivers take URIs without an instance selector');
  return parseKeyRef(uri);
}

/** `formatUri` for a driver of a built-in scheme. */
export function formatBuiltInUri(ref: KeyRef): string {
  return withKeyVersion(ref.uri, ref.version);
}
