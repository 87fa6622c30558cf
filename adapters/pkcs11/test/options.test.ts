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
    ['keyCacheMs', { keyCacheMs: Number.NaN }],
    ['keyCacheMs', { keyCacheMs: -1 }],
    ['keyCacheMs', { keyCacheMs: '1000' }],
    ['keyCacheMs', { keyCacheMs: Number.POSITIVE_INFINITY }],
    ['keyCacheMs', { keyCacheMs: 1.5 }],
    ['keyCacheMs', { keyCacheMs: 2 ** 31 }],
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
    ['pin.env', { pin: { env: '' } }],
    ['pin.callback', { pin: { callback: 'the-pin-itself' } }],
    ['modulePath', { modulePath: '' }],
    ['token', { token: 'keyport' }],
    ['token.serial', { token: { serial: 42 } }],
    // A misspelt option or token field would leave its default in force unnoticed.
    ['"maxSession"', { maxSession: 1 } as Record<string, unknown>],
    ['"keyCacheMS"', { keyCacheMS: 0 } as Record<string, unknown>],
    ['"lable"', { token: { lable: 'keyport' } }],
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

  it('the largest keyCacheMs and pin.timeoutMs are accepted', async () => {
    const p = await openProvider({
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
