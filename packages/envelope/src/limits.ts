/**
 * Limits enforced while reading a message, so hostile input cannot make open allocate,
 * loop or call providers without bound.
 */
import { KeyportError } from '@keyport/core';

export interface OpenLimits {
  /**
   * Most encrypted data keys a header may carry (default 16; the format allows 65535). The
   * ESDK has no limit by default and recommends setting one: a message with more EDKs is
   * refused before any of them is tried.
   */
  readonly maxEncryptedDataKeys?: number;
  /**
   * Most unwrap attempts per trusted recipient (default 3). EDKs identical to one already
   * tried are skipped; a matching EDK beyond the bound is not tried. A legitimate message holds
   * one EDK per recipient, so this only bounds what a hostile header repeats.
   */
  readonly maxUnwrapAttempts?: number;
  /** Largest header accepted, in bytes (default 1 MiB). */
  readonly maxHeaderBytes?: number;
  /**
   * Largest frame length accepted (default 64 MiB; up to 2^32 − 1, the format's bound): one
   * frame's plaintext is held until its tag verifies. Raise it to open messages sealed elsewhere
   * with larger frames.
   */
  readonly maxFrameLength?: number;
  /**
   * Most frames accepted (default 2^32 - 1, the format's bound). Each frame costs open a fixed
   * few µs of CPU whatever its length, and the sender picks the frame length: a message of
   * 1-byte frames costs ~100 times the CPU per byte of one in 4 KiB frames. When opening
   * untrusted messages of at most `B` bytes, `Math.ceil(B / 4096) + 1` admits any sealed with
   * frames of 4 KiB (the ESDK's default) or more.
   */
  readonly maxFrames?: number;
  /** Largest non-framed body accepted (default 64 MiB): it is buffered whole before release. */
  readonly maxNonFramedBytes?: number;
}

export interface ResolvedLimits {
  readonly maxEncryptedDataKeys: number;
  readonly maxUnwrapAttempts: number;
  readonly maxHeaderBytes: number;
  readonly maxFrameLength: number;
  readonly maxFrames: number;
  readonly maxNonFramedBytes: number;
}

export const DEFAULT_LIMITS: ResolvedLimits = {
  maxEncryptedDataKeys: 16,
  maxUnwrapAttempts: 3,
  maxHeaderBytes: 1024 * 1024,
  maxFrameLength: 64 * 1024 * 1024,
  maxFrames: 0xffff_ffff,
  maxNonFramedBytes: 64 * 1024 * 1024,
};

/** The format's own bounds (u16 EDK count, u32 frame length and sequence number). */
const CEILING: Partial<Record<keyof ResolvedLimits, number>> = {
  maxEncryptedDataKeys: 0xffff,
  maxFrameLength: 0xffff_ffff,
  maxFrames: 0xffff_ffff,
};

export function resolveLimits(given: OpenLimits = {}): ResolvedLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const name of Object.keys(DEFAULT_LIMITS) as Array<keyof ResolvedLimits>) {
    const v = given[name];
    if (v === undefined) continue;
    const ceiling = CEILING[name] ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(v) || v < 1 || v > ceiling) {
      throw new KeyportError('InvalidArgument', `${name} must be an integer from 1 to ${ceiling}`);
    }
    out[name] = v;
  }
  return out;
}
