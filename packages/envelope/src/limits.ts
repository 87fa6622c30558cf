/**
 * Limits enforced while reading a message, so hostile input cannot make open allocate,
 * loop or call providers without bound.
 */
import { KeyportError } from '@keyport/core';

export interface OpenLimits {
  /**
   * Most encrypted data keys a header may carry. The ESDK's default is "no limit" (only the
   * format's u16 bound, 65535); keyport keeps that default and bounds the work per EDK by
   * trying only EDKs that match a trusted recipient.
   */
  readonly maxEncryptedDataKeys?: number;
  /** Largest header accepted, in bytes (default 1 MiB). */
  readonly maxHeaderBytes?: number;
  /** Largest frame length accepted (default 64 MiB): a frame is buffered until its tag verifies. */
  readonly maxFrameLength?: number;
  /** Most frames accepted (default 2^32 - 1, the format's bound). */
  readonly maxFrames?: number;
  /** Largest non-framed body accepted (default 64 MiB): it is buffered whole before release. */
  readonly maxNonFramedBytes?: number;
}

export interface ResolvedLimits {
  readonly maxEncryptedDataKeys: number;
  readonly maxHeaderBytes: number;
  readonly maxFrameLength: number;
  readonly maxFrames: number;
  readonly maxNonFramedBytes: number;
}

export const DEFAULT_LIMITS: ResolvedLimits = {
  maxEncryptedDataKeys: 0xffff,
  maxHeaderBytes: 1024 * 1024,
  maxFrameLength: 64 * 1024 * 1024,
  maxFrames: 0xffff_ffff,
  maxNonFramedBytes: 64 * 1024 * 1024,
};

export function resolveLimits(given: OpenLimits = {}): ResolvedLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const name of Object.keys(DEFAULT_LIMITS) as Array<keyof ResolvedLimits>) {
    const v = given[name];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new KeyportError('InvalidArgument', `${name} must be a positive integer`);
    }
    out[name] = v;
  }
  return out;
}
