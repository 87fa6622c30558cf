/**
 * The check drivers run on a failed call's error before mapping it: does what core keeps of the
 * error quote the key material the request carried?
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { errorQuotesSecret, quotesSecret } from '../src/index.js';

const secret = Buffer.from('0123456789abcdef0123456789ABCDEF', 'latin1');
const binary = randomBytes(32);

describe('quotesSecret', () => {
  it('finds the secret whole or a run of it, raw, hex and base64 at any alignment', () => {
    expect(quotesSecret(`Value '${secret.toString('latin1')}' at 'plaintext' failed`, secret)).toBe(true);
    expect(quotesSecret(`...${secret.subarray(5, 15).toString('latin1')}...`, secret)).toBe(true);
    expect(quotesSecret(binary.toString('hex'), binary)).toBe(true);
    expect(quotesSecret(binary.toString('hex').toUpperCase(), binary)).toBe(true);
    expect(quotesSecret(`{"Plaintext":"${binary.toString('base64')}"}`, binary)).toBe(true);
    expect(quotesSecret(binary.toString('base64url'), binary)).toBe(true);
    for (const pad of [1, 2]) {
      const inside = Buffer.concat([randomBytes(pad), binary, randomBytes(5)]).toString('base64');
      expect(quotesSecret(inside, binary), `alignment ${pad}`).toBe(true);
    }
  });

  it('does not take ordinary text, or a secret too short to tell from it, for a quote', () => {
    expect(quotesSecret('DisabledException: key is disabled', binary)).toBe(false);
    expect(quotesSecret('DisabledException: key is disabled', Buffer.from('x'))).toBe(false);
    expect(quotesSecret('', binary)).toBe(false);
    expect(quotesSecret('anything', new Uint8Array(0))).toBe(false);
    // 7 raw bytes of a secret: below the 8-character run
    expect(quotesSecret(`..${secret.subarray(0, 7).toString('latin1')}..`, secret)).toBe(false);
  });
});

describe('errorQuotesSecret', () => {
  it('looks at what core keeps: name, message, stack, code and request id, through causes and aggregates', () => {
    const quoted = binary.toString('base64');
    expect(errorQuotesSecret(new Error(`refused ${quoted}`), [binary])).toBe(true);
    expect(errorQuotesSecret(Object.assign(new Error('x'), { code: quoted }), [binary])).toBe(true);
    expect(
      errorQuotesSecret(Object.assign(new Error('x'), { $metadata: { requestId: quoted } }), [binary]),
    ).toBe(true);
    expect(errorQuotesSecret(new Error('outer', { cause: new Error(`inner ${quoted}`) }), [binary])).toBe(
      true,
    );
    expect(errorQuotesSecret(new AggregateError([new Error(quoted)], 'all failed'), [binary])).toBe(true);
    expect(errorQuotesSecret(new Error('clean'), [randomBytes(16), binary], [`x-request-id ${quoted}`])).toBe(
      true,
    );
    expect(errorQuotesSecret(new Error('clean'), [binary])).toBe(false);
    expect(errorQuotesSecret(undefined, [binary])).toBe(false);
  });

  it('a cause chain that loops ends', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(errorQuotesSecret(a, [binary])).toBe(false);
  });
});
