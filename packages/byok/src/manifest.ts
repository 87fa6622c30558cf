/**
 * The BYOK manifest: a JSON file recording which HSM object is which target key version.
 * Written atomically (temporary file in the same directory, fsync, rename, fsync of the
 * directory), so a reader sees the old manifest or the new one, never half of one. Writers in
 * one process are serialised per path; separate processes must not import into the same
 * manifest at the same moment (the later rename wins).
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { KeyportError } from '@keyport/core';
import type { ByokManifest, ByokPairing } from './types.js';

export const MANIFEST_FORMAT = 'keyport-byok-manifest/1';

const queues = new Map<string, Promise<unknown>>();

function invalid(path: string, why: string, cause?: unknown): KeyportError {
  return new KeyportError('Integrity', `the BYOK manifest ${basename(path)} ${why}`, {
    provider: 'byok',
    cause,
  });
}

/** Reads a manifest; a missing file is an empty manifest. */
export async function readManifest(path: string): Promise<ByokManifest> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { format: MANIFEST_FORMAT, pairings: [] };
    throw new KeyportError('Unavailable', `the BYOK manifest ${basename(path)} cannot be read`, {
      provider: 'byok',
      cause: e,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw invalid(path, 'is not JSON', e);
  }
  const m = parsed as Partial<ByokManifest> | null;
  if (m === null || m.format !== MANIFEST_FORMAT || !Array.isArray(m.pairings)) {
    throw invalid(path, `is not a ${MANIFEST_FORMAT} document`);
  }
  // A pairing without both URIs (null, a string, a hand-edited stub) would surface later as a
  // TypeError in pairingsOf, or be carried into every rewrite: refused here, by position.
  const bad = (m.pairings as unknown[]).findIndex((p) => !isPairing(p));
  if (bad >= 0) throw invalid(path, `has a damaged pairing at position ${bad}`);
  return { format: MANIFEST_FORMAT, pairings: m.pairings };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

function isPairing(p: unknown): boolean {
  return (
    isObject(p) &&
    isObject(p.hsm) &&
    typeof p.hsm.uri === 'string' &&
    isObject(p.target) &&
    typeof p.target.uri === 'string'
  );
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (e) {
    await rm(temp, { force: true });
    throw new KeyportError('Unavailable', `the BYOK manifest ${basename(path)} cannot be written`, {
      provider: 'byok',
      cause: e,
    });
  }
  // Make the rename itself durable; some filesystems refuse fsync on directories.
  const d = await open(dir, 'r').catch(() => undefined);
  await d?.sync().catch(() => undefined);
  await d?.close();
}

/** Appends a pairing (read, add, replace atomically), serialised per manifest path. */
export function recordPairing(path: string, pairing: ByokPairing): Promise<ByokManifest> {
  const previous = queues.get(path) ?? Promise.resolve();
  const next = previous
    .catch(() => undefined)
    .then(async () => {
      const current = await readManifest(path);
      const updated: ByokManifest = { format: MANIFEST_FORMAT, pairings: [...current.pairings, pairing] };
      await writeAtomically(path, `${JSON.stringify(updated, null, 2)}\n`);
      return updated;
    });
  queues.set(path, next);
  return next.finally(() => {
    if (queues.get(path) === next) queues.delete(path);
  });
}

/** The pairings naming a key (either side), newest last. */
export function pairingsOf(manifest: ByokManifest, uri: string): ByokPairing[] {
  return manifest.pairings.filter((p) => p.hsm.uri === uri || p.target.uri === uri);
}
