/** fsync of a directory, so a rename in it survives a crash. */
import { type FileHandle, open } from 'node:fs/promises';

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
