/**
 * Writing a file so that a failure or a crash never leaves a partial one in its place: write
 * a temp file in the same directory, fsync it, rename it over the target, fsync the directory.
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** fsync a directory so a rename in it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  let h: FileHandle | undefined;
  try {
    h = await open(dir, 'r');
    await h.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    await h?.close();
  }
}

/** Writes every chunk of `source` to `path` fully and durably, or leaves `path` untouched. */
export async function writeFileAtomic(
  path: string,
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  mode = 0o600,
): Promise<number> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const h = await open(tmp, 'wx', mode);
  let bytes = 0;
  try {
    for await (const chunk of source) {
      await h.write(chunk);
      bytes += chunk.length;
    }
    await h.sync();
    await h.close();
  } catch (error) {
    await h.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
  try {
    await rename(tmp, path);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
  await syncDir(dirname(path));
  return bytes;
}
