import { describe, expect, it } from 'vitest';
import {
  type Capabilities,
  contextContains,
  contextKeys,
  type EncryptionContext,
  encodeContext,
  isKeyportError,
  Keyport,
  KeyportError,
  type KmsProvider,
  MAX_TIMER_MS,
  toEncryptionContext,
} from '../src/index.js';
import { AES_ONLY_CAPABILITIES } from './support/capabilities.js';

const caps: Capabilities = { ...AES_ONLY_CAPABILITIES, grants: 'native', grantConstraints: true };

const uri = 'local://k.kp#a';

function invalid(fn: () => unknown, names?: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(isKeyportError(thrown, 'InvalidArgument'), String(thrown)).toBe(true);
  if (names !== undefined) expect((thrown as KeyportError).message).toContain(names);
}

describe('contexts are plain string maps', () => {
  it('a Map is converted; the result is prototype-free and __proto__, constructor, toString are ordinary keys', () => {
    const c = toEncryptionContext(
      new Map([
        ['__proto__', 'x'],
        ['constructor', 'y'],
        ['toString', 'z'],
      ]),
    );
    expect(Object.getPrototypeOf(c)).toBe(null);
    expect(Object.keys(c).sort()).toEqual(['__proto__', 'constructor', 'toString']);
    expect(Object.getOwnPropertyDescriptor(c, '__proto__')?.value).toBe('x');
    // The same pairs given as an object with an own __proto__ key encode identically.
    const own = JSON.parse('{"__proto__":"x","constructor":"y","toString":"z"}') as EncryptionContext;
    expect(encodeContext(own)).toEqual(encodeContext(c));
    expect(contextKeys(own)).toEqual(['__proto__', 'constructor', 'toString']);
  });

  it('a __proto__ pair is a constraint like any other: it is required, never dropped', () => {
    const required = toEncryptionContext(new Map([['__proto__', 'x']]));
    expect(contextContains({ tenant: 'b' }, required)).toBe(false);
    expect(contextContains(new Map([['__proto__', 'x']]), required)).toBe(true);
    expect(contextContains(new Map([['__proto__', 'y']]), required)).toBe(false);
  });

  it('refuses everything that is not a plain object or Map of non-empty, well-formed strings', () => {
    for (const bad of [
      null,
      'a=b',
      42,
      ['a'],
      new Date(),
      new Set(['a']),
      Object.create({ a: 'x' }),
      { [Symbol('a')]: 'x' },
      { a: 1 },
      { '': 'x' },
      { a: '\ud800' },
      new Map([[1, 'x']]),
      new Map([['a', 1]]),
      new Map([[Symbol('a'), 'x']]),
      Object.defineProperty({}, 'a', { get: () => 'x', enumerable: true }),
    ]) {
      invalid(() => toEncryptionContext(bad), 'context');
    }
  });
});

function provider(overrides: Partial<KmsProvider>): KmsProvider {
  return { scheme: 'local', name: 'local', capabilities: caps, ...overrides } as KmsProvider;
}

describe('Keyport boundary', () => {
  it('hands the provider a prototype-free copy of a Map context, audited by its keys', async () => {
    let seen: EncryptionContext | undefined;
    const kp = new Keyport({
      providers: [
        provider({
          encrypt: async (_ref, _pt, req) => {
            seen = req.context;
            return { ciphertext: new Uint8Array(1), keyVersion: '1' };
          },
        }),
      ],
    });
    await kp.encrypt(uri, new Uint8Array(1), { context: new Map([['__proto__', 'tenant-a']]) });
    expect(seen !== undefined && Object.getPrototypeOf(seen)).toBe(null);
    expect(Object.entries(seen ?? {})).toEqual([['__proto__', 'tenant-a']]);
  });

  it('a grant constraint given as a Map reaches the provider as pairs, never as an empty object', async () => {
    let constraints: unknown;
    const kp = new Keyport({
      providers: [
        provider({
          createGrant: async (_ref, req) => {
            constraints = req.constraints;
            return { ...req, id: 'g', keyUri: uri };
          },
          listGrants: async function* () {},
          revokeGrant: async () => {},
        }),
      ],
    });
    await kp.createGrant(uri, {
      grantee: 'bob',
      operations: ['decrypt'],
      constraints: { contextSubset: new Map([['__proto__', 'x']]) as unknown as EncryptionContext },
    });
    expect(Object.entries((constraints as { contextSubset: object }).contextSubset)).toEqual([
      ['__proto__', 'x'],
    ]);
  });

  it('client options that throw when read, or a Map of providers, are InvalidArgument, never a raw error', () => {
    const throwing = (o: object, key: string | number): object =>
      Object.defineProperty(o, key, {
        get() {
          throw new Error('getter ran');
        },
        enumerable: true,
      });
    const drv = provider({});
    for (const [what, options] of Object.entries({
      'named providers with a getter': { providers: throwing({}, 'a') },
      'a providers list with a getter': { providers: throwing([], 0) },
      'a providers proxy': {
        providers: new Proxy([], {
          get() {
            throw new Error('trap ran');
          },
        }),
      },
      'a driver whose scheme getter throws': { providers: [throwing({ capabilities: caps }, 'scheme')] },
      'a sink whose write getter throws': { providers: [drv], audit: [throwing({}, 'write')] },
      'defaults with a getter': { providers: [drv], defaults: throwing({}, 'local') },
      'defaults naming a non-string': { providers: [drv], defaults: { local: 5 } },
      // A Map has no own entries: it used to register no driver at all, silently.
      'a Map of providers': { providers: new Map([['local', drv]]) },
    })) {
      let thrown: unknown;
      try {
        new Keyport(options as never);
      } catch (e) {
        thrown = e;
      }
      expect(isKeyportError(thrown, 'InvalidArgument'), `${what}: ${String(thrown)}`).toBe(true);
      expect((thrown as Error).message, what).toMatch(/^options\./);
    }
    // Named instances and defaults as plain objects still work as before.
    const kp = new Keyport({ providers: { main: drv }, defaults: { local: 'main' } });
    expect(kp.instances().map((i) => i.name)).toEqual(['main']);
    invalid(() => new Keyport({ providers: [drv], defaults: JSON.parse('{"__proto__":"local"}') }));
  });

  it('maxAttempts bounds the attempts exactly (NaN is refused, not 282 attempts)', async () => {
    let calls = 0;
    const failing = provider({
      encrypt: async () => {
        calls++;
        throw new KeyportError('Unavailable', 'down');
      },
    });
    expect(() => new Keyport({ providers: [failing], retry: { maxAttempts: Number.NaN } })).toThrow(
      /maxAttempts/,
    );
    const kp = new Keyport({
      providers: [failing],
      retry: { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0 },
    });
    await expect(kp.encrypt(uri, new Uint8Array(1))).rejects.toMatchObject({ code: 'Unavailable' });
    expect(calls).toBe(3);
  });

  it("timeoutMs '200' is refused before the provider runs: a string never disables the deadline", async () => {
    let calls = 0;
    const kp = new Keyport({
      providers: [
        provider({
          encrypt: async () => {
            calls++;
            return { ciphertext: new Uint8Array(1), keyVersion: '1' };
          },
        }),
      ],
    });
    for (const timeoutMs of ['200', Number.NaN, 3e9, MAX_TIMER_MS + 1, 0, -1]) {
      await expect(
        kp.encrypt(uri, new Uint8Array(1), { timeoutMs: timeoutMs as number }),
      ).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
    expect(calls).toBe(0);
    await kp.encrypt(uri, new Uint8Array(1), { timeoutMs: MAX_TIMER_MS });
    expect(calls).toBe(1);
  });

  it('a deadline still cuts a slow provider off with Timeout', async () => {
    const kp = new Keyport({
      providers: [provider({ encrypt: () => new Promise(() => undefined) })],
    });
    const started = Date.now();
    await expect(kp.encrypt(uri, new Uint8Array(1), { timeoutMs: 30 })).rejects.toMatchObject({
      code: 'Timeout',
    });
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
