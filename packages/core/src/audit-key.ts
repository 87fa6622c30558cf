/**
 * An audit key generated once and kept in a file of its own (mode 0600): 32 random bytes as
 * 64 hex digits. Creation is exclusive and atomic (`createFileExclusive`: a temp file, fsynced,
 * hard-linked into place), so two processes starting at once agree on one key and nobody ever
 * reads a half-written one. An existing key file every user may read or write is refused: with
 * it anyone on the machine could write records that verify (or decide which key that is).
 */
import { randomBytes } from 'node:crypto';
import { lstat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { readRegularFile, syncDirectory } from './audit-anchor.js';
import { MIN_AUDIT_KEY_BYTES } from './audit-record.js';
import { KeyportError } from './errors.js';
import { createFileExclusive, tempPathBeside } from './exclusive-file.js';
import { takeSecretBytes } from './secret-bytes.js';

const HEX_KEY = /^(?:[0-9a-f]{2}){32,}$/;

/** The key in `path`, created (0600) when the file does not exist yet. */
export async function loadOrCreateAuditKey(path: string): Promise<{ key: Uint8Array; created: boolean }> {
  const existing = await readRegularFile(path, 4096);
  if (existing !== undefined) {
    await refuseIfOpenToAll(path);
    return { key: parseGeneratedKey(path, existing), created: false };
  }
  const key = randomBytes(MIN_AUDIT_KEY_BYTES);
  const temp = tempPathBeside(path);
  if (!(await createFileExclusive(path, `${key.toString('hex')}\n`, temp))) {
    // Another process created it first: its key is the key.
    const theirs = await readRegularFile(path, 4096);
    if (theirs === undefined) {
      throw new KeyportError(
        'Unavailable',
        `${basename(path)} was created by another process but cannot be read`,
      );
    }
    await refuseIfOpenToAll(path);
    return { key: parseGeneratedKey(path, theirs), created: false };
  }
  await syncDirectory(dirname(path));
  return { key: takeSecretBytes(key), created: true };
}

/**
 * Why a key file of this mode may not be used, or undefined when it may: a key file others (not
 * the owner, not its group) may read or write is refused, as ssh refuses such a private key — a
 * key copied or checked out 0644 was taken silently, and let every local user forge records.
 * Group access is left alone: a log shared by a group needs it. POSIX only. The one rule for the
 * key file core generates and for one a user names (the CLI's `audit.keyFile`).
 */
export function keyFileOpenToAll(mode: number): string | undefined {
  if (process.platform === 'win32') return undefined;
  const bits = mode & 0o777;
  if ((bits & 0o006) === 0) return undefined;
  return `is mode ${bits.toString(8).padStart(4, '0')}: every user can ${bits & 0o004 ? 'read' : 'replace'} the audit key; allow no access to others (chmod 600)`;
}

async function refuseIfOpenToAll(path: string): Promise<void> {
  const why = keyFileOpenToAll((await lstat(path)).mode);
  if (why !== undefined) throw new KeyportError('InvalidArgument', `${basename(path)} ${why}`);
}

function parseGeneratedKey(path: string, text: string): Uint8Array {
  const hex = text.trim();
  if (!HEX_KEY.test(hex)) {
    throw new KeyportError(
      'InvalidArgument',
      `${basename(path)} does not hold an audit key (hex, 32+ bytes)`,
    );
  }
  return takeSecretBytes(Buffer.from(hex, 'hex'));
}
