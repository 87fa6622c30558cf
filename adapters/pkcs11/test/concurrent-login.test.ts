/**
 * Several processes logging in on one SoftHSM2 token at once. SoftHSM2 2.6.1 rewrites the
 * token's `token.object` at every C_Login and releases its file lock before the new contents are
 * written out, so a C_Login or C_GetTokenInfo of another process at that moment reads an empty
 * file and answers CKR_GENERAL_ERROR (session-pool.ts, LOGIN_ATTEMPTS, has the source lines).
 * keyport tries those two calls again, bounded; a refused PIN is never sent again.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pkcs11js from 'pkcs11js';
import { afterAll, describe, expect, it } from 'vitest';
import { moduleRefs, Pkcs11Provider } from '../src/index.js';
import { killChildren, runChild } from './support/spawn-child.js';
import { providerOptions, signal, softhsm, uniqueName, withWrappedP11 } from './support.js';

const HAMMER = fileURLToPath(new URL('./support/login-hammer.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'keyport-p11-logins-'));
afterAll(() => {
  killChildren();
  rmSync(dir, { recursive: true, force: true });
});

const generalError = (method: string) =>
  new pkcs11js.Pkcs11Error(
    `CKR_GENERAL_ERROR:${pkcs11js.CKR_GENERAL_ERROR}`,
    pkcs11js.CKR_GENERAL_ERROR,
    method,
  );

/** Replaces `name` by a function that throws `error(n)` on its n-th call while that is not undefined. */
function failing(counts: Record<string, number>, error: (n: number) => Error | undefined) {
  return (name: string, original: (...args: unknown[]) => unknown) =>
    function (this: unknown, ...args: unknown[]) {
      counts[name] = (counts[name] ?? 0) + 1;
      const e = error(counts[name]);
      if (e !== undefined) throw e;
      return original.apply(this, args);
    };
}

/**
 * Runs `body` with a new provider whose `method` fails as `error(n)` says on its n-th call, closes
 * the provider, and returns how many times `method` was called.
 */
async function callsWithFailing(
  method: string,
  error: (n: number) => Error | undefined,
  body: (provider: Pkcs11Provider) => Promise<void>,
): Promise<number> {
  const provider = new Pkcs11Provider(providerOptions());
  const counts: Record<string, number> = {};
  try {
    await withWrappedP11(provider, [method], failing(counts, error), () => body(provider));
  } finally {
    await provider.close();
  }
  return counts[method] ?? 0;
}

const firstListing = (provider: Pkcs11Provider) =>
  provider.listKeys({ signal: signal() })[Symbol.asyncIterator]().next();

describe('a transient CKR_GENERAL_ERROR (another process writing the token)', () => {
  it('C_Login is tried again and the call succeeds', async () => {
    expect(moduleRefs(softhsm().KEYPORT_SOFTHSM_MODULE), 'another provider is open in this process').toBe(0);
    const calls = await callsWithFailing(
      'C_Login',
      (n) => (n <= 2 ? generalError('C_Login') : undefined),
      async (provider) => {
        await provider.createKey({ name: uniqueName('login-retry'), spec: 'AES_256' }, { signal: signal() });
      },
    );
    expect(calls).toBe(3);
  });

  it('C_Login is tried a bounded number of times, then the call fails with Internal', async () => {
    const calls = await callsWithFailing(
      'C_Login',
      () => generalError('C_Login'),
      async (provider) => {
        await expect(firstListing(provider)).rejects.toMatchObject({
          code: 'Internal',
          message: /CKR_GENERAL_ERROR in C_Login/,
        });
      },
    );
    expect(calls).toBe(5);
  });

  it('a wrong PIN is not tried again', async () => {
    const incorrect = () =>
      new pkcs11js.Pkcs11Error(
        `CKR_PIN_INCORRECT:${pkcs11js.CKR_PIN_INCORRECT}`,
        pkcs11js.CKR_PIN_INCORRECT,
        'C_Login',
      );
    const calls = await callsWithFailing('C_Login', incorrect, async (provider) => {
      await expect(firstListing(provider)).rejects.toMatchObject({
        code: 'AccessDenied',
        message: /CKR_PIN_INCORRECT/,
      });
    });
    expect(calls).toBe(1);
  });

  it('C_GetTokenInfo at construction is tried again', async () => {
    const calls = await callsWithFailing(
      'C_GetTokenInfo',
      (n) => (n <= 2 ? generalError('C_GetTokenInfo') : undefined),
      async () => {
        const second = new Pkcs11Provider(providerOptions());
        await second.close();
      },
    );
    expect(calls).toBe(3);
  });
});

describe('a blank token label (SoftHSM2 read token.object while another process rewrote it)', () => {
  it('the token is looked up again', async () => {
    const first = new Pkcs11Provider(providerOptions());
    let calls = 0;
    try {
      await withWrappedP11(
        first,
        ['C_GetTokenInfo'],
        (_, original) =>
          function (this: unknown, ...args: unknown[]) {
            calls++;
            const info = original.apply(this, args) as { label: string };
            return calls === 1 ? { ...info, label: ' '.repeat(32) } : info;
          },
        async () => {
          const second = new Pkcs11Provider(providerOptions());
          await second.close();
        },
      );
      // The first answer is blank; the lookup runs again (every slot with a token: SoftHSM2
      // keeps a free one beside the test token) and finds it.
      expect(calls).toBeGreaterThan(1);
    } finally {
      await first.close();
    }
  });
});

function runHammer(args: string[], env: NodeJS.ProcessEnv): Promise<{ rounds: number; failures: string[] }> {
  return runChild(HAMMER, args, env);
}

describe('processes logging in on one token at once', () => {
  it('every login and encryption succeeds', { timeout: 120_000 }, async () => {
    // The children share this process's own token (softhsm() made it): no other test file's
    // processes write it.
    const env = { ...process.env, ...softhsm(), SOFTHSM2_CONF: process.env.SOFTHSM2_CONF };
    const name = uniqueName('logins');
    const provider = await Pkcs11Provider.open(providerOptions({ oaepHashes: ['sha1'] }));
    try {
      await provider.createKey({ name, spec: 'AES_256' }, { signal: signal() });
    } finally {
      await provider.close();
    }
    const children = 3;
    const rounds = 120;
    const start = join(dir, 'start');
    const runs = Array.from({ length: children }, (_, id) =>
      runHammer([start, String(id), String(rounds), name], env),
    );
    const deadline = Date.now() + 60_000;
    const ready = () => readdirSync(dir).filter((n) => n.startsWith('start.ready-')).length;
    while (ready() < children && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    writeFileSync(start, '');
    const results = await Promise.all(runs);
    expect(results.flatMap((r) => r.failures)).toEqual([]);
    expect(results.map((r) => r.rounds)).toEqual(Array(children).fill(rounds));
  });
});
