import { randomBytes } from 'node:crypto';
/** Assertions on KeyportErrors and bytes, written so a failure says what was expected and what came. */
import { ERROR_CODES, type ErrorCode, type KeyportError } from '@keyport/core';

/**
 * Duck-typed on purpose: a third party's adapter may resolve its own copy of @keyport/core, and
 * `instanceof` across copies fails although the error is right.
 */
export function asKeyportError(value: unknown): KeyportError | undefined {
  if (!(value instanceof Error)) return undefined;
  const code: unknown = (value as { code?: unknown }).code;
  return typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code)
    ? (value as KeyportError)
    : undefined;
}

function describeThrown(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  return typeof value;
}

/** Awaits `call` and returns the KeyportError it rejected with; fails unless its code is one of `codes`. */
export async function expectError(
  call: Promise<unknown> | (() => Promise<unknown>),
  codes: ErrorCode | readonly ErrorCode[],
): Promise<KeyportError> {
  const wanted: readonly ErrorCode[] = typeof codes === 'string' ? [codes] : codes;
  try {
    await (typeof call === 'function' ? call() : call);
  } catch (e) {
    const error = asKeyportError(e);
    if (error === undefined) {
      throw new Error(`expected a KeyportError (${wanted.join(' or ')}) but got ${describeThrown(e)}`, {
        cause: e,
      });
    }
    if (!wanted.includes(error.code)) {
      throw new Error(`expected ${wanted.join(' or ')} but got ${error.code}: ${error.message}`, {
        cause: e,
      });
    }
    return error;
  }
  throw new Error(`expected ${wanted.join(' or ')} but the call succeeded`);
}

/** Fails when an error's message, JSON form or cause's message carries any of `secrets`. */
export function expectNoLeak(error: KeyportError, secrets: readonly string[]): void {
  const cause = error.cause instanceof Error ? error.cause.message : '';
  const surfaces = [error.message, JSON.stringify(error.toJSON()), cause];
  for (const secret of secrets) {
    if (surfaces.some((text) => text.includes(secret))) {
      throw new Error(`error ${error.code} exposes a context value or plaintext in its message or cause`);
    }
  }
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Fails when `sealed` (a ciphertext or wrapped key) carries `plaintext` in the clear: any of its
 * 16-byte blocks appearing in `sealed` (a real ciphertext shares none, but for one chance in
 * 2^128 per position). "Not equal to the plaintext" alone passes plaintext with a header or tag.
 */
export function expectConcealed(sealed: Uint8Array, plaintext: Uint8Array, what = 'the ciphertext'): void {
  const haystack = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const block = Math.min(16, plaintext.length);
  for (let at = 0; at + block <= plaintext.length; at += block) {
    if (haystack.indexOf(plaintext.subarray(at, at + block)) !== -1) {
      throw new Error(`${what} carries the plaintext in the clear (bytes ${at}..${at + block - 1})`);
    }
  }
}

/** A copy of `bytes` with one bit flipped at `index` (negative counts from the end). */
export function flipBit(bytes: Uint8Array, index: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  const at = index < 0 ? copy.length + index : index;
  copy[at] = (copy[at] as number) ^ 0x01;
  return copy;
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/**
 * Random bytes standing in for a ciphertext the key never made. The first byte stays below 0xFA:
 * local-kms (the AWS emulator) crashes on a leading byte of 0xFA-0xFF instead of answering
 * InvalidCiphertextException, and a test of keyport must not fail on an emulator's crash.
 */
export function garbageCiphertext(length: number): Uint8Array {
  const bytes = randomBytes(length);
  bytes[0] = (bytes[0] as number) % 0xfa;
  return bytes;
}
