/**
 * The provider options as a careless caller writes them: numbers that are not numbers, a PIN
 * source of no known shape, a token picked by serial. Bad options fail at construction with
 * InvalidArgument naming the option — before the module is loaded — instead of a pool that never
 * opens a session (maxSessions 0 or NaN waited forever) or a cache that never expires.
 */
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { moduleRefs, Pkcs11Provider, type Pkcs11ProviderOptions } from '../src/index.js';
import { openProvider, providerOptions, signal, softhsm, uniqueName } from './support.js';

const invalid = (option: string) =>
  expect.objectContaining({ code: 'InvalidArgument', message: expect.stringContaining(option) });

describe('provider options', () => {
  let provider: Pkcs11Provider;
  let keyUri: string;
  beforeAll(async () => {
    provider = await openProvider();
    keyUri = (await provider.createKey({ name: uniqueName('opts'), spec: 'AES_256' }, { signal: signal() }))
      .uri;
  });
  afterAll(() => provider.close());

  const bad: Array<[string, Partial<Record<keyof Pkcs11ProviderOptions, unknown>>]> = [
    ['maxSessions', { maxSessions: 0 }],
    ['maxSessions', { maxSessions: -1 }],
    ['maxSessions', { maxSessions: Number.NaN }],
    ['maxSessions', { maxSessions: 2.5 }],
    ['maxSessions', { maxSessions: '4' }],
    // Bounded: more sessions than libuv has worker threads (1024 at most) can never be busy at once.
    ['maxSessions', { maxSessions: 1025 }],
    ['maxSessions', { maxSessions: 2 ** 31 }],
    ['maxSessions', { maxSessions: Number.MAX_SAFE_INTEGER }],
    ['maxSessions', { maxSessions: Number.POSITIVE_INFINITY }],
    ['keyCacheMs', { keyCacheMs: Number.NaN }],
    ['keyCacheMs', { keyCacheMs: -1 }],
    ['keyCacheMs', { keyCacheMs: '1000' }],
    ['keyCacheMs', { keyCacheMs: Number.POSITIVE_INFINITY }],
    ['keyCacheMs', { keyCacheMs: 1.5 }],
    ['keyCacheMs', { keyCacheMs: 2 ** 31 }],
    ['lockDirectory', { lockDirectory: '' }],
    ['lockDirectory', { lockDirectory: 7 }],
    ['pin.timeoutMs', { pin: { env: 'KEYPORT_SOFTHSM_PIN', timeoutMs: 0 } }],
    ['pin.timeoutMs', { pin: { env: 'KEYPORT_SOFTHSM_PIN', timeoutMs: -1 } }],
    ['pin.timeoutMs', { pin: { env: 'KEYPORT_SOFTHSM_PIN', timeoutMs: 1.5 } }],
    ['pin.timeoutMs', { pin: { env: 'KEYPORT_SOFTHSM_PIN', timeoutMs: Number.NaN } }],
    ['pin.timeoutMs', { pin: { env: 'KEYPORT_SOFTHSM_PIN', timeoutMs: Number.POSITIVE_INFINITY } }],
    ['pin.timeoutMs', { pin: { env: 'KEYPORT_SOFTHSM_PIN', timeoutMs: 2 ** 31 } }],
    ['pin.timeoutMs', { pin: { env: 'KEYPORT_SOFTHSM_PIN', timeoutMs: '5000' } }],
    ['pin', { pin: { env: 'KEYPORT_SOFTHSM_PIN', timeout: 5000 } }],
    ['pin', { pin: { callback: () => 'x', 'the-pin-itself': true } }],
    ['pin', { pin: {} }],
    ['pin', { pin: { env: 'A', file: '/b' } }],
    ['pin', { pin: 'the-pin-itself' }],
    // Core's rule, as for the other options: data properties of a plain object, string keys.
    ['pin', { pin: { env: 'KEYPORT_SOFTHSM_PIN', [Symbol('the-pin-itself')]: true } }],
    ['pin', { pin: Object.defineProperty({ env: 'KEYPORT_SOFTHSM_PIN' }, 'the-pin-itself', { value: 1 }) }],
    [
      'pin',
      {
        pin: {
          env: 'KEYPORT_SOFTHSM_PIN',
          get 'the-pin-itself'() {
            return true;
          },
        },
      },
    ],
    ['pin.env', { pin: { env: '' } }],
    ['pin.callback', { pin: { callback: 'the-pin-itself' } }],
    ['modulePath', { modulePath: '' }],
    ['token', { token: 'keyport' }],
    ['token.serial', { token: { serial: 42 } }],
    // A misspelt option or token field would leave its default in force unnoticed.
    ['"maxSession"', { maxSession: 1 } as Record<string, unknown>],
    ['"keyCacheMS"', { keyCacheMS: 0 } as Record<string, unknown>],
    ['"lable"', { token: { lable: 'keyport' } }],
    ['token', { token: null }],
    ['options', { [Symbol('maxSessions')]: 1 } as Record<string, unknown>],
    ['oaepHashes', { oaepHashes: ['md5'] }],
    ['name', { name: '' }],
  ];
  for (const [option, override] of bad) {
    it(`${inspect(override, { breakLength: Infinity })} is InvalidArgument naming ${option}, before the module is touched`, () => {
      const path = softhsm().KEYPORT_SOFTHSM_MODULE;
      const refs = moduleRefs(path);
      const error = (() => {
        try {
          new Pkcs11Provider(providerOptions(override as Partial<Pkcs11ProviderOptions>));
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toEqual(invalid(option));
      expect(String((error as Error).message)).not.toContain('the-pin-itself');
      expect(moduleRefs(path)).toBe(refs);
    });
  }

  it("a getter (in the options, token or pin) and a class instance (as options, token or pin) are InvalidArgument: core's checkOptions rule", () => {
    const pinGetter = {
      get env() {
        return 'KEYPORT_SOFTHSM_PIN';
      },
    };
    class Token {
      label = softhsm().KEYPORT_SOFTHSM_TOKEN;
    }
    class PinSource {
      callback(): string {
        return softhsm().KEYPORT_SOFTHSM_PIN;
      }
    }
    const cases: Array<[string | RegExp, () => unknown]> = [
      [
        /maxSessions: accessor properties are not allowed/,
        () => Object.defineProperty(providerOptions(), 'maxSessions', { get: () => 2, enumerable: true }),
      ],
      [
        /token\.label: accessor properties are not allowed/,
        () => ({
          ...providerOptions(),
          token: {
            get label() {
              return softhsm().KEYPORT_SOFTHSM_TOKEN;
            },
          },
        }),
      ],
      [/pin: .*no getter/, () => providerOptions({ pin: pinGetter })],
      [
        /expected an object, got Options/,
        () => {
          class Options {
            constructor() {
              Object.assign(this, providerOptions());
            }
          }
          return new Options();
        },
      ],
      [/token: expected an object, got Token/, () => ({ ...providerOptions(), token: new Token() })],
      [
        /pin: .*class instance/,
        () => providerOptions({ pin: new PinSource() as unknown as { env: string } }),
      ],
    ];
    const path = softhsm().KEYPORT_SOFTHSM_MODULE;
    for (const [message, options] of cases) {
      const refs = moduleRefs(path);
      const given = options();
      expect(() => new Pkcs11Provider(given as Pkcs11ProviderOptions), String(message)).toThrow(
        expect.objectContaining({
          code: 'InvalidArgument',
          provider: 'pkcs11',
          message: expect.stringMatching(message),
        }),
      );
      expect(moduleRefs(path)).toBe(refs);
    }
  });

  it('an unknown key is named, never its value; in pin it is not named either (it may be the PIN)', () => {
    const error = (options: Record<string, unknown>) => {
      try {
        new Pkcs11Provider(options as unknown as Pkcs11ProviderOptions);
      } catch (e) {
        return e as Error;
      }
      throw new Error('accepted');
    };
    const top = error({ ...providerOptions(), maxSession: 'value-9f3a' });
    expect(top).toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('"maxSession"') });
    expect(top.message).not.toContain('value-9f3a');
    const token = error({ ...providerOptions(), token: { lable: 'value-9f3a' } });
    expect(token.message).toContain('"lable"');
    expect(token.message).not.toContain('value-9f3a');
    const pin = error({
      ...providerOptions(),
      pin: { env: 'KEYPORT_SOFTHSM_PIN', 'key-7c1d': 'value-9f3a' },
    });
    expect(pin).toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining('pin') });
    expect(pin.message).not.toMatch(/key-7c1d|value-9f3a/);
  });

  it('keyCacheMs Infinity ("cache forever") and pin.timeoutMs out of range are refused naming the range', () => {
    for (const [option, override] of [
      ['keyCacheMs', { keyCacheMs: Number.POSITIVE_INFINITY }],
      ['pin.timeoutMs', { pin: { env: 'KEYPORT_SOFTHSM_PIN', timeoutMs: Number.POSITIVE_INFINITY } }],
    ] as const)
      expect(() => new Pkcs11Provider(providerOptions(override as Partial<Pkcs11ProviderOptions>))).toThrow(
        expect.objectContaining({
          code: 'InvalidArgument',
          message: expect.stringMatching(
            new RegExp(`${option}: expected an integer of milliseconds from [01] to 2147483647`),
          ),
        }),
      );
  });

  it('the largest maxSessions, keyCacheMs and pin.timeoutMs are accepted', async () => {
    const p = await openProvider({
      maxSessions: 1024,
      keyCacheMs: 2 ** 31 - 1,
      pin: { env: 'KEYPORT_SOFTHSM_PIN', timeoutMs: 2 ** 31 - 1 },
    });
    try {
      await expect(p.describeKey({ uri: keyUri }, { signal: signal() })).resolves.toMatchObject({
        state: 'enabled',
      });
    } finally {
      await p.close();
    }
  });

  it('maxSessions 1 and keyCacheMs 0 work: calls queue on one session, every call looks the key up', async () => {
    const one = await openProvider({ maxSessions: 1, keyCacheMs: 0 });
    try {
      const results = await Promise.all(
        Array.from({ length: 6 }, () =>
          one.encrypt({ uri: keyUri }, randomBytes(8), {}, { signal: signal() }),
        ),
      );
      expect(results.map((r) => r.keyVersion)).toEqual(Array(6).fill('1'));
      expect(one.pool.size).toBe(1);
    } finally {
      await one.close();
    }
  });

  it('the token is found by serial alone, and label and serial must both match', async () => {
    const p11 = provider.p11;
    const slot = p11
      .C_GetSlotList(true)
      .find((s) => p11.C_GetTokenInfo(s).label.trimEnd() === provider.tokenLabel);
    expect(slot).toBeDefined();
    const serial = p11.C_GetTokenInfo(slot as Buffer).serialNumber.trimEnd();
    const bySerial = await openProvider({ token: { serial } });
    try {
      expect(bySerial.tokenLabel).toBe(provider.tokenLabel);
      await expect(bySerial.describeKey({ uri: keyUri }, { signal: signal() })).resolves.toMatchObject({
        state: 'enabled',
      });
    } finally {
      await bySerial.close();
    }
    expect(
      () => new Pkcs11Provider(providerOptions({ token: { label: provider.tokenLabel, serial: 'nope' } })),
    ).toThrow(expect.objectContaining({ code: 'Unavailable' }));
  });
});
