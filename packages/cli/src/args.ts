/** Small parsers shared by commands: repeated options, k=v pairs, durations, dates. */
import { type EncryptionContext, isWellFormedString, MAX_DATE_MS } from '@keyport/core';
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

export const REPRODUCED_CONTEXT_HELP =
  'a pair the message authenticated without storing it (repeatable; what encrypt left out with --context-not-stored)';

/** Context keys only a message itself may carry (the ESDK reserves them; a signed suite's public key). */
const RESERVED_CONTEXT_PREFIX = 'aws-crypto-';

/**
 * `--reproduced-context` pairs (decrypt, rewrap, migrate) as an open option; none given: no
 * option. Parsed as every context flag is (parsePairs). A reserved `aws-crypto-` key is refused
 * here too, naming the flag: the envelope would refuse it anyway, but only once a message is
 * open, and `migrate` would then fail every file (exit 1) for what is a usage error.
 */
export function reproducedContext(values: readonly string[] | undefined): {
  reproducedContext?: EncryptionContext;
} {
  const pairs = parsePairs(values, '--reproduced-context');
  const reserved = Object.keys(pairs).find((k) => k.startsWith(RESERVED_CONTEXT_PREFIX));
  if (reserved !== undefined) {
    throw usageError(
      `--reproduced-context: keys starting with "${RESERVED_CONTEXT_PREFIX}" come from the message only (got ${JSON.stringify(reserved)})`,
    );
  }
  return Object.keys(pairs).length > 0 ? { reproducedContext: pairs } : {};
}

/** Valid UTF-8 from the command line: no U+FFFD (what undecodable bytes become), no lone surrogate. */
export function wellFormedText(s: string): boolean {
  return !s.includes('\uFFFD') && isWellFormedString(s);
}

const UNITS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export const EXPIRES_FORMS =
  'an ISO 8601 date-time with a zone (2099-12-31T23:59:59Z, 2099-12-31T18:00:00-05:00), a date (2099-12-31: its start, 00:00 UTC) or a duration from now (90s, 15m, 12h, 30d)';

/**
 * The only date forms taken: `YYYY-MM-DD`, or that with `THH:MM[:SS[.fff]]` and `Z` or
 * `±HH:MM`. `new Date()` took far more and guessed: "12" and "March 7" became dates in 2001,
 * "12/31/2099" a US date, "2099-02-30" rolled over to 2 March, and a date-time without a zone
 * was read in the machine's local time zone.
 */
const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2}))?$/;

/**
 * A grant's expiry: an ISO 8601 date-time with an explicit zone, a bare date (the start of that
 * day in UTC, as ISO 8601 and JavaScript read one), or a duration from `now`: 90s, 15m, 12h,
 * 30d. The date must exist in the calendar (no 30 February, no 24:00), lie in the future and
 * not past 9999-12-31 (core's range): a grant that is already expired, or that a typo made
 * last for ever, is refused before any provider call.
 */
export function parseExpiry(value: string, now: Date = new Date(), flag = '--expires'): Date {
  const refuse = (why: string): never => {
    throw usageError(`${flag} ${JSON.stringify(value)} ${why}; give ${EXPIRES_FORMS}`);
  };
  let ms: number;
  const duration = /^(\d+)([smhd])$/.exec(value);
  const date = duration === null ? ISO_DATE.exec(value) : null;
  if (duration !== null) {
    // BigInt: 400 digits of days would be Infinity as a Number (then an "Invalid Date").
    const span = BigInt(duration[1] as string) * BigInt(UNITS[duration[2] as string] as number);
    if (span === 0n) refuse('is no time at all');
    ms = span > BigInt(MAX_DATE_MS) ? Number.POSITIVE_INFINITY : now.getTime() + Number(span);
  } else if (date !== null) {
    const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = '', zone = 'Z'] = date as unknown as string[];
    const [year, month, day] = [Number(y), Number(mo), Number(d)];
    // Date.UTC(year, month, 0) is the last day of `month` (1-based): 28, 29, 30 or 31.
    const monthDays = month >= 1 && month <= 12 ? new Date(Date.UTC(year, month, 0)).getUTCDate() : 0;
    if (day < 1 || day > monthDays) refuse('is not a calendar date');
    if (Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) refuse('is not a time of day');
    let offset = 0;
    if (zone !== 'Z') {
      const [oh, om] = [Number(zone.slice(1, 3)), Number(zone.slice(4, 6))];
      if (oh > 23 || om > 59) refuse('has no valid zone offset');
      offset = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
    }
    const utc = Date.UTC(
      year,
      month - 1,
      day,
      Number(h),
      Number(mi),
      Number(sec),
      Number(frac.padEnd(3, '0').slice(0, 3)),
    );
    // Date.UTC maps years 0..99 to 1900..1999; such dates are in the past either way.
    ms = year < 100 ? Number.NEGATIVE_INFINITY : utc - offset;
  } else {
    return refuse('is not a date or duration keyport reads');
  }
  if (ms <= now.getTime()) refuse('is not in the future');
  if (ms > MAX_DATE_MS) refuse('is after 9999-12-31');
  return new Date(ms);
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
