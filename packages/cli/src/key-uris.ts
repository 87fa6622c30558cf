/**
 * Canonical key URIs. A `local://` URI names its keystore by path; a relative path means
 * different files from different directories, so it is resolved before use (flags against the
 * working directory, config defaults against the config file's directory) and the directory
 * part made real (symlinks resolved). Envelopes then record the canonical URI, which a later
 * `migrate` from anywhere matches. Other schemes are returned unchanged.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { formatKeyUri, keyUriScheme, parseKeyUri } from '@keyport/core';

/** An absolute keystore path with its directory's symlinks resolved (the file may not exist yet). */
export function canonicalKeystorePath(path: string, baseDir: string): string {
  const abs = isAbsolute(path) ? path : resolve(baseDir, path);
  try {
    return realpathSync(abs);
  } catch {
    try {
      return join(realpathSync(dirname(abs)), basename(abs));
    } catch {
      return abs;
    }
  }
}

export function canonicalKeyUri(uri: string, baseDir: string): string {
  let scheme: string;
  try {
    scheme = keyUriScheme(uri);
  } catch {
    return uri; // not a URI: the provider's parser reports it properly
  }
  if (scheme !== 'local') return uri;
  const parsed = parseKeyUri(uri);
  if (parsed.scheme !== 'local') return uri;
  const path = canonicalKeystorePath(parsed.path, baseDir);
  return path === parsed.path ? uri : formatKeyUri({ ...parsed, path });
}
