/**
 * `s3://bucket/prefix`, `azblob://account/container/prefix`, `gs://bucket/prefix` → a store
 * and a key prefix. Endpoints for emulators come from options, never from the URI.
 */
import {
  checkOptions,
  checkString,
  describeType,
  invalidArgument,
  isWellFormedString,
  KeyportError,
  quote,
} from '@keyport/core';
import { azureBlobStore } from './azure-blob.js';
import { gcsStore } from './gcs.js';
import { s3Store } from './s3.js';
import type { ObjectStore } from './store.js';

export interface StoreEndpoints {
  /** S3 endpoint override (emulators, S3-compatible stores). */
  readonly s3Endpoint?: string;
  readonly s3Region?: string;
  readonly azureConnectionString?: string;
  readonly azureAccountUrl?: string;
  readonly gcsEndpoint?: string;
  readonly gcsProjectId?: string;
  readonly partSize?: number;
}

export interface ObjectLocation {
  readonly store: ObjectStore;
  readonly prefix: string;
}

// Each provider's published naming rules: a location is refused up front, naming the rule it
// breaks, and every name the provider accepts is taken. Each returns the rule broken, or undefined.

/** Dotted-decimal IPv4 (`192.168.5.4`), which neither S3 nor Cloud Storage takes as a bucket name. */
function isIpv4(name: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(name);
  return m?.slice(1).every((octet) => Number(octet) <= 255) === true;
}

const firstOutside = (name: string, allowed: RegExp): string | undefined =>
  [...name].find((c) => !allowed.test(c));

/**
 * Amazon S3 general purpose bucket naming rules. An access point alias (`…-s3alias`) is taken:
 * S3 accepts it wherever a bucket name goes, for every call a migration makes.
 */
export function s3BucketRule(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return `must be 3 to 63 characters long (it has ${name.length})`;
  const bad = firstOutside(name, /[a-z0-9.-]/);
  if (bad !== undefined)
    return `may hold only lowercase letters, digits, dots and hyphens (it holds ${quote(bad)})`;
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return 'must begin and end with a letter or digit';
  if (name.includes('..')) return 'must not hold two adjacent dots';
  if (isIpv4(name)) return 'must not be formatted as an IP address';
  for (const reserved of ['xn--', 'sthree-', 'amzn-s3-demo-'])
    if (name.startsWith(reserved)) return `must not begin with ${quote(reserved)}, which S3 reserves`;
  const suffixes: [string, string][] = [
    ['--ol-s3', 'an Object Lambda Access Point alias, which cannot be written'],
    ['.mrap', 'a Multi-Region Access Point name'],
    ['--x-s3', 'a directory bucket (S3 Express One Zone), which has no object tags'],
    ['--table-s3', 'an S3 table bucket'],
  ];
  for (const [suffix, what] of suffixes)
    if (name.endsWith(suffix)) return `must not end with ${quote(suffix)}, which names ${what}`;
  return undefined;
}

/** Google Cloud Storage bucket naming requirements. */
export function gcsBucketRule(name: string): string | undefined {
  const bad = firstOutside(name, /[a-z0-9._-]/);
  if (bad !== undefined)
    return `may hold only lowercase letters, digits, dashes, underscores and dots (it holds ${quote(bad)})`;
  if (!name.includes('.')) {
    if (name.length < 3 || name.length > 63)
      return `must be 3 to 63 characters long, or up to 222 with dots (it has ${name.length})`;
  } else {
    if (name.length < 3 || name.length > 222)
      return `must be 3 to 222 characters long with dots (it has ${name.length})`;
    if (name.split('.').some((c) => c.length > 63))
      return 'must not have a dot-separated component longer than 63 characters';
  }
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return 'must begin and end with a letter or digit';
  // A dotted name is a domain Google verified, which has no empty label.
  if (name.includes('..')) return 'must not hold two adjacent dots (an empty dot-separated component)';
  if (isIpv4(name)) return 'must not be an IP address in dotted-decimal notation';
  if (name.startsWith('goog')) return 'must not begin with "goog"';
  if (name.includes('google') || name.includes('g00gle'))
    return 'must not contain "google" or a close misspelling such as "g00gle"';
  return undefined;
}

/** Azure storage account names. */
export function azureAccountRule(name: string): string | undefined {
  if (!/^[a-z0-9]{3,24}$/.test(name)) return 'must be 3 to 24 lowercase letters and digits';
  return undefined;
}

/** The containers Azure creates itself: the root container, analytics logs, static website. */
const AZURE_SYSTEM_CONTAINERS = new Set(['$root', '$logs', '$web']);

/** Azure Blob Storage container names. */
export function azureContainerRule(name: string): string | undefined {
  if (AZURE_SYSTEM_CONTAINERS.has(name)) return undefined;
  if (name.length < 3 || name.length > 63) return `must be 3 to 63 characters long (it has ${name.length})`;
  const bad = firstOutside(name, /[a-z0-9-]/);
  if (bad !== undefined)
    return `may hold only lowercase letters, digits and hyphens (it holds ${quote(bad)})`;
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return 'must begin and end with a letter or digit';
  if (name.includes('--')) return 'must not hold consecutive hyphens';
  return undefined;
}

/** The longest object key: 1,024 bytes of UTF-8 on S3 and Cloud Storage, 1,024 characters on Azure. */
export const MAX_KEY_LENGTH = 1024;

/**
 * The prefix is a key prefix, taken as written: object keys are arbitrary Unicode, so `..`,
 * `%2F`, `?`, `#`, control characters are just characters of the keys it matches (nothing
 * percent-decodes it, nothing resolves it as a path). Refused only when no object could be
 * matched, or another prefix would be listed: a lone surrogate (sent as U+FFFD, listing
 * another prefix), a prefix longer than any key, a line break on Cloud Storage (which refuses
 * CR and LF in object names), and on Azure a `.` or `..` segment or a backslash, which the
 * request URL rewrites (the Azure store refuses every blob name holding one).
 */
export function prefixRule(scheme: 's3' | 'azblob' | 'gs', prefix: string): string | undefined {
  if (!isWellFormedString(prefix))
    return 'must be well-formed Unicode (it holds a lone surrogate, which would be sent as U+FFFD)';
  const length = scheme === 'azblob' ? prefix.length : Buffer.byteLength(prefix, 'utf8');
  if (length > MAX_KEY_LENGTH)
    return `must not be longer than the longest object key, ${MAX_KEY_LENGTH} ${scheme === 'azblob' ? 'characters' : 'bytes'} (it has ${length})`;
  if (scheme === 'gs' && /[\r\n]/.test(prefix))
    return 'must not hold a carriage return or line feed, which Cloud Storage object names cannot';
  if (scheme === 'azblob') {
    if (prefix.includes('\\')) return 'must not hold a backslash, which Azure takes for "/"';
    // Complete segments only: `a/..` still matches `a/..x`.
    if (
      prefix
        .split('/')
        .slice(0, -1)
        .some((s) => s === '.' || s === '..')
    )
      return 'must not hold a "." or ".." segment, which the request URL would resolve away';
  }
  return undefined;
}

function refuse(uri: string, what: string, value: string, rule: string): never {
  throw new KeyportError('InvalidArgument', `bad ${what} ${quote(value)} in ${quote(uri)}: ${rule}`);
}

const STORE_ENDPOINTS = {
  s3Endpoint: true,
  s3Region: true,
  azureConnectionString: true,
  azureAccountUrl: true,
  gcsEndpoint: true,
  gcsProjectId: true,
  partSize: true,
} as const satisfies Record<keyof StoreEndpoints, true>;

/**
 * The endpoints, checked before a store is made: a misspelt one (`s3Endpont`) would send the
 * run to the provider's public service with whatever credentials the SDK finds. Unknown keys are
 * refused naming them, never echoing a value (a connection string holds an account key); the
 * part size is checked by the store it goes to.
 */
function checkEndpoints(value: unknown, option: string): StoreEndpoints {
  const o = checkOptions(value, option, STORE_ENDPOINTS);
  for (const key of Object.keys(o))
    if (key !== 'partSize')
      checkString(o[key], `${option}.${key}`, {
        min: 1,
        max: key === 'azureConnectionString' ? 65_536 : 4096,
      });
  // Its bounds are the store's (checked there); its type is checked here, by name.
  if (o.partSize !== undefined && typeof o.partSize !== 'number')
    throw invalidArgument(
      `${option}.partSize`,
      `expected a number of bytes, got ${describeType(o.partSize)}`,
    );
  return o as StoreEndpoints;
}

export function parseObjectLocation(uri: string, endpoints: StoreEndpoints = {}): ObjectLocation {
  return objectLocation(uri, endpoints, 'endpoints');
}

/** `parseObjectLocation`, naming the endpoints `option` in errors (`options.endpoints` for runShard). */
export function objectLocation(uri: string, given: unknown, option: string): ObjectLocation {
  const endpoints = checkEndpoints(given, option);
  // `s`: a prefix may hold line breaks (S3 and Azure keys may).
  const m = /^(s3|azblob|gs):\/\/([^/]*)(?:\/(.*))?$/s.exec(typeof uri === 'string' ? uri : '');
  if (m === null)
    throw new KeyportError(
      'InvalidArgument',
      `not an object location: ${quote(uri)} (s3://, azblob:// or gs://)`,
    );
  const [, scheme, first, rest = ''] = m as unknown as [
    string,
    's3' | 'azblob' | 'gs',
    string,
    string | undefined,
  ];
  if (scheme === 'azblob') {
    const slash = rest.indexOf('/');
    const container = slash < 0 ? rest : rest.slice(0, slash);
    if (first === '' || container === '')
      throw new KeyportError(
        'InvalidArgument',
        `azblob location needs azblob://account/container[/prefix]: ${quote(uri)}`,
      );
    const accountBroken = azureAccountRule(first);
    if (accountBroken !== undefined) refuse(uri, 'Azure storage account name', first, accountBroken);
    const containerBroken = azureContainerRule(container);
    if (containerBroken !== undefined) refuse(uri, 'Azure container name', container, containerBroken);
    const prefix = slash < 0 ? '' : rest.slice(slash + 1);
    const prefixBroken = prefixRule(scheme, prefix);
    if (prefixBroken !== undefined) refuse(uri, 'azblob prefix', prefix, prefixBroken);
    return {
      store: azureBlobStore({
        account: first,
        container,
        ...(endpoints.azureConnectionString !== undefined
          ? { connectionString: endpoints.azureConnectionString }
          : {}),
        ...(endpoints.azureAccountUrl !== undefined ? { accountUrl: endpoints.azureAccountUrl } : {}),
        ...(endpoints.partSize !== undefined ? { blockSize: endpoints.partSize } : {}),
      }),
      prefix,
    };
  }
  const bucketBroken = scheme === 's3' ? s3BucketRule(first) : gcsBucketRule(first);
  if (bucketBroken !== undefined)
    refuse(uri, scheme === 's3' ? 'S3 bucket name' : 'Cloud Storage bucket name', first, bucketBroken);
  const prefixBroken = prefixRule(scheme, rest);
  if (prefixBroken !== undefined) refuse(uri, `${scheme} prefix`, rest, prefixBroken);
  if (scheme === 's3') {
    return {
      store: s3Store({
        bucket: first,
        ...(endpoints.s3Endpoint !== undefined ? { endpoint: endpoints.s3Endpoint } : {}),
        ...(endpoints.s3Region !== undefined ? { region: endpoints.s3Region } : {}),
        ...(endpoints.partSize !== undefined ? { partSize: endpoints.partSize } : {}),
      }),
      prefix: rest,
    };
  }
  return {
    store: gcsStore({
      bucket: first,
      ...(endpoints.gcsEndpoint !== undefined ? { apiEndpoint: endpoints.gcsEndpoint } : {}),
      ...(endpoints.gcsProjectId !== undefined ? { projectId: endpoints.gcsProjectId } : {}),
      ...(endpoints.partSize !== undefined ? { partSize: endpoints.partSize } : {}),
    }),
    prefix: rest,
  };
}
