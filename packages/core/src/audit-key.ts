/**
 * An audit key generated once and kept in a file of its own (mode 0600): 32 random bytes as
 * 64 hex digits. Creation is exclusive and atomic — written to a temp file, fsynced, then
 * hard-linked into place, which fails if the file exists — so two processes starting at once
 * agree on one key and nobody ever reads a half-written one.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, open, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readRegularFile, syncDirectory } from './audit-anchor.js';
import { MIN_AUDIT_KEY_BYTES } from './audit-record.js';
import { KeyportError } from './errors.js';

const HEX_KEY = /^(?:[0-9a-f]{2}){32,}$/;

/** The key in `path`, created (0600) when the file does not exist yet. */
export async function loadOrCreateAuditKey(path: string): Promise<{ key: Uint8Array; created: boolean }> {
  const existing = await readRegularFile(path, 4096);
  if (existing !== undefined) return { key: parseGeneratedKey(path, existing), created: false };
  const key = randomBytes(MIN_AUDIT_KEY_BYTES);
  const temp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await handle.writeFile(`${key.toString('hex')}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // Another process created it first: its key is the key.
    const theirs = await readRegularFile(path, 4096);
    if (theirs === undefined) throw e;
    return { key: parseGeneratedKey(path, theirs), created: false };
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  await syncDirectory(dirname(path));
  return { key: new Uint8Array(key), created: true };
}

function parseGeneratedKey(path: string, text: string): Uint8Array {
  const hex = text.trim();
  if (!HEX_KEY.test(hex)) {
    throw new KeyportError(
      'InvalidArgument',
      `${basename(path)} does not hold an audit key (hex, 32+ bytes)`,
    );
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
