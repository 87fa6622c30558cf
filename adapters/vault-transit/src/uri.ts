/** hcvault:// key URIs -> where the key lives on this server, and the transit API paths. */
import {
  formatBuiltInUri,
  formatKeyUri,
  KeyportError,
  type KeyRef,
  parseBuiltInUri,
  parseKeyUri,
} from '@keyport/core';

export const parseUri = (uri: string): KeyRef => parseBuiltInUri('hcvault', uri);
export const formatUri = (ref: KeyRef): string => formatBuiltInUri(ref);

/** Key names a `hcvault://` URI can carry (core's URI grammar), apart from `.` and `..`. */
export const URI_NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * Key names transit's own API takes (`framework.GenericNameRegex`; Go's `\w` is ASCII): each is a
 * name a key URI can carry. A key LIST may still answer others, from storage written around
 * transit (`sys/raw`, which dev servers enable, or a server that is not quite Vault), and transit
 * answers every request for such a name 404 "unsupported path".
 */
export const TRANSIT_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;

/** TRANSIT_NAME in words, for the errors refusing a name. */
export const TRANSIT_NAME_RULE =
  'its API takes letters, digits, "_", "-" and ".", beginning and ending with a letter, digit or "_"';

/**
 * A key URI's name that transit's API cannot address (`-lead`, `trail-`): refused before any
 * request, as transit would answer it 404 "unsupported path", which reads as NotFound.
 */
export function unaddressableName(keyUri: string | undefined): KeyportError {
  const why = `transit cannot address a key of this name (${TRANSIT_NAME_RULE})`;
  return new KeyportError('InvalidArgument', why, {
    provider: 'hcvault',
    ...(keyUri !== undefined ? { keyUri } : {}),
    retryable: false,
  });
}

const VERSION = /^[1-9][0-9]{0,14}$/;

export interface KeyLocation {
  readonly address: string;
  readonly mount: string;
  readonly name: string;
}

export interface ResolvedKey extends KeyLocation {
  readonly uri: string;
  /** Version pinned by the ref (or the URI's `?version=`). */
  readonly version: string | undefined;
}

export function resolveKey(ref: KeyRef, address: string): ResolvedKey {
  const parsed = parseKeyUri(ref.uri);
  if (parsed.scheme !== 'hcvault' || parsed.address !== address) {
    const why =
      parsed.scheme !== 'hcvault'
        ? `not an hcvault:// key URI (${parsed.scheme})`
        : `key URI names server ${parsed.address} but this provider talks to ${address}`;
    throw new KeyportError('InvalidArgument', why, { keyUri: ref.uri });
  }
  const version = ref.version ?? parsed.version;
  // A ref's version is any string to core; transit's are positive integers, and one that is not
  // would reach Vault as `key_version: null` (JSON of NaN), which transit reads as "the latest".
  if (version !== undefined && !VERSION.test(version)) {
    const why = 'transit key versions are positive integers';
    throw new KeyportError('InvalidArgument', why, { provider: 'hcvault', keyUri: ref.uri });
  }
  if (!TRANSIT_NAME.test(parsed.name)) throw unaddressableName(ref.uri);
  return {
    uri: ref.uri,
    address,
    mount: parsed.mount,
    name: parsed.name,
    version,
  };
}

export function keyUriOf(loc: KeyLocation): string {
  return formatKeyUri({ scheme: 'hcvault', address: loc.address, mount: loc.mount, name: loc.name });
}

const UTF8 = new TextEncoder();

/**
 * The URI a key listing shows for `name`: the key's URI when one can carry the name, else the
 * name's UTF-8 bytes percent-encoded but for letters, digits, `_` and `-`. That URI is printable
 * (the name is the server's text: spaces, control characters, terminal escapes), tells distinct
 * names apart (`%` is encoded too), and never parses (core's grammar has no `%` or `.`-only name),
 * so no call is made with it: a `/` or `..` in the name can never become another request path.
 */
export function listedKeyUri(address: string, mount: string, name: string): string {
  let shown = name;
  if (!URI_NAME.test(name) || /^\.\.?$/.test(name)) {
    shown = '';
    for (const byte of UTF8.encode(name)) {
      const ch = String.fromCharCode(byte);
      shown += /^[A-Za-z0-9_-]$/.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return keyUriOf({ address, mount, name: shown });
}

/** `<mount>/<op>/<name>` */
export const opPath = (key: KeyLocation, op: string): string => `${key.mount}/${op}/${key.name}`;
export const keyPath = (key: KeyLocation, suffix = ''): string => `${key.mount}/keys/${key.name}${suffix}`;
/** The identity of a key on this server, for the per-key memories. */
export const keyId = (key: KeyLocation): string => `${key.mount}/${key.name}`;
