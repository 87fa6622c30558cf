/**
 * Names the CLI derives from a user's file name (temp files, the journal's lock, its take-over
 * marker) must fit NAME_MAX: 255 bytes of UTF-8 on Linux and macOS, whatever the user's own
 * name. A name of 250 bytes is valid; the same name plus `.<random>.keyport-migrate.tmp` is
 * not, and would fail with a bare ENAMETOOLONG about a file the user never named.
 *
 * A name that fits with the decoration keeps it whole (the names earlier versions made, so
 * their leftovers and locks are still found). A name that does not is cut at a character
 * boundary (never inside a multi-byte character: the result is valid UTF-8 with no U+FFFD) and
 * followed by `~` and 8 hex digits of its SHA-256, so two long names that share their first 200
 * bytes still get prefixes of their own, and the prefix is the same every time for one name:
 * the clean-up of stale files computes it again to recognise them.
 */
import { createHash } from 'node:crypto';
import { cutUtf8, NAME_MAX } from '@keyport/core';

export { NAME_MAX };

/** `~` and 8 hex digits: what a cut name gets to stay distinct from other cut names. */
const HASH_TAG_BYTES = 9;

/**
 * `name` itself when `reserve` more bytes still fit in NAME_MAX; else its cut, `~` and 8 hex
 * digits of its hash, in `NAME_MAX - reserve` bytes at most. Deterministic: a clean-up finds
 * what a run named with it.
 */
export function fitPrefix(name: string, reserve: number): string {
  if (Buffer.byteLength(name) + reserve <= NAME_MAX) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${cutUtf8(name, NAME_MAX - reserve - HASH_TAG_BYTES)}~${hash}`;
}

/** `name` + `suffix`, with `name` shortened (fitPrefix) when the whole would exceed NAME_MAX. */
export function fitName(name: string, suffix: string): string {
  return `${fitPrefix(name, Buffer.byteLength(suffix))}${suffix}`;
}

/** A regular expression matching `s` literally. */
export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
