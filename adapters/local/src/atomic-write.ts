import { createHash, randomBytes } from 'node:crypto';
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** Names this host in temp file names, so only this host's dead writers are swept. */
const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

/** A temp file name beside `path`: `<prefix>.<host>.<pid>.<random>.tmp`. */
export function tempName(path: string, prefix: string): string {
  return join(dirname(path), `${prefix}.${HOST_TAG}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Replaces `path` with `data` so that readers see either the old or the new file, never a
 * mix, even after a crash: write a temp file in the same directory, fsync it, rename it over
 * the target, then fsync the directory so the rename itself is durable.
 */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const dir = dirname(path);
  const temp = tempName(path, `.${basename(path)}`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dir);
}

/** True unless `pid` is known not to run here (EPERM: it runs, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Deletes the temp files a killed writer on this host left beside `path` (`.<name>.…tmp`
 * from writing the keystore, `<name>.lock.…tmp` from taking the lock), judged by their pid
 * no longer running. Nothing ever reads them, but each is a full sealed copy of an old keystore state:
 * left alone they pile up, and they keep key material that was destroyed since.
 */
export async function removeOrphanedTemps(path: string): Promise<void> {
  const name = basename(path);
  const pattern = new RegExp(
    `^(?:\\.${escapeRegExp(name)}|${escapeRegExp(name)}\\.lock)\\.${HOST_TAG}\\.(\\d+)\\.[0-9a-f]+\\.tmp$`,
  );
  let entries: string[];
  try {
    entries = await readdir(dirname(path));
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = Number(pattern.exec(entry)?.[1] ?? Number.NaN);
    if (Number.isSafeInteger(pid) && pid !== process.pid && !processAlive(pid)) {
      await unlink(join(dirname(path), entry)).catch(() => undefined);
    }
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function syncDirectory(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Some platforms (Windows) and file systems cannot fsync a directory; the rename is
    // still atomic there, only its durability across power loss is weaker.
  } finally {
    await handle?.close();
  }
}
