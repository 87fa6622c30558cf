/**
 * The token's session limits (CK_TOKEN_INFO) bound the pool, and a token that has no session free
 * (CKR_SESSION_COUNT from C_OpenSession) makes callers wait for a pooled session or fail typed.
 *
 * SoftHSM2 cannot be given a session limit: its Token::getTokenInfo hard-codes
 * ulMaxSessionCount = CK_EFFECTIVELY_INFINITE and ulSessionCount = CK_UNAVAILABLE_INFORMATION, and
 * SessionManager::openSession never answers CKR_SESSION_COUNT (a "TODO" in 2.6.1; softhsm2.conf
 * has no such setting). So the decision is tested as a pure function over token-info values, the
 * real token's answer is read as it is, and a limit or a full token is put on top of the real
 * module's answers (one field of C_GetTokenInfo, one return value of C_OpenSession).
 */
import { KeyportError } from '@keyport/core';
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { moduleRefs, type Pkcs11Provider, pkcs11 } from '../src/index.js';
import { poolSize, type TokenSessionCounts } from '../src/options.js';
import { openProvider, providerOptions, signal, softhsm, uniqueName, withWrappedP11 } from './support.js';

/** CK_UNAVAILABLE_INFORMATION as pkcs11js 2.1.7 answers it (seen), and a full 64-bit one. */
const UNAVAILABLE = 0xffff_ffff;
const UNAVAILABLE_64 = Number(2n ** 64n - 1n);

const info = (over: Partial<TokenSessionCounts>): TokenSessionCounts => ({
  maxSessionCount: 0,
  sessionCount: UNAVAILABLE,
  maxRwSessionCount: 0,
  rwSessionCount: UNAVAILABLE,
  ...over,
});

describe('poolSize: maxSessions against CK_TOKEN_INFO', () => {
  it('no limit known (CK_EFFECTIVELY_INFINITE, CK_UNAVAILABLE_INFORMATION): the option or 4', () => {
    for (const max of [0, UNAVAILABLE, UNAVAILABLE_64]) {
      const token = info({ maxSessionCount: max, maxRwSessionCount: max });
      expect(poolSize(undefined, token)).toBe(4);
      expect(poolSize(1024, token)).toBe(1024);
    }
  });

  it('a maxSessions above the token maximum is InvalidArgument naming both numbers', () => {
    const token = info({ maxSessionCount: 16, sessionCount: 0 });
    expect(poolSize(16, token)).toBe(16);
    let error: unknown;
    try {
      poolSize(17, token);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KeyportError);
    expect(error).toMatchObject({ code: 'InvalidArgument', retryable: false });
    expect((error as Error).message).toMatch(/maxSessions: 17 .*\(16,/);
  });

  it('the pool opens R/W sessions: ulMaxRwSessionCount bounds it too', () => {
    const token = info({ maxSessionCount: 16, maxRwSessionCount: 3 });
    expect(() => poolSize(4, token)).toThrow(/maxSessions: 4 .*\(3,/);
    expect(poolSize(3, token)).toBe(3);
    expect(poolSize(undefined, token)).toBe(3);
    expect(poolSize(undefined, info({ maxSessionCount: 0, maxRwSessionCount: 2 }))).toBe(2);
  });

  it('the default is clamped to what is free now (at least 1); a given size only to the maximum', () => {
    expect(poolSize(undefined, info({ maxSessionCount: 2 }))).toBe(2);
    expect(poolSize(undefined, info({ maxSessionCount: 5, sessionCount: 3 }))).toBe(2);
    expect(poolSize(undefined, info({ maxSessionCount: 5, sessionCount: 5 }))).toBe(1);
    expect(poolSize(undefined, info({ maxSessionCount: 8, maxRwSessionCount: 6, rwSessionCount: 5 }))).toBe(
      1,
    );
    // Sessions others hold now may close: the caller's explicit size up to the maximum stands.
    expect(poolSize(5, info({ maxSessionCount: 5, sessionCount: 3 }))).toBe(5);
  });
});

const countError = () =>
  new pkcs11js.Pkcs11Error('CKR_SESSION_COUNT', pkcs11js.CKR_SESSION_COUNT, 'C_OpenSession');

describe('session limits against SoftHSM2', () => {
  let provider: Pkcs11Provider;
  let keyUri: string;
  beforeAll(async () => {
    provider = await openProvider();
    keyUri = (await provider.createKey({ name: uniqueName('limits'), spec: 'AES_256' }, { signal: signal() }))
      .uri;
  });
  afterAll(() => provider.close());

  it("the real token's answer states no limit: the default pool is 4 and 1024 is accepted", async () => {
    const [slot] = provider.p11.C_GetSlotList(true);
    const token = provider.p11.C_GetTokenInfo(slot as Buffer);
    expect(token.maxSessionCount).toBe(0); // CK_EFFECTIVELY_INFINITE
    expect(token.sessionCount).toBe(UNAVAILABLE); // CK_UNAVAILABLE_INFORMATION, cut to 32 bits by pkcs11js
    expect(poolSize(undefined, token)).toBe(4);
    expect(poolSize(1024, token)).toBe(1024);
    expect(provider.pool.maxSessions).toBe(4);
    const wide = await openProvider({ maxSessions: 1024 });
    try {
      expect(wide.pool.maxSessions).toBe(1024);
      await wide.describeKey({ uri: keyUri }, { signal: signal() });
    } finally {
      await wide.close();
    }
  });

  it("a token's ulMaxSessionCount refuses a larger maxSessions and clamps the default", async () => {
    const path = softhsm().KEYPORT_SOFTHSM_MODULE;
    const refs = moduleRefs(path);
    await withWrappedP11(
      provider,
      ['C_GetTokenInfo'],
      (_name, original) =>
        function (this: unknown, ...args: unknown[]) {
          return { ...(original.apply(this, args) as object), maxSessionCount: 2 };
        },
      async () => {
        expect(() => pkcs11(providerOptions({ maxSessions: 3 }))).toThrow(
          expect.objectContaining({
            code: 'InvalidArgument',
            message: expect.stringMatching(/maxSessions: 3 .*\(2,/),
          }),
        );
        expect(moduleRefs(path)).toBe(refs); // the refused provider let go of the module
        const clamped = pkcs11(providerOptions());
        const exact = pkcs11(providerOptions({ maxSessions: 2 }));
        try {
          expect(clamped.pool.maxSessions).toBe(2);
          expect(exact.pool.maxSessions).toBe(2);
          await clamped.describeKey({ uri: keyUri }, { signal: signal() });
        } finally {
          await clamped.close();
          await exact.close();
        }
      },
    );
  });

  it('CKR_SESSION_COUNT from C_OpenSession: callers wait for the pooled session instead of failing', async () => {
    const p = await openProvider({ maxSessions: 4 }); // one session open: the login's
    try {
      expect(p.pool.size).toBe(1);
      let opens = 0;
      await withWrappedP11(
        p,
        ['C_OpenSession'],
        () => () => {
          opens++;
          throw countError(); // other applications hold every other session of the token
        },
        async () => {
          let unblock = (): void => undefined;
          const blocker = p.pool.run(signal(), () => new Promise<void>((r) => (unblock = r)));
          const calls = [0, 1, 2].map(() =>
            p.encrypt({ uri: keyUri }, Buffer.from('x'), {}, { signal: signal() }),
          );
          await new Promise((r) => setTimeout(r, 20));
          unblock();
          await blocker;
          const sealed = await Promise.all(calls);
          expect(sealed.map((s) => s.keyVersion)).toEqual(['1', '1', '1']);
        },
      );
      expect(opens).toBeGreaterThan(0);
      expect(p.pool.size).toBe(1);
    } finally {
      await p.close();
    }
  });

  it('CKR_SESSION_COUNT with no pooled session to wait for: Unavailable, retryable, and the next call works', async () => {
    const p = pkcs11(providerOptions()); // no session open yet
    try {
      await withWrappedP11(
        p,
        ['C_OpenSession'],
        () => () => {
          throw countError();
        },
        async () => {
          const failed = p.encrypt({ uri: keyUri }, Buffer.from('x'), {}, { signal: signal() });
          await expect(failed).rejects.toBeInstanceOf(KeyportError);
          await expect(failed).rejects.toMatchObject({
            code: 'Unavailable',
            retryable: true,
            message: expect.stringContaining('CKR_SESSION_COUNT'),
          });
        },
      );
      expect((await p.encrypt({ uri: keyUri }, Buffer.from('x'), {}, { signal: signal() })).keyVersion).toBe(
        '1',
      );
    } finally {
      await p.close();
    }
  });

  it('the last pooled session lost while the token is full: every waiter fails, none is left waiting', async () => {
    const p = await openProvider({ maxSessions: 1 });
    try {
      await withWrappedP11(
        p,
        ['C_OpenSession'],
        () => () => {
          throw countError();
        },
        async () => {
          let fail = (): void => undefined;
          // A real PKCS#11 error (C_FindObjects without C_FindObjectsInit) on the only session:
          // the pool closes it and cannot open another.
          const holder = p.pool.run(
            signal(),
            (session) =>
              new Promise<void>((resolve, reject) => {
                fail = () => {
                  try {
                    p.p11.C_FindObjects(session, 1);
                    resolve();
                  } catch (e) {
                    reject(e);
                  }
                };
              }),
          );
          const waiters = Promise.allSettled([0, 1].map(() => p.pool.run(signal(), () => 'served')));
          await new Promise((r) => setTimeout(r, 20));
          fail();
          await expect(holder).rejects.toThrow(/CKR_OPERATION_NOT_INITIALIZED/);
          const outcomes = await Promise.race([
            waiters,
            new Promise((r) => setTimeout(() => r('still waiting'), 2000)),
          ]);
          expect(outcomes).toEqual([
            { status: 'rejected', reason: expect.objectContaining({ code: 'Unavailable', retryable: true }) },
            { status: 'rejected', reason: expect.objectContaining({ code: 'Unavailable', retryable: true }) },
          ]);
        },
      );
      expect(p.pool.size).toBe(0);
      expect(await p.pool.run(signal(), () => 'served')).toBe('served');
    } finally {
      await p.close();
    }
  });
});
