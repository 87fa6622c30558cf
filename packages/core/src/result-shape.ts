/**
 * What a driver's answer must look like before the caller sees it. A driver that resolves with
 * the wrong shape — no ciphertext, a string where bytes belong, a data key shorter than asked,
 * `'false'` or `{ valid: false }` from a verify (truthy in an `if`) — is a driver bug; the call
 * then fails with `Internal` (audited as a failure, never retried) instead of handing the caller
 * a success that is not one. Each check is a few type tests, run once per successful call.
 */

import type { Operation } from './capabilities.js';
import { KeyportError } from './errors.js';

type Fields = Record<string, unknown>;

function malformed(op: Operation, what: string): KeyportError {
  return new KeyportError('Internal', `the provider answered ${op} with ${what}`, { retryable: false });
}

function record(op: Operation, r: unknown): Fields {
  if (typeof r !== 'object' || r === null) throw malformed(op, 'no result object');
  return r as Fields;
}

function bytes(op: Operation, r: Fields, field: string): Uint8Array {
  const v = r[field];
  if (!(v instanceof Uint8Array)) throw malformed(op, `no ${field} bytes`);
  return v;
}

function version(op: Operation, r: Fields): void {
  const v = r.keyVersion;
  if (v !== undefined && typeof v !== 'string') throw malformed(op, 'a key version that is not a string');
}

/** `{ <field>: Uint8Array, keyVersion?: string }`: encrypt, decrypt, mac, sign. */
export function bytesResult(op: Operation, field: string): (r: unknown) => void {
  return (r) => {
    const fields = record(op, r);
    bytes(op, fields, field);
    version(op, fields);
  };
}

/** A data key: plaintext of exactly the length asked for (a shorter key is a weaker one) and its wrap. */
export function dataKeyResult(length: number): (r: unknown) => void {
  return (r) => {
    const fields = record('generateDataKey', r);
    const plaintext = bytes('generateDataKey', fields, 'plaintext');
    try {
      if (plaintext.length !== length)
        throw malformed('generateDataKey', `a ${plaintext.length}-byte data key (${length} asked for)`);
      bytes('generateDataKey', fields, 'wrapped');
      version('generateDataKey', fields);
    } catch (e) {
      plaintext.fill(0); // refused: nobody gets to use this key
      throw e;
    }
  };
}

/** A verdict: `true` or `false`, nothing merely truthy. */
export function booleanResult(op: Operation): (r: unknown) => void {
  return (r) => {
    if (typeof r !== 'boolean') throw malformed(op, 'a verdict that is not a boolean');
  };
}
