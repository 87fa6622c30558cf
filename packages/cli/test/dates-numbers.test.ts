/**
 * Dates, durations and numbers as a careless user types them: loose forms are refused with a
 * usage error (exit 2) that shows an accepted one, before anything is changed.
 */
import { describe, expect, it } from 'vitest';
import { parseExpiry } from '../src/args.js';
import { parseConfigText } from '../src/index.js';
import { jsonError, localWorkspace, runCli } from './support/cli.js';

const NOW = new Date('2026-12-06T12:00:00.000Z');
const expiry = (value: string): string => parseExpiry(value, NOW).toISOString();

describe('--expires', () => {
  it('takes an ISO 8601 date-time with a zone, a bare date (00:00 UTC) and durations', () => {
    expect(expiry('2099-12-31T23:59:59Z')).toBe('2099-12-31T23:59:59.000Z');
    expect(expiry('2099-12-31T18:00:00-05:00')).toBe('2099-12-31T23:00:00.000Z');
    expect(expiry('2099-12-31T05:30+05:30')).toBe('2099-12-31T00:00:00.000Z');
    expect(expiry('2099-12-31T23:59:59.123456Z')).toBe('2099-12-31T23:59:59.123Z');
    // A bare date is the start of that day in UTC (as ISO 8601 and JavaScript read it).
    expect(expiry('2099-12-31')).toBe('2099-12-31T00:00:00.000Z');
    expect(expiry('2028-02-29')).toBe('2028-02-29T00:00:00.000Z');
    expect(expiry('9999-12-31T23:59:59.999Z')).toBe('9999-12-31T23:59:59.999Z');
    expect(expiry('90s')).toBe('2026-12-06T12:01:30.000Z');
    expect(expiry('15m')).toBe('2026-12-06T12:15:00.000Z');
    expect(expiry('12h')).toBe('2026-12-07T00:00:00.000Z');
    expect(expiry('30d')).toBe('2027-01-05T12:00:00.000Z');
  });

  it('refuses loose, impossible, past and too distant dates with an accepted example', () => {
    for (const bad of [
      // new Date() read these as 2001-12-01, 2001-03-07 and a US month/day date.
      '12',
      'March 7',
      '12/31/2099',
      // Rolled over to 2 March; 31 April; 29 February of a common year; month 13; day 0.
      '2099-02-30',
      '2099-04-31',
      '2027-02-29',
      '2099-13-01',
      '2099-00-10',
      '2099-01-00',
      // No zone: the machine's local time would have been used.
      '2099-12-31T23:59:59',
      '2099-12-31 23:59:59Z',
      '2099-12-31T24:00:00Z',
      '2099-12-31T23:60:00Z',
      '2099-12-31T23:59:60Z',
      '2099-12-31T12:00:00+24:00',
      '2099-12-31T12:00:00+0500',
      '+002099-12-31T00:00:00Z',
      '99-12-31',
      'Thu, 31 Dec 2099 00:00:00 GMT',
      ' 2099-12-31',
      '2099-12-31 ',
      '',
      // Durations: none at all, fractions, units keyport has no, signs, exponents.
      '0d',
      '0s',
      '1.5h',
      '-1d',
      '+1d',
      '1e3s',
      '1w',
      '1y',
      '1D',
      '12',
      'Infinity',
      'NaN',
      // The past, and beyond core's range (9999-12-31).
      '2001-01-01',
      '2026-12-06T11:59:59Z',
      '2026-12-06T12:00:00Z',
      '0000-01-01',
      '10000-01-01',
      '9999-12-31T23:59:59-01:00',
      '3000000d',
      `${'9'.repeat(400)}d`,
    ]) {
      expect(() => parseExpiry(bad, NOW), JSON.stringify(bad)).toThrow(
        expect.objectContaining({
          code: 'InvalidArgument',
          message: expect.stringContaining('2099-12-31T23:59:59Z'),
        }),
      );
    }
    expect(() => parseExpiry('2099-02-30', NOW)).toThrow('"2099-02-30" is not a calendar date');
    expect(() => parseExpiry('2001-01-01', NOW)).toThrow('"2001-01-01" is not in the future');
    expect(() => parseExpiry('3000000d', NOW)).toThrow('is after 9999-12-31');
  });

  it('grants create refuses a loose --expires (exit 2) before creating anything', async () => {
    const ws = await localWorkspace();
    const cwd = ws.dir;
    expect((await runCli(['keys', 'create', 'k'], { cwd })).code).toBe(0);
    for (const bad of ['12', 'March 7', '12/31/2099', '2099-02-30', '2099-12-31T00:00:00']) {
      const r = await runCli(
        ['--json', 'grants', 'create', ws.uri('k'), '--grantee', 'app', '--op', 'encrypt', '--expires', bad],
        { cwd },
      );
      expect(r.code, `${bad}: ${r.stderr}`).toBe(2);
      expect(jsonError(r.stderr).message).toMatch(/^--expires ".*" is .*; give an ISO 8601 date-time/);
    }
    const list = await runCli(['--json', 'grants', 'list', ws.uri('k')], { cwd });
    expect(JSON.parse(list.stdout).grants).toEqual([]);
    const ok = await runCli(
      [
        '--json',
        'grants',
        'create',
        ws.uri('k'),
        '--grantee',
        'app',
        '--op',
        'encrypt',
        '--expires',
        '2099-12-31',
      ],
      { cwd },
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).expiresAt).toBe('2099-12-31T00:00:00.000Z');
  });
});

describe('numbers', () => {
  it('config numbers are whole numbers in decimal digits, in YAML and JSON', () => {
    const yaml = (v: string) =>
      `providers:\n  gcp-kms: { port: 8443 }\n  local: { keystore: k.kp }\ndefaults:\n  jobs: ${v}\n`;
    const json = (v: string) => `{"providers":{"local":{"keystore":"k.kp"}},"defaults":{"timeoutMs":${v}}}`;
    // YAML read 0x10 as 16, 0o17 as 15, 1e1 as 10 and +5, 5.0 and 5. as 5; JSON 5.0 and 1e1 alike.
    for (const bad of ['0x10', '0o17', '1e1', '+5', '5.0', '5.', '-5.0']) {
      expect(() => parseConfigText(yaml(bad), 'c.yaml'), bad).toThrow(
        `config c.yaml: defaults.jobs: write a whole number in decimal digits, such as 8 (not ${bad})`,
      );
    }
    for (const bad of ['5.0', '1e1', '1E3', '1000.5', '-0.0']) {
      expect(() => parseConfigText(json(bad), 'c.json'), bad).toThrow(
        `config c.json: defaults.timeoutMs: write a whole number in decimal digits, such as 8 (not ${bad})`,
      );
    }
    // Paths through lists and named instances; the error is a usage/config error (exit 2).
    expect(() =>
      parseConfigText('providers:\n  local: { keystore: k.kp }\n  gcp-kms+dr: { port: 0x1bb }\n', 'c.yaml'),
    ).toThrow('providers.gcp-kms+dr.port: write a whole number');
    expect(() =>
      parseConfigText('{"providers":{"local":{"keystore":"k.kp"}},"x":[1,[2,3.5]]}', 'c.json'),
    ).toThrow(
      expect.objectContaining({
        code: 'InvalidArgument',
        message: expect.stringContaining('x[1][1]: write'),
      }),
    );
    // Decimal digits (leading zeros are still decimal, as on the command line) are read as before.
    expect(parseConfigText(yaml('010'), 'c.yaml').defaults).toEqual({ jobs: 10 });
    expect(parseConfigText(json('30000'), 'c.json').defaults).toEqual({ timeoutMs: 30000 });
    // Infinity, NaN, negatives and numbers past their bound stay refused by the schema.
    for (const bad of ['.inf', '.nan', '-1', '0', '257']) {
      expect(() => parseConfigText(yaml(bad), 'c.yaml'), bad).toThrow(/config c\.yaml: defaults\.jobs: /);
    }
  });

  it('a single-valued flag given twice is refused (exit 2), whatever the values', async () => {
    const ws = await localWorkspace();
    const cwd = ws.dir;
    expect((await runCli(['keys', 'create', 'k'], { cwd })).code).toBe(0);
    for (const argv of [
      // Commander kept the last: the bad first value was never looked at, and ran with 3.
      ['migrate', '--from', ws.uri('a'), '--to', ws.uri('b'), '--jobs', '0x10', '--jobs', '3', 'nothing'],
      ['migrate', '--from', ws.uri('a'), '--to', ws.uri('b'), '-j', '2', '--jobs=3', 'nothing'],
      ['--timeout', '5000', '--timeout', '6000', 'keys', 'list'],
      ['keys', 'schedule-deletion', ws.uri('k'), '--days', '30', '--days', '7'],
      [
        'grants',
        'create',
        ws.uri('k'),
        '--grantee',
        'a',
        '--op',
        'encrypt',
        '--expires',
        '1d',
        '--expires',
        '2d',
      ],
    ]) {
      const r = await runCli(['--json', ...argv], { cwd });
      expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(2);
      expect(jsonError(r.stderr).message).toMatch(/^--[a-z-]+ is given twice: give it once/);
    }
    // Nothing happened: the key is not scheduled for deletion and has no grant.
    const key = await runCli(['--json', 'keys', 'describe', ws.uri('k')], { cwd });
    expect(JSON.parse(key.stdout).state).toBe('enabled');
    expect(
      JSON.parse((await runCli(['--json', 'grants', 'list', ws.uri('k')], { cwd })).stdout).grants,
    ).toEqual([]);
    // Repeatable flags stay repeatable.
    const g = await runCli(
      ['--json', 'grants', 'create', ws.uri('k'), '--grantee', 'a', '--op', 'encrypt', '--op', 'decrypt'],
      { cwd },
    );
    expect(g.code, g.stderr).toBe(0);
    expect(JSON.parse(g.stdout).operations).toEqual(['encrypt', 'decrypt']);
  });

  it('--days and --rotation-days stop at 100 years (core range), named, before the keystore opens', async () => {
    const ws = await localWorkspace();
    for (const argv of [
      ['keys', 'schedule-deletion', ws.uri('k'), '--days', '36501'],
      ['keys', 'create', 'k2', '--rotation-days', '99999999'],
    ]) {
      // No passphrase: reaching the keystore would fail with another error.
      const r = await runCli(['--json', ...argv], {
        cwd: ws.dir,
        env: { KEYPORT_LOCAL_PASSPHRASE: undefined },
      });
      expect(r.code, r.stderr).toBe(2);
      expect(jsonError(r.stderr).message).toMatch(/^--[a-z-]+ must be a whole number from 1 to 36500$/);
    }
  });
});
