/** Small parsers shared by commands: repeated options, k=v pairs, durations, dates. */
import { type EncryptionContext, isWellFormedString } from '@keyport/core';
import { usageError } from './errors.js';

export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/**
 * `k=v` pairs (repeated flag) into a context or constraint: a prototype-free map, so
 * `__proto__`, `constructor` and `toString` are ordinary keys (never dropped, never a
 * prototype). The value may contain '='. Refused: an entry without "=", an empty key, a key
 * given twice, and text that is not valid UTF-8 (the terminal's bytes decode to U+FFFD) or not
 * well-formed Unicode. Errors name the key (escaped), never a value.
 */
export function parsePairs(values: readonly string[] | undefined, flag: string): EncryptionContext {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    if (eq < 0) throw usageError(`${flag} takes key=value (an entry has no "=")`);
    if (eq === 0) throw usageError(`${flag} takes key=value (an entry has an empty key)`);
    const key = v.slice(0, eq);
    const value = v.slice(eq + 1);
    if (!wellFormedText(key) || !wellFormedText(value)) {
      throw usageError(
        `${flag}: the pair for key ${wellFormedText(key) ? JSON.stringify(key) : '#' + String(Object.keys(out).length + 1)} is not valid UTF-8`,
      );
    }
    if (Object.hasOwn(out, key)) throw usageError(`${flag} names the key ${JSON.stringify(key)} twice`);
    out[key] = value;
  }
  return out;
}

/** Valid UTF-8 from the command line: no U+FFFD (what undecodable bytes become), no lone surrogate. */
export function wellFormedText(s: string): boolean {
  return !s.includes('\uFFFD') && isWellFormedString(s);
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

/**
 * Decimal digits only: Number() would also take "0x10", "1e3", " 5" and "0b1", so a typo or a
 * hex value would silently become some other count, deadline or number of days.
 */
export function decimalInt(value: string): number {
  return /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
}

/** A whole number from 1 to `max` (default: any safe integer), written in decimal digits. */
export function positiveInt(value: string, flag: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = decimalInt(value);
  if (!Number.isInteger(n) || n <= 0 || n > max) {
    throw usageError(
      max === Number.MAX_SAFE_INTEGER
        ? `${flag} must be a positive integer`
        : `${flag} must be a whole number from 1 to ${max}`,
    );
  }
  return n;
}
