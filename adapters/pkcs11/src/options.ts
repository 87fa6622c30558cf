/**
 * Provider options and the user PIN. The PIN comes from an environment variable, a file or a
 * callback — never from a key URI (core refuses `pin-value`), and it is read only at login time,
 * never stored on the provider or put in an error.
 */
import { readFile } from 'node:fs/promises';
import { KeyportError } from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';

export type PinSource =
  | { readonly env: string }
  | { readonly file: string }
  | { readonly callback: () => string | Promise<string> };

export interface Pkcs11ProviderOptions {
  /** Path of the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so). */
  readonly modulePath: string;
  /** The token: by label (CK_TOKEN_INFO.label) or serial number; at least one. */
  readonly token: { readonly label?: string; readonly serial?: string };
  /** Where the user PIN comes from. */
  readonly pin: PinSource;
  /** Upper bound of logged-in sessions kept open (default 4). */
  readonly maxSessions?: number;
  /** How long a resolved key (its versions and object handles) is reused, in ms (default 1000; 0 = never). */
  readonly keyCacheMs?: number;
  /**
   * OAEP hashes the module accepts. Probed at start when omitted (SoftHSM2 2.6: SHA-1 only);
   * give it to skip the probe on modules where generating a throwaway key pair is costly.
   */
  readonly oaepHashes?: ReadonlyArray<'sha1' | 'sha256'>;
  /** Provider name in audit events and errors (default 'pkcs11'). */
  readonly name?: string;
}

/** The options of `pkcs11(options)`. */
export type Pkcs11Options = Pkcs11ProviderOptions;

function pinError(why: string): KeyportError {
  return new KeyportError('AccessDenied', `the PKCS#11 user PIN is not available: ${why}`, {
    provider: PROVIDER_NAME,
  });
}

/** Reads the PIN from its source. Messages name the source, never its content. */
export async function resolvePin(source: PinSource): Promise<string> {
  let pin: string;
  if ('env' in source) {
    const value = process.env[source.env];
    if (value === undefined || value === '') throw pinError(`environment variable ${source.env} is not set`);
    pin = value;
  } else if ('file' in source) {
    try {
      pin = (await readFile(source.file, 'utf8')).replace(/\r?\n$/, '');
    } catch {
      throw pinError('the PIN file cannot be read');
    }
  } else {
    pin = await source.callback();
  }
  if (typeof pin !== 'string' || pin === '') throw pinError('the PIN source gave an empty PIN');
  return pin;
}
