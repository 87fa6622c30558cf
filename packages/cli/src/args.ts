/** Small parsers shared by commands: repeated options, k=v pairs, durations, dates. */
import type { EncryptionContext } from '@keyport/core';
import { usageError } from './errors.js';

export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `k=v` pairs (repeated flag) into a context; the value may contain '='. Values are never echoed. */
export function parsePairs(values: readonly string[] | undefined, flag: string): EncryptionContext {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw usageError(`${flag} takes key=value (got an entry without "=" or without a key)`);
    const key = v.slice(0, eq);
    if (Object.hasOwn(out, key)) throw usageError(`${flag} names the key "${key}" twice`);
    out[key] = v.slice(eq + 1);
  }
  return out;
}

const UNITS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** An ISO date, or a duration from now: 90s, 15m, 12h, 30d. */
export function parseExpiry(value: string, now: Date = new Date()): Date {
  const m = /^(\d+)([smhd])$/.exec(value);
  if (m !== null) return new Date(now.getTime() + Number(m[1]) * (UNITS[m[2] as string] as number));
  const d = new Date(value);
  if (Number.isNaN(d.getTime()))
    throw usageError('--expires takes an ISO date or a duration like 12h or 30d');
  return d;
}

export function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw usageError(`${flag} must be a positive integer`);
  return n;
}
