/**
 * What `migrate` works on: a directory (walked recursively), a glob (`data/**\/*.enc`), a
 * manifest (a text file with one path per line, relative to the manifest), or one message.
 *
 * Only regular files are candidates. What the walk meets and cannot use is reported, with the
 * reason, never dropped silently: symbolic links (unless `followSymlinks`: then their targets,
 * each real file once, directory cycles cut), FIFOs, sockets, devices, unreadable directories.
 */
import type { Dirent } from 'node:fs';
import { lstat, open, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { KeyportError } from '@keyport/core';
import { CliError, fileError, quotePath } from '../cli-errors.js';
import { usageError } from '../errors.js';
import { FileTooLarge, readBounded, readFailure } from '../files/read-bounded.js';

/** A manifest names files, a line each: millions of paths fit in this. */
const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

const GLOB_CHARS = /[*?[]/;

export interface SkippedFile {
  readonly file: string;
  readonly reason: string;
}

export interface Sources {
  readonly files: string[];
  readonly skipped: SkippedFile[];
  /** The files were named (a manifest or one message), not found by a walk (plan.ts). */
  readonly named: boolean;
}

export interface SourceOptions {
  readonly exclude: (path: string) => boolean;
  readonly followSymlinks?: boolean;
  /**
   * Ctrl-C: the walk stops at its next directory or link. The journal's lock is held while the
   * tree is walked (files.ts), and a walk of a million files that ignored the signal outlived
   * the CLI's grace period: the process was killed with its lock still on disk.
   */
  readonly signal?: AbortSignal;
}

/** Thrown by a walk (or the de-duplication after it) once `signal` is aborted: nothing was migrated. */
function stopIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true)
    throw new KeyportError(
      'Aborted',
      'the migration was interrupted while reading its target; nothing was migrated',
      {
        retryable: false,
      },
    );
}

export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '*' && pattern[i + 1] === '*') {
      const slash = pattern[i + 2] === '/';
      re += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function kindOf(e: Pick<Dirent, 'isFIFO' | 'isSocket' | 'isCharacterDevice' | 'isBlockDevice'>): string {
  if (e.isFIFO()) return 'a FIFO';
  if (e.isSocket()) return 'a socket';
  if (e.isCharacterDevice() || e.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

const reasonOf = (e: unknown): string => {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'unreadable: permission denied';
  if (code === 'ENOENT') return 'does not exist';
  return `unreadable (${code ?? 'error'})`;
};

/**
 * Why an entry whose name is not valid UTF-8 is skipped: keyport's paths are strings, which name
 * only UTF-8 names. Renaming it (`convmv`) lets the next run migrate it.
 */
const notUtf8 = (what: string): string =>
  `${what} name is not valid UTF-8, so keyport cannot open it: rename it to UTF-8 and run again`;

const notUtf8Target =
  'symbolic link to a path that is not valid UTF-8, so keyport cannot open it: rename it to UTF-8 and run again';

/**
 * The real path of `path`, as a key that tells apart real paths differing only in bytes that
 * are not UTF-8 (one byte a character): as strings, `r\xe9sum` and `r\xe8sum` were both
 * `r\uFFFDsum`, so the second directory was taken for a cycle, or its files for the first's.
 * `path` itself when it cannot be resolved.
 */
async function realKey(path: string): Promise<string> {
  try {
    return (await realpath(path, { encoding: 'buffer' })).toString('latin1');
  } catch {
    return Buffer.from(path).toString('latin1');
  }
}

/** `raw` as a string, if it is valid UTF-8 (it then names the same file); otherwise undefined. */
function utf8Name(raw: Buffer): string | undefined {
  const name = raw.toString('utf8');
  // Invalid bytes decode to U+FFFD; a name may hold a real U+FFFD too, hence the byte comparison.
  return !name.includes('\uFFFD') || Buffer.from(name).equals(raw) ? name : undefined;
}

class Walker {
  readonly files: string[] = [];
  readonly skipped: SkippedFile[] = [];
  /** Entries `keep` took (files, and links or FIFOs reported as skipped): what a glob matched. */
  matched = 0;
  /** Directories that could not be read: a glob's matches may be in them. */
  unreadableDirs = 0;
  private readonly seenDirs = new Set<string>();

  private readonly keep: (path: string) => boolean;

  constructor(
    private readonly o: SourceOptions,
    keep: (path: string) => boolean = () => true,
  ) {
    this.keep = (p) => {
      const kept = keep(p);
      if (kept) this.matched++;
      return kept;
    };
  }

  async dir(dir: string): Promise<void> {
    stopIfAborted(this.o.signal);
    const real = await realKey(dir);
    if (this.seenDirs.has(real)) return; // a symlink cycle
    this.seenDirs.add(real);
    let entries: Dirent<Buffer>[];
    try {
      // Names as bytes: a name that is not UTF-8 (a Latin-1 archive) read as a string comes
      // back with U+FFFD in it and names no file, so its step reported "does not exist" (and a
      // directory "directory does not exist", its files never read) for a file that is there.
      entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' });
    } catch (e) {
      this.skipped.push({ file: dir, reason: `directory ${reasonOf(e)}` });
      this.unreadableDirs++;
      return;
    }
    for (const e of entries) {
      const name = utf8Name(e.name);
      const p = join(dir, name ?? e.name.toString('utf8'));
      if (this.o.exclude(p)) continue;
      if (name === undefined) {
        if (e.isDirectory()) {
          this.skipped.push({ file: p, reason: `${notUtf8('a directory whose')} (its files were not read)` });
          this.unreadableDirs++;
        } else if (this.keep(p)) this.skipped.push({ file: p, reason: notUtf8('its') });
        continue;
      }
      if (e.isDirectory()) await this.dir(p);
      else if (e.isFile()) {
        if (this.keep(p)) this.files.push(p);
      } else if (e.isSymbolicLink()) await this.link(p);
      else if (this.keep(p)) this.skipped.push({ file: p, reason: kindOf(e) });
    }
  }

  private async link(p: string): Promise<void> {
    stopIfAborted(this.o.signal);
    if (this.o.followSymlinks !== true) {
      if (this.keep(p))
        this.skipped.push({ file: p, reason: 'symbolic link (not followed; pass --follow-symlinks)' });
      return;
    }
    let target: string | undefined;
    let st: import('node:fs').Stats;
    try {
      // As bytes: a target path that is not UTF-8, read as a string, named no file, and the
      // link was reported as one that "does not exist" (a directory's files never read).
      target = utf8Name(await realpath(p, { encoding: 'buffer' }));
      st = await stat(p);
    } catch (e) {
      if (this.keep(p)) this.skipped.push({ file: p, reason: `symbolic link ${reasonOf(e)}` });
      return;
    }
    // A directory is walked through the link's own name, which is UTF-8.
    if (st.isDirectory()) await this.dir(p);
    else if (!this.keep(p)) return;
    else if (!st.isFile()) this.skipped.push({ file: p, reason: `symbolic link to ${kindOf(st)}` });
    // A file is migrated at its real path (the link is kept), which a string cannot name.
    else if (target === undefined) this.skipped.push({ file: p, reason: notUtf8Target });
    else this.files.push(target);
  }
}

async function firstByte(path: string): Promise<number | undefined> {
  const h = await open(path, 'r');
  try {
    const b = Buffer.alloc(1);
    const { bytesRead } = await h.read(b, 0, 1, 0);
    return bytesRead === 1 ? b[0] : undefined;
  } finally {
    await h.close();
  }
}

/** Absolute paths of the files `target` names (sorted, each once), and what was skipped. */
export async function expandTarget(target: string, cwd: string, o: SourceOptions): Promise<Sources> {
  const abs = isAbsolute(target) ? target : resolve(cwd, target);
  let files: string[] = [];
  let skipped: SkippedFile[] = [];
  let named = false;
  // A path that exists is that path, whatever characters its name holds: `archive [2024]` read
  // as a pattern matched no file, and the run "migrated 0 of 0 files" with exit 0.
  const existing = await stat(abs).catch(() => undefined);
  if (existing === undefined && GLOB_CHARS.test(target)) {
    // The pattern is the target's own segments from the first with a glob character; what
    // comes before (and the working directory) is a path, whatever characters it holds: a `*`
    // in the working directory's name matched its siblings, and their files were migrated.
    const parts = target.split(sep);
    const firstGlob = parts.findIndex((p) => GLOB_CHARS.test(p));
    const base = resolve(cwd, parts.slice(0, firstGlob).join(sep) || (isAbsolute(target) ? sep : '.'));
    const re = globToRegExp(parts.slice(firstGlob).join('/'));
    await stat(base).catch((e: unknown) => {
      throw fileError(e, base, "cannot read the glob's directory");
    });
    const w = new Walker(o, (p) => re.test(relative(base, p).split(sep).join('/')));
    await w.dir(base);
    if (w.matched === 0) throw noMatch(target, base, w.unreadableDirs);
    ({ files, skipped } = w);
  } else {
    const st =
      existing ??
      (await stat(abs).catch((e: unknown) => {
        throw fileError(e, abs, 'cannot read the migration target');
      }));
    if (st.isDirectory()) {
      // An empty directory given by its name is not a mistake (an inbox with nothing in it
      // yet): 0 of 0 files, exit 0. Only a pattern that matches nothing is refused.
      const w = new Walker(o);
      await w.dir(abs);
      ({ files, skipped } = w);
    } else {
      const b = await firstByte(abs).catch((e: unknown) => {
        throw fileError(e, abs, 'cannot read the migration target');
      });
      named = true;
      if (b === 0x01 || b === 0x02) files = [abs];
      else {
        const manifest = await readBounded(abs, MAX_MANIFEST_BYTES).catch((e: unknown) => {
          throw e instanceof FileTooLarge
            ? usageError(`the manifest ${abs} is ${readFailure(e)}: split it`)
            : fileError(e, abs, 'cannot read the manifest');
        });
        ({ files, skipped } = await manifestLines(manifest, dirname(abs)));
      }
    }
  }
  return {
    files: await oncePerFile([...new Set(files)].filter((f) => !o.exclude(f)).sort(), o.signal),
    skipped,
    named,
  };
}

/** ASCII whitespace, trimmed from a manifest line that is not UTF-8 (`trim()` on a valid one). */
const ASCII_SPACE = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);

/**
 * A manifest's paths (relative ones resolved against `dir`). Its lines are read as bytes: a line
 * naming a file whose name is not UTF-8, decoded, named no file, and the run failed it as a
 * listed file that "does not exist" though it is there. Such a file, when it is there, is
 * skipped saying why, as the walk does; one that is not there stays a missing listed file.
 */
async function manifestLines(
  manifest: Buffer,
  dir: string,
): Promise<{ files: string[]; skipped: SkippedFile[] }> {
  const files: string[] = [];
  const skipped: SkippedFile[] = [];
  const seen = new Set<string>();
  let start = 0;
  while (start <= manifest.length) {
    let end = manifest.indexOf(0x0a, start);
    if (end === -1) end = manifest.length;
    const raw = manifest.subarray(start, end);
    start = end + 1;
    const text = utf8Name(raw);
    if (text !== undefined) {
      const l = text.trim();
      if (l !== '' && !l.startsWith('#')) files.push(isAbsolute(l) ? l : resolve(dir, l));
      continue;
    }
    let a = 0;
    let b = raw.length;
    while (a < b && ASCII_SPACE.has(raw[a] as number)) a++;
    while (b > a && ASCII_SPACE.has(raw[b - 1] as number)) b--;
    const line = raw.subarray(a, b);
    if (line[0] === 0x23) continue; // a comment
    const path = line[0] === 0x2f ? line : Buffer.concat([Buffer.from(`${resolve(dir)}${sep}`), line]);
    const shown = path.toString('utf8');
    const key = path.toString('latin1'); // one entry per file however often it is listed
    if (seen.has(key)) continue;
    seen.add(key);
    if (
      await lstat(path).then(
        () => true,
        () => false,
      )
    )
      skipped.push({ file: shown, reason: notUtf8('its') });
    else files.push(shown);
  }
  return { files, skipped };
}

/**
 * A glob that matched nothing: most likely a typo or the wrong directory, as a shell without
 * nullglob says "no matches found". Run on, it reported "migrated 0 of 0 files" and exit 0.
 */
function noMatch(pattern: string, base: string, unreadableDirs: number): CliError {
  const hidden =
    unreadableDirs > 0
      ? `; ${unreadableDirs} ${unreadableDirs === 1 ? 'directory' : 'directories'} below it could not be read`
      : '';
  return new CliError(
    'FileNotFound',
    `no file matches the pattern ${quotePath(pattern)} (looked below ${quotePath(base)}${hidden}); nothing was migrated: check the pattern`,
    { path: pattern },
  );
}

/**
 * `files` (sorted) without the names that reach a file listed already through another path to
 * its directory: a symlinked directory the walk went through (`via/x` and, from a followed
 * link, `data/x`), or a manifest naming both. Two names of one file would be migrated at once
 * and share a temp file name (the same directory, the same base name): the second attempt
 * failed on it, or found the file done and counted it twice. The first name is kept. Hard links
 * are distinct names in their directories and stay distinct (each name is replaced on its own).
 */
export async function oncePerFile(files: readonly string[], signal?: AbortSignal): Promise<string[]> {
  const realDirs = new Map<string, Promise<string>>();
  const seen = new Set<string>();
  const out: string[] = [];
  for (const f of files) {
    stopIfAborted(signal);
    const dir = dirname(f);
    let real = realDirs.get(dir);
    if (real === undefined) {
      // A directory that cannot be resolved is left to the file's step to report.
      real = realKey(dir);
      realDirs.set(dir, real);
    }
    const key = `${await real}/${Buffer.from(basename(f)).toString('latin1')}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(f);
  }
  return out;
}
