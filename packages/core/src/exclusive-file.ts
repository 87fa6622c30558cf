/**
 * Creating a file exclusively and whole, for the locks and keys that processes race to create.
 * The content goes to `temp` first (created exclusively, mode 0600, fsynced), which is then
 * hard-linked to `path`: link(2) fails with EEXIST like O_EXCL and never replaces, so `path`
 * appears with its whole content or not at all. A writer killed midway leaves no empty or
 * half-written file at `path`, only its temp, which callers name so they can recognise it.
 * File systems without hard links (link fails with EPERM, ENOTSUP or EOPNOTSUPP) fall back to an
 * exclusive create of `path` and a write.
 */
import { randomBytes } from 'node:crypto';
import { link, open, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP']);

/** The longest file name (one path component), in bytes, on Linux and macOS file systems. */
export const NAME_MAX = 255;

/** The longest prefix of `s` of at most `maxBytes` bytes of UTF-8, cut between code points. */
export function cutUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s) <= maxBytes) return s;
  let bytes = 0;
  let end = 0;
  // Iterating a string yields whole code points (a surrogate pair is one), never half of one.
  for (const ch of s) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > maxBytes) break;
    bytes += n;
    end += ch.length;
  }
  return s.slice(0, end);
}

/**
 * A fresh temp name beside `path` (same directory, so a link or rename stays on one file system):
 * `.<name>.tmp-<pid>-<random>`, hidden, and recognisable as a leftover of `path`. A name too long
 * for that decoration is cut (between characters) so the temp fits NAME_MAX: a valid 250-byte
 * name must not fail with ENAMETOOLONG over a file its user never named. The pid and random part
 * keep cut names unique.
 */
export function tempPathBeside(path: string): string {
  const suffix = `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  const name = cutUtf8(basename(path), NAME_MAX - 1 - suffix.length);
  return join(dirname(path), `.${name}${suffix}`);
}

function errnoOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as NodeJS.ErrnoException).code : undefined;
}

/** Creates `path` exclusively and writes it; `onCreated` runs once the file is ours. */
async function writeNew(path: string, content: string | Uint8Array, onCreated?: () => void): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  onCreated?.();
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Creates `path` holding `content`, by way of `temp` (removed afterwards; a `temp` that already
 * exists is someone else's: the call fails with EEXIST and leaves it). Resolves false when `path`
 * already exists; any other failure is thrown as it came, for the caller to name.
 */
export async function createFileExclusive(
  path: string,
  content: string | Uint8Array,
  temp: string,
): Promise<boolean> {
  let ownTemp = false;
  try {
    await writeNew(temp, content, () => {
      ownTemp = true;
    });
    try {
      await link(temp, path);
      return true;
    } catch (error) {
      if (errnoOf(error) === 'EEXIST') return false;
      if (!NO_HARD_LINKS.has(errnoOf(error) ?? '')) throw error;
    }
    try {
      await writeNew(path, content);
      return true;
    } catch (error) {
      if (errnoOf(error) === 'EEXIST') return false;
      throw error;
    }
  } finally {
    if (ownTemp) await unlink(temp).catch(() => undefined);
  }
}
