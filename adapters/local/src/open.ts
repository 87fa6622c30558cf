/** Opening (and creating) a keystore: the entry point of this package. */

import { dirname, isAbsolute, resolve } from 'node:path';
import {
  checkBoolean,
  checkDeadlineMs,
  checkFunction,
  checkInteger,
  checkOptions,
  checkSignal,
  checkString,
  describeType,
  invalidArgument,
} from '@keyport/core';
import { nameTooLong, writeTarget } from './atomic-write.js';
import { labelled, localError, throwIfAborted } from './errors.js';
import { sweepLeftovers } from './file-lock.js';
import { checkPrincipal } from './grants.js';
import { KeystoreAccess } from './key-access.js';
import { KeystoreFile } from './keystore-file.js';
import { LocalProvider } from './provider.js';
import { DEFAULT_SCRYPT, SCRYPT_LIMITS, type ScryptParams, validScrypt } from './sealed-file.js';

export interface OpenLocalKeystoreOptions {
  /** The keystore file. Key URIs carry this path exactly as given (`local://<path>#<name>`). */
  readonly path: string;
  /** Seals the file (scrypt). A string is used as its UTF-8 bytes, unnormalised. */
  readonly passphrase: string | Uint8Array;
  /**
   * The principal to act as. Defaults to the keystore's owner. When a keystore is created,
   * this principal becomes its owner ('owner' when absent).
   */
  readonly principal?: string;
  /** Create the keystore when the file does not exist (otherwise: NotFound). */
  readonly create?: boolean;
  /** scrypt cost for a NEW keystore (default log2N 15, r 8, p 1); an existing file keeps its own. */
  readonly kdf?: Partial<ScryptParams>;
  /** The time source for rotation, deletion, grant and import expiry; `() => new Date()` by default. */
  readonly clock?: () => Date;
  /** How long a write waits for another writer's lock; 10 s by default. */
  readonly lockTimeoutMs?: number;
  /** A deadline for opening (reading, deriving the key, creating); none by default. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

const OPEN_OPTIONS = {
  path: true,
  passphrase: true,
  principal: true,
  create: true,
  kdf: true,
  clock: true,
  lockTimeoutMs: true,
  timeoutMs: true,
  signal: true,
} as const satisfies Record<keyof OpenLocalKeystoreOptions, true>;
const KDF_OPTIONS = { log2N: true, r: true, p: true } as const satisfies Record<keyof ScryptParams, true>;
/** Longest passphrase, in bytes: scrypt reads all of it, and nobody types more. */
const MAX_PASSPHRASE_BYTES = 64 * 1024;

/** Every option checked before anything touches the file system. */
function checkOpenOptions(given: unknown): OpenLocalKeystoreOptions & { kdf: Partial<ScryptParams> } {
  if (given === undefined) throw invalidArgument('options', 'expected { path, passphrase, ... }');
  const o = checkOptions(given, 'options', OPEN_OPTIONS);
  const path = checkString(o.path, 'options.path', { min: 1, max: 4096 });
  if (path.includes('\0')) throw invalidArgument('options.path', 'must not contain NUL characters');
  const tooLong = nameTooLong(path);
  if (tooLong !== undefined) throw invalidArgument('options.path', tooLong);
  const passphrase = o.passphrase;
  if (typeof passphrase !== 'string' && !(passphrase instanceof Uint8Array)) {
    throw invalidArgument(
      'options.passphrase',
      `expected a string or a Uint8Array, got ${describeType(passphrase)}`,
    );
  }
  if (typeof passphrase === 'string')
    checkString(passphrase, 'options.passphrase', { max: MAX_PASSPHRASE_BYTES });
  if (passphrase.length === 0) throw invalidArgument('options.passphrase', 'must not be empty');
  if (passphrase.length > MAX_PASSPHRASE_BYTES) {
    throw invalidArgument('options.passphrase', `at most ${MAX_PASSPHRASE_BYTES} bytes`);
  }
  const kdf = checkOptions(o.kdf, 'options.kdf', KDF_OPTIONS);
  for (const [name, [lo, hi]] of Object.entries(SCRYPT_LIMITS)) {
    if (kdf[name] !== undefined) checkInteger(kdf[name], `options.kdf.${name}`, lo, hi);
  }
  return {
    path,
    passphrase,
    kdf: kdf as Partial<ScryptParams>,
    ...(o.principal !== undefined ? { principal: o.principal as string } : {}),
    ...(o.create !== undefined ? { create: checkBoolean(o.create, 'options.create') } : {}),
    ...(o.clock !== undefined ? { clock: checkFunction(o.clock, 'options.clock') as () => Date } : {}),
    ...(o.lockTimeoutMs !== undefined
      ? { lockTimeoutMs: checkDeadlineMs(o.lockTimeoutMs, 'options.lockTimeoutMs') }
      : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: checkDeadlineMs(o.timeoutMs, 'options.timeoutMs') } : {}),
    ...(o.signal !== undefined ? { signal: checkSignal(o.signal, 'options.signal') } : {}),
  };
}

/** A checked keystore opening: everything but the file system work. */
interface Opening {
  readonly options: ReturnType<typeof checkOpenOptions>;
  readonly params: ScryptParams;
  readonly file: KeystoreFile;
  readonly clock: () => Date;
  /** The working directory when the provider was made: relative paths and URIs resolve against it. */
  readonly base: string;
}

/**
 * The working directory now, against which a relative keystore path is resolved once, when the
 * provider is made. The path used to stay relative: after a `process.chdir` every read and write
 * went to a file of that name in the new directory — another project's keystore, written to
 * when it shared the passphrase.
 */
function workingDirectory(path: string): string {
  try {
    return process.cwd();
  } catch (error) {
    if (isAbsolute(path)) return dirname(path);
    throw localError(
      'Unavailable',
      'the working directory no longer exists: give the keystore path as an absolute path',
      undefined,
      error,
    );
  }
}

/** Checks every option and holds the passphrase in the (not yet read) keystore file. */
function prepare(given: OpenLocalKeystoreOptions): Opening {
  const options = labelled(undefined, () => checkOpenOptions(given));
  if (options.principal !== undefined) checkPrincipal(options.principal, 'principal');
  const params: ScryptParams = { ...DEFAULT_SCRYPT, ...options.kdf };
  if (!validScrypt(params)) {
    throw localError('InvalidArgument', 'options.kdf: combined scrypt cost out of range (see SCRYPT_LIMITS)');
  }
  const passphrase =
    typeof options.passphrase === 'string'
      ? Buffer.from(options.passphrase, 'utf8')
      : Buffer.from(options.passphrase);
  const base = workingDirectory(options.path);
  const file = new KeystoreFile({
    path: resolve(base, options.path),
    passphrase,
    lockTimeoutMs: options.lockTimeoutMs,
  });
  passphrase.fill(0);
  return { options, params, file, clock: options.clock ?? (() => new Date()), base };
}

/** Reads (or creates) the keystore: checks the passphrase and the file, learns the owner. */
async function openAccess(
  { options, params, file, clock, base }: Opening,
  callSignal?: AbortSignal,
): Promise<KeystoreAccess> {
  const given = withDeadline(options.signal, options.timeoutMs);
  const signal =
    given === undefined || callSignal === undefined
      ? (given ?? callSignal)
      : AbortSignal.any([given, callSignal]);
  throwIfAborted(signal);
  // What killed writers left beside the file (temps, a dead holder's lock) goes first.
  // Beside the file itself when the path is a symbolic link: that is where writers work.
  await sweepLeftovers(await writeTarget(file.path));
  const access = new KeystoreAccess(file, options.principal ?? 'owner', options.path, base, clock);
  if (options.create === true) {
    await file.createIfMissing(options.principal ?? 'owner', params, access.now(), signal);
  }
  const body = await file.read(signal); // checks the passphrase and the file
  return new KeystoreAccess(file, options.principal ?? body.owner, options.path, base, clock);
}

/** Opens (or creates) a keystore now: a wrong passphrase or a damaged file fails here. */
export async function openLocalKeystore(given: OpenLocalKeystoreOptions): Promise<LocalProvider> {
  const opening = prepare(given);
  try {
    return new LocalProvider(await openAccess(opening));
  } catch (error) {
    opening.file.close();
    throw error;
  }
}

/**
 * The local keystore driver, built synchronously (options are checked now): the file is read,
 * and the passphrase checked, at the first call — a wrong passphrase fails that call, and the
 * next call tries again. `openLocalKeystore` opens up front instead.
 */
export function localKeystore(given: OpenLocalKeystoreOptions): LocalProvider {
  const opening = prepare(given);
  const uris = new KeystoreAccess(
    opening.file,
    opening.options.principal ?? 'owner',
    opening.options.path,
    opening.base,
    opening.clock,
  );
  return new LocalProvider(uris, {
    open: (signal) => openAccess(opening, signal),
    principal: opening.options.principal,
  });
}

/** The caller's signal, combined with a deadline when one is given (Timeout, not Aborted, when it fires). */
function withDeadline(
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): AbortSignal | undefined {
  if (timeoutMs === undefined) return signal;
  const deadline = AbortSignal.timeout(timeoutMs);
  return signal === undefined ? deadline : AbortSignal.any([signal, deadline]);
}
