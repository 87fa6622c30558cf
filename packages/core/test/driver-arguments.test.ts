import { describe, expect, it } from 'vitest';
import { checkBytes, checkedFor, driverCallOptions, KeyportError } from '../src/index.js';

describe('checkedFor', () => {
  it("labels a check's KeyportError with the provider and key", () => {
    const error = (() => {
      try {
        checkedFor('p', 'p://k', () => checkBytes('text', 'plaintext'));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toMatchObject({ code: 'InvalidArgument', provider: 'p', keyUri: 'p://k' });
  });

  it("turns a caller's getter or Proxy that throws into InvalidArgument, not its raw exception", () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new TypeError('secret detail');
        },
      },
    );
    let error: unknown;
    try {
      checkedFor('p', undefined, () => (hostile as { uri: unknown }).uri);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KeyportError);
    expect(error).toMatchObject({ code: 'InvalidArgument', provider: 'p' });
    expect(String(error)).not.toContain('secret detail');
    expect(checkedFor('p', undefined, () => 7)).toBe(7);
  });
});

describe('driverCallOptions', () => {
  it('takes o omitted or { signal? }, a list page size from 1 to 10,000, and refuses anything else', () => {
    expect(driverCallOptions(undefined).signal.aborted).toBe(false);
    const signal = new AbortController().signal;
    expect(driverCallOptions({ signal }).signal).toBe(signal);
    expect(driverCallOptions({ signal, pageSize: 50 }, true)).toEqual({ signal, pageSize: 50 });
    expect(driverCallOptions({ pageSize: Number.NaN })).not.toHaveProperty('pageSize');
    for (const [o, list] of [
      [null, false],
      ['signal', false],
      [{ signal: 'abort' }, false],
      [{ signal: {} }, false],
      [{ pageSize: Number.NaN }, true],
      [{ pageSize: '10' }, true],
      [{ pageSize: 0 }, true],
      [{ pageSize: 10_001 }, true],
    ] as const) {
      expect(() => driverCallOptions(o, list), JSON.stringify(o)).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    }
  });
});
