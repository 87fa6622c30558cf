/**
 * The BYOK manifest: a JSON file recording which HSM object is which target key version.
 * Written atomically (temporary file in the same directory, fsync, rename, fsync of the
 * directory), so a reader sees the old manifest or the new one, never half of one. An update
 * (read, add, write) holds `<manifest>.lock` across processes and re-reads the manifest under it,
 * so writers in separate processes each add their pairing rather than the later rename dropping
 * the other's; writers in one process also queue per path, so they do not poll that lock.
 *
 * Besides the pairings, `pending` holds imports sent but not yet recorded (see
 * `ByokPendingImport`): `importHsmKey` writes one before `importKeyMaterial` and replaces it with
 * the pairing after, so a process killed in between leaves a record a rerun can finish.
 * `generating` holds the HSM keys it generates for a target (see `ByokHsmKeyIntent`): written
 * before the generation and dropped with the target's pairing, so a rerun takes the key it
 * generated rather than meeting its name taken.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, lstat, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import {
  acquireFileLock,
  checkOptions,
  checkSignal,
  cutUtf8,
  describeType,
  type FileLock,
  IMPORT_WRAPPING_ALGORITHMS,
  invalidArgument,
  KeyportError,
  NAME_MAX,
  quote,
} from '@keyport/core';
import type { ByokHsmKeyIntent, ByokManifest, ByokPairing, ByokPendingImport } from './types.js';

export const MANIFEST_FORMAT = 'keyport-byok-manifest/1';

const queues = new Map<string, Promise<unknown>>();

function invalid(path: string, why: string, cause?: unknown): KeyportError {
  return new KeyportError('Integrity', `the BYOK manifest ${basename(path)} ${why}`, {
    provider: 'byok',
    cause,
  });
}

/**
 * A manifest path as every entry point takes it. Without this check `undefined` or a number was a
 * TypeError from node:fs rather than a KeyportError, and '' read as an empty manifest (a caller
 * asking whether a pairing is recorded was told no) or failed to write as "the BYOK manifest  cannot
 * be written".
 */
function checkPath(path: unknown): asserts path is string {
  if (typeof path !== 'string' || path === '') throw invalidArgument('path', 'expected a file path');
  // `m.json/` cannot name a file: read as missing (an empty manifest, whatever m.json holds), it
  // told a rerun nothing was recorded, and failed only at the first write.
  if (path.endsWith('/') || path.endsWith(sep))
    throw invalidArgument('path', 'expected a file path, not one ending in a path separator');
}

/** Reads a manifest; a missing file is an empty manifest. */
export async function readManifest(path: string): Promise<ByokManifest> {
  checkPath(path);
  const text = await readManifestText(path);
  if (text === undefined) return { format: MANIFEST_FORMAT, pairings: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not the SyntaxError as cause: V8 quotes the text around the fault ("a3f9c0d1e2"...), and a
    // manifestPath naming the wrong file (a key file) would put its bytes into the error.
    throw invalid(path, 'is not JSON');
  }
  // JSON.parse takes any depth; JSON.stringify recurses, and the next update's write would throw
  // a RangeError (not a KeyportError) on a manifest nested past the stack. keyport nests 3 deep.
  if (deeperThan(parsed, MAX_DEPTH)) throw invalid(path, `is nested deeper than ${MAX_DEPTH} levels`);
  const m = parsed as Partial<ByokManifest> | null;
  if (m === null || m.format !== MANIFEST_FORMAT || !Array.isArray(m.pairings)) {
    throw invalid(path, `is not a ${MANIFEST_FORMAT} document`);
  }
  // A pairing without both URIs (null, a string, a hand-edited stub) would surface later as a
  // TypeError in pairingsOf, or be carried into every rewrite: refused here, by position.
  const bad = (m.pairings as unknown[]).findIndex((p) => !isPairing(p));
  if (bad >= 0) throw invalid(path, `has a damaged pairing at position ${bad}`);
  const pending: unknown = m.pending;
  if (pending !== undefined) {
    if (!Array.isArray(pending)) throw invalid(path, 'has a damaged pending list');
    const badPending = pending.findIndex((p) => !isPending(p));
    if (badPending >= 0) throw invalid(path, `has a damaged pending import at position ${badPending}`);
  }
  const generating: unknown = m.generating;
  if (generating !== undefined) {
    if (!Array.isArray(generating)) throw invalid(path, 'has a damaged generating list');
    const badIntent = generating.findIndex((g) => !isIntent(g));
    if (badIntent >= 0) throw invalid(path, `has a damaged generating entry at position ${badIntent}`);
  }
  return manifestOf(
    m.pairings,
    (pending as ByokPendingImport[] | undefined) ?? [],
    (generating as ByokHsmKeyIntent[] | undefined) ?? [],
  );
}

/**
 * `pending` and `generating` only when there is one: a manifest without interrupted imports keeps
 * its old shape.
 */
const manifestOf = (
  pairings: readonly ByokPairing[],
  pending: readonly ByokPendingImport[],
  generating: readonly ByokHsmKeyIntent[],
): ByokManifest => ({
  format: MANIFEST_FORMAT,
  pairings,
  ...(pending.length > 0 ? { pending } : {}),
  ...(generating.length > 0 ? { generating } : {}),
});

/** A manifest larger than this is not one keyport wrote (a pairing is under 1 KiB). */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

/** Deepest nesting a manifest may have: keyport's own is 3, hand-added fields get room. */
const MAX_DEPTH = 64;

/** Whether `value` nests arrays or objects deeper than `max`; iterative, so any depth is judged. */
function deeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [v, depth] = item;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= max) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

const unreadable = (path: string, cause: unknown): KeyportError =>
  new KeyportError('Unavailable', `the BYOK manifest ${basename(path)} cannot be read`, {
    provider: 'byok',
    cause,
  });

/**
 * The manifest's text, or undefined when there is none. Only a regular file of bounded size is
 * read: a FIFO would block the import forever and /dev/zero would fill the memory. Bytes that
 * are not UTF-8 are refused rather than replaced, since the rewrite would save the replacement.
 */
async function readManifestText(path: string): Promise<string | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    // ENOTDIR: a component of the path is a file, so there is no manifest there either.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw unreadable(path, e);
  }
  try {
    const s = await handle.stat();
    if (!s.isFile()) {
      throw new KeyportError(
        'InvalidArgument',
        `the BYOK manifest ${basename(path)} is not a regular file (a directory, FIFO or device)`,
        { provider: 'byok' },
      );
    }
    if (s.size > MAX_MANIFEST_BYTES) throw invalid(path, `is larger than ${MAX_MANIFEST_BYTES} bytes`);
    const buffer = Buffer.alloc(s.size + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0).catch((e: unknown) => {
      throw unreadable(path, e);
    });
    if (bytesRead > MAX_MANIFEST_BYTES) throw invalid(path, `is larger than ${MAX_MANIFEST_BYTES} bytes`);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(0, bytesRead));
    } catch (e) {
      throw invalid(path, 'is not UTF-8 text', e);
    }
  } finally {
    await handle.close();
  }
}

/**
 * The manifest can be written: its directory exists and is writable. Checked before an import,
 * so a misspelt directory is refused while the target is untouched, not after it holds material
 * whose pairing then has nowhere to go.
 */
/**
 * Refuses a manifest path that is a symbolic link: the manifest is replaced by a rename, which
 * replaces the link itself with a regular file, so the file it pointed to (a manifest shared
 * through the link) would silently stop receiving pairings.
 */
async function refuseLink(path: string): Promise<void> {
  const isLink = await lstat(path).then(
    (s) => s.isSymbolicLink(),
    () => false,
  );
  if (isLink) {
    throw invalidArgument(
      'options.manifestPath',
      `the BYOK manifest ${basename(path)} is a symbolic link: it is replaced by a rename, which would replace the link and leave its target behind; name the file itself`,
    );
  }
}

/**
 * The manifest can be read and written: what `importHsmKey` checks before it touches anything,
 * for a caller that changes something first (a CLI creating the target key), so a manifest that
 * would be refused (damaged, a FIFO or a link, in a missing or read-only directory) is refused
 * before that change too. Returns the manifest read.
 */
export async function checkManifest(path: string): Promise<ByokManifest> {
  checkPath(path);
  const manifest = await readManifest(path);
  await checkManifestWritable(path);
  return manifest;
}

export async function checkManifestWritable(path: string): Promise<void> {
  await refuseLink(path);
  const dir = dirname(path);
  const missing = () =>
    invalidArgument('options.manifestPath', `the directory of ${basename(path)} does not exist`);
  const unwritable = (cause: unknown) =>
    new KeyportError('Unavailable', `the BYOK manifest ${basename(path)} cannot be written`, {
      provider: 'byok',
      cause,
    });
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(dir)).isDirectory();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw code === 'ENOENT' || code === 'ENOTDIR' ? missing() : unwritable(e);
  }
  if (!isDirectory) throw missing();
  await access(dir, constants.W_OK).catch((e: unknown) => {
    throw unwritable(e);
  });
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

/** An instant as keyport writes it (`toISOString`): anything else is not keyport's. */
const isInstant = (v: unknown): boolean =>
  typeof v === 'string' && v.length <= 30 && !Number.isNaN(Date.parse(v)) && new Date(v).toISOString() === v;

/**
 * Only keyport writes pending entries, and a rerun turns one into the pairing it returns and
 * records: each field is checked for what keyport writes, so a hand-edited entry (a label that
 * is a number, an import "yesterday", wrapping algorithm "NONE") is refused, not carried on.
 */
const isPending = (p: unknown): p is ByokPendingImport =>
  isPairing(p) &&
  isObject(p) &&
  isObject(p.hsm) &&
  typeof p.hsm.label === 'string' &&
  typeof p.hsm.id === 'string' &&
  typeof p.hsm.version === 'string' &&
  isObject(p.target) &&
  typeof p.target.scheme === 'string' &&
  p.target.spec === 'AES_256' &&
  (IMPORT_WRAPPING_ALGORITHMS as readonly unknown[]).includes(p.target.wrappingAlgorithm) &&
  isInstant(p.startedAt);

const isIntent = (g: unknown): g is ByokHsmKeyIntent =>
  isObject(g) &&
  isObject(g.hsm) &&
  typeof g.hsm.scheme === 'string' &&
  typeof g.hsm.name === 'string' &&
  typeof g.hsm.marker === 'string' &&
  /^[0-9a-f]{32}$/.test(g.hsm.marker) &&
  isObject(g.target) &&
  typeof g.target.uri === 'string' &&
  isInstant(g.startedAt);

async function writeAtomically(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  // The decorated name is cut to fit NAME_MAX: a manifest named with 240 bytes is a valid file
  // name, and its write must not fail with ENAMETOOLONG (after the import) over the temp's name.
  const suffix = `.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const temp = join(dir, `.${cutUtf8(basename(path), NAME_MAX - 1 - suffix.length)}${suffix}`);
  try {
    // The rename replaces the file, permissions included: the manifest's own carry over (one
    // shared with a group, 0640, stayed readable by it only until the first update made it
    // 0600); a new manifest is its owner's only.
    const mode = await stat(path).then(
      (s) => s.mode & 0o777,
      () => 0o600,
    );
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.chmod(mode);
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

/**
 * `<manifest>.lock` beside the manifest. A manifest named with up to NAME_MAX bytes is valid, so
 * its name is cut to leave room for the suffix: the lock must not fail with ENAMETOOLONG. Two
 * long names cut to one lock only share it, which serialises them and loses nothing.
 */
function lockPathOf(path: string, suffix = '.lock'): string {
  return join(dirname(path), `${cutUtf8(basename(path), NAME_MAX - suffix.length)}${suffix}`);
}

/**
 * How long an import may hold its target's lock before the next run takes the lock as abandoned,
 * whoever holds it. A holder on this host that died is seen at once (its pid is gone); one on
 * another host sharing the manifest is only judged by age. An import spans network calls and an
 * HSM generation, far beyond the manifest lock's 30 s.
 */
const IMPORT_LOCK_STALE_MS = 15 * 60_000;

/**
 * Holds `<manifest>.<hash of the target URI>.lock` for one import into one target, from reading
 * the target's state to recording its pairing: two runs into one target (other HSM keys, or the
 * same one) would each see it pending_import and each import, and the manifest would pair the
 * target with both. The later run waits (up to 10 s), then finds the target imported.
 */
export function lockImportTarget(
  path: string,
  targetUri: string,
  signal: AbortSignal | undefined,
): Promise<FileLock> {
  const suffix = `.${createHash('sha256').update(targetUri).digest('hex').slice(0, 16)}.lock`;
  return acquireFileLock(lockPathOf(path, suffix), {
    what: `the lock of imports into ${quote(targetUri, 512)} recorded in the BYOK manifest ${basename(path)}`,
    staleMs: IMPORT_LOCK_STALE_MS,
    ...(signal !== undefined ? { signal } : {}),
  });
}

export interface RecordPairingOptions {
  /** Stops waiting for another process's update of the manifest (Aborted); nothing is written. */
  readonly signal?: AbortSignal;
}

/**
 * Appends a pairing: reads the manifest, adds it and replaces the file atomically, all under the
 * manifest's lock (other processes) and its per-path queue (this process). A pending import of
 * the same target is dropped: the pairing records how it ended.
 */
export function recordPairing(
  path: string,
  pairing: ByokPairing,
  options: RecordPairingOptions = {},
): Promise<ByokManifest> {
  // A pairing without both URIs would be written, and every later read of the manifest (each
  // import first reads it) would then refuse it as damaged.
  if (!isPairing(pairing))
    return Promise.reject(
      invalidArgument(
        'pairing',
        `expected { hsm: { uri }, target: { uri }, ... }, got ${describeType(pairing)}`,
      ),
    );
  let signal: AbortSignal | undefined;
  try {
    checkPath(path);
    signal = checkOptions(options, 'options', { signal: true }).signal as AbortSignal | undefined;
    if (signal !== undefined) checkSignal(signal, 'options.signal');
  } catch (e) {
    return Promise.reject(e);
  }
  return updateManifest(path, (m) => withPairing(m, pairing), signal);
}

/** The pairing added; the target's pending import and HSM key generations are finished by it. */
const withPairing = (m: ByokManifest, pairing: ByokPairing): ByokManifest =>
  manifestOf(
    [...m.pairings, pairing],
    (m.pending ?? []).filter((p) => p.target.uri !== pairing.target.uri),
    (m.generating ?? []).filter((g) => g.target.uri !== pairing.target.uri),
  );

/**
 * Records an import about to be sent, replacing any earlier one of the same target (the target
 * was seen pending_import just now, so an earlier attempt did not land there).
 */
export function recordPendingImport(
  path: string,
  pending: ByokPendingImport,
  signal: AbortSignal | undefined,
): Promise<ByokManifest> {
  return updateManifest(
    path,
    (m) =>
      manifestOf(
        m.pairings,
        [...(m.pending ?? []).filter((p) => p.target.uri !== pending.target.uri), pending],
        m.generating ?? [],
      ),
    signal,
  );
}

/** Drops this pending import (the very entry: same target, HSM key and start), if still there. */
export function dropPendingImport(path: string, pending: ByokPendingImport): Promise<ByokManifest> {
  const same = (p: ByokPendingImport) =>
    p.target.uri === pending.target.uri && p.hsm.uri === pending.hsm.uri && p.startedAt === pending.startedAt;
  return updateManifest(path, (m) =>
    manifestOf(
      m.pairings,
      (m.pending ?? []).filter((p) => !same(p)),
      m.generating ?? [],
    ),
  );
}

/**
 * Records the HSM key about to be generated for a target, under the manifest's lock: the entry
 * of the same key name and target, when there is one (an earlier run stopped after or while
 * generating it, or a run at this moment), is the answer, with its marker, so every run of this
 * import looks for one key. Entries of the target under other names stay: each names a key that
 * may be in the token. `added`: whether this call wrote it (the entry to take back if nothing is
 * generated).
 */
export async function recordHsmKeyIntent(
  path: string,
  wanted: { readonly scheme: string; readonly name: string; readonly targetUri: string },
  signal: AbortSignal | undefined,
): Promise<{ intent: ByokHsmKeyIntent; added: boolean }> {
  let found: ByokHsmKeyIntent | undefined;
  const fresh: ByokHsmKeyIntent = {
    hsm: { scheme: wanted.scheme, name: wanted.name, marker: randomBytes(16).toString('hex') },
    target: { uri: wanted.targetUri },
    startedAt: new Date().toISOString(),
  };
  await updateManifest(
    path,
    (m) => {
      const generating = m.generating ?? [];
      found = generating.find(
        (g) =>
          g.target.uri === wanted.targetUri && g.hsm.scheme === wanted.scheme && g.hsm.name === wanted.name,
      );
      if (found !== undefined) return m;
      return manifestOf(m.pairings, m.pending ?? [], [...generating, fresh]);
    },
    signal,
  );
  return found !== undefined ? { intent: found, added: false } : { intent: fresh, added: true };
}

/** Takes back this HSM key generation (the very entry: same target, name and marker), if still there. */
export function dropHsmKeyIntent(path: string, intent: ByokHsmKeyIntent): Promise<ByokManifest> {
  const same = (g: ByokHsmKeyIntent) =>
    g.target.uri === intent.target.uri &&
    g.hsm.name === intent.hsm.name &&
    g.hsm.marker === intent.hsm.marker;
  return updateManifest(path, (m) =>
    manifestOf(
      m.pairings,
      m.pending ?? [],
      (m.generating ?? []).filter((g) => !same(g)),
    ),
  );
}

/**
 * Records the pairing of an interrupted import that landed, dropping its pending entry, unless
 * the manifest meanwhile pairs the target with another HSM key (then the material there is not
 * this import's, and recording it would be a false pairing).
 */
export function finishPendingImport(
  path: string,
  pairing: ByokPairing,
  signal: AbortSignal | undefined,
): Promise<ByokManifest> {
  return updateManifest(
    path,
    (m) => {
      const other = m.pairings.find(
        (p) => p.target.uri === pairing.target.uri && p.hsm.uri !== pairing.hsm.uri,
      );
      if (other !== undefined) {
        throw new KeyportError(
          'KeyStateConflict',
          `the BYOK manifest ${basename(path)} pairs this target with ${quote(other.hsm.uri, 512)}, not with the HSM key of its unfinished import ${quote(pairing.hsm.uri, 512)}`,
          { provider: 'byok', keyUri: pairing.target.uri },
        );
      }
      return withPairing(m, pairing);
    },
    signal,
  );
}

/**
 * Read, change, write: under the manifest's lock (other processes) and its per-path queue (this
 * process), re-reading under the lock so a change another process made since is kept.
 */
function updateManifest(
  path: string,
  change: (current: ByokManifest) => ByokManifest,
  signal?: AbortSignal,
): Promise<ByokManifest> {
  const previous = queues.get(path) ?? Promise.resolve();
  const next = previous
    .catch(() => undefined)
    .then(async () => {
      const lock = await acquireFileLock(lockPathOf(path), {
        what: `the lock of the BYOK manifest ${basename(path)}`,
        ...(signal !== undefined ? { signal } : {}),
      });
      try {
        await refuseLink(path);
        const updated = change(await readManifest(path));
        const text = `${JSON.stringify(updated, null, 2)}\n`;
        // What readManifest would refuse is not written: the manifest would stop every import
        // (each reads it first). Indented, a compact manifest under the limit can grow past it.
        if (Buffer.byteLength(text, 'utf8') > MAX_MANIFEST_BYTES) {
          throw new KeyportError(
            'Unavailable',
            `the BYOK manifest ${basename(path)} would grow past ${MAX_MANIFEST_BYTES} bytes, the most a read accepts: the update is not written (record further pairings in another manifest)`,
            { provider: 'byok', retryable: false },
          );
        }
        await writeAtomically(path, text);
        return updated;
      } finally {
        await lock.release();
      }
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
