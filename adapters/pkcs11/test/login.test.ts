/**
 * The shared login as a careless user and an attacker meet it: a PIN callback that never
 * answers (bounded by `pin.timeoutMs`; its late answer dropped), two callers arriving together,
 * an abort while the PIN is awaited, close() during a login, a PIN file swapped for a FIFO or a
 * symbolic link, callbacks that answer a number, bytes, or twice. Real SoftHSM2 throughout; the
 * PIN timeout runs on a fake clock (only setTimeout/clearTimeout are faked: pkcs11js and the
 * file system are real), so nothing here depends on how fast the machine is.
 *
 * Login state belongs to the whole process (PKCS#11 §5.6): each test closes what it opens, so
 * the next one starts logged out. The test that needs that checks it.
 */
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Keyport } from '@keyport/core';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { moduleRefs, type PinSource, Pkcs11Provider } from '../src/index.js';
import { providerOptions, signal, softhsm, withWrappedP11 } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'keyport-login-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  vi.useRealTimers();
});

/** Lets every queued promise reaction run (setImmediate is not faked). */
const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};

/** A promise's state, readable at any time without awaiting it. */
function track<T>(p: Promise<T>): {
  state: 'pending' | 'fulfilled' | 'rejected';
  value?: T;
  error?: unknown;
} {
  const t: { state: 'pending' | 'fulfilled' | 'rejected'; value?: T; error?: unknown } = { state: 'pending' };
  p.then(
    (value) => {
      t.state = 'fulfilled';
      t.value = value;
    },
    (error: unknown) => {
      t.state = 'rejected';
      t.error = error;
    },
  );
  return t;
}

/** A PIN callback whose every answer the test gives by hand. */
function heldCallback() {
  const answers: Array<(answer: unknown) => void> = [];
  return {
    answers,
    get asked() {
      return answers.length;
    },
    callback: () => new Promise<string>((resolve) => answers.push(resolve as (answer: unknown) => void)),
  };
}

const PIN = (): string => softhsm().KEYPORT_SOFTHSM_PIN;
const absent = { uri: 'pkcs11:object=no-such-key' };
const describeAbsent = (p: Pkcs11Provider, s: AbortSignal = signal()) => p.describeKey(absent, { signal: s });

/**
 * Runs `fn` counting C_Login, C_OpenSession and C_CloseSession on the provider's module. After
 * close() the module may be finalised: a C_Login then is counted and refused, never run.
 */
async function counting(provider: Pkcs11Provider, fn: (n: Record<string, number>) => Promise<void>) {
  const n: Record<string, number> = { C_Login: 0, C_OpenSession: 0, C_CloseSession: 0 };
  const module = provider.p11;
  await withWrappedP11(
    provider,
    Object.keys(n),
    (name, original) =>
      function (this: unknown, ...args: unknown[]) {
        n[name] = (n[name] ?? 0) + 1;
        if (name === 'C_Login' && moduleRefs(softhsm().KEYPORT_SOFTHSM_MODULE) === 0)
          throw new Error('C_Login after the module was released');
        return original.apply(module, args);
      },
    () => fn(n),
  );
}

/** The pool's sessions add up: every one opened is closed or still counted, none idle twice. */
function expectPoolConsistent(provider: Pkcs11Provider, n: Record<string, number>, before: number): void {
  const idle = (provider.pool as unknown as { idle: unknown[] }).idle;
  expect(new Set(idle).size, 'a session is idle twice (released twice)').toBe(idle.length);
  expect(before + (n.C_OpenSession ?? 0) - (n.C_CloseSession ?? 0)).toBe(provider.pool.size);
  expect(provider.pool.size).toBeLessThanOrEqual(provider.pool.maxSessions);
}

describe('login', () => {
  it('two callers arriving together ask the PIN callback once and share one C_Login', async () => {
    expect(moduleRefs(softhsm().KEYPORT_SOFTHSM_MODULE), 'another provider is open in this process').toBe(0);
    const held = heldCallback();
    const provider = new Pkcs11Provider(
      providerOptions({ pin: { callback: held.callback }, maxSessions: 2 }),
    );
    try {
      await counting(provider, async (n) => {
        const calls = [describeAbsent(provider), describeAbsent(provider)];
        const [a, b] = calls.map(track);
        await flush();
        expect(held.asked).toBe(1);
        expect([a?.state, b?.state]).toEqual(['pending', 'pending']);
        held.answers[0]?.(PIN());
        for (const call of calls) await expect(call).rejects.toMatchObject({ code: 'NotFound' });
        expect(n.C_Login).toBe(1);
        expect(held.asked).toBe(1);
      });
    } finally {
      for (const answer of held.answers) answer(PIN());
      await provider.close();
    }
  });

  it('a PIN callback that never answers fails the login after pin.timeoutMs (Unavailable, not retryable); the next call asks it again; late answers are dropped, never logged in with', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const held = heldCallback();
    const provider = new Pkcs11Provider(
      providerOptions({ pin: { callback: held.callback, timeoutMs: 5000 }, maxSessions: 2 }),
    );
    try {
      await counting(provider, async (n) => {
        // Two callers share the first login; neither signal ever fires.
        const first = track(describeAbsent(provider));
        const joined = track(describeAbsent(provider));
        await flush();
        expect(held.asked).toBe(1);
        await vi.advanceTimersByTimeAsync(4999);
        await flush();
        expect([first.state, joined.state]).toEqual(['pending', 'pending']);
        await vi.advanceTimersByTimeAsync(1);
        await flush();
        for (const t of [first, joined]) {
          expect(t.state).toBe('rejected');
          expect(t.error).toMatchObject({
            name: 'KeyportError',
            code: 'Unavailable',
            retryable: false,
            provider: 'pkcs11',
            message: expect.stringMatching(/PIN callback did not answer within 5000 ms/),
          });
        }
        expect(n.C_Login).toBe(0);
        // The next call asks again (and times out again: a second abandoned callback).
        const second = track(describeAbsent(provider));
        await flush();
        expect(held.asked).toBe(2);
        await vi.advanceTimersByTimeAsync(5000);
        await flush();
        expect(second.error).toMatchObject({ code: 'Unavailable' });
        // The third answers in time and logs in.
        const third = describeAbsent(provider);
        await flush();
        expect(held.asked).toBe(3);
        held.answers[2]?.(PIN());
        await expect(third).rejects.toMatchObject({ code: 'NotFound' });
        expect(n.C_Login).toBe(1);
        // Late answers of the abandoned callbacks: bytes are wiped, a string (the right PIN)
        // reaches no C_Login — the sessions they were for went back to the pool long ago.
        const lateBytes = Buffer.from(PIN());
        held.answers[0]?.(lateBytes);
        held.answers[1]?.(PIN());
        await flush();
        expect(lateBytes.every((byte) => byte === 0)).toBe(true);
        expect(n.C_Login).toBe(1);
        expectPoolConsistent(provider, n, 0);
        await expect(describeAbsent(provider)).rejects.toMatchObject({ code: 'NotFound' });
      });
    } finally {
      for (const answer of held.answers) answer(PIN());
      await provider.close();
    }
  });

  it("through core's default retry policy, a PIN callback that never answers is asked once per call, not once per attempt", async () => {
    const held = heldCallback();
    const keyport = new Keyport({
      providers: [new Pkcs11Provider(providerOptions({ pin: { callback: held.callback, timeoutMs: 50 } }))],
    });
    try {
      await expect(keyport.describeKey(absent.uri)).rejects.toMatchObject({
        code: 'Unavailable',
        message: expect.stringContaining('did not answer within 50 ms'),
      });
      expect(held.asked).toBe(1);
      // The next call asks again; an answer in time logs in.
      const next = keyport.describeKey(absent.uri);
      await flush();
      expect(held.asked).toBe(2);
      held.answers[1]?.(PIN());
      await expect(next).rejects.toMatchObject({ code: 'NotFound' });
    } finally {
      for (const answer of held.answers) answer(PIN());
      await keyport.close();
    }
  });

  it('a login that failed before C_Login (the PIN source timed out or answered no string) keeps its session: nothing is closed or reopened', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const held = heldCallback();
    const provider = new Pkcs11Provider(
      providerOptions({ pin: { callback: held.callback, timeoutMs: 1000 }, maxSessions: 1 }),
    );
    try {
      await counting(provider, async (n) => {
        const sessions: unknown[] = [];
        const idle = (provider.pool as unknown as { idle: unknown[] }).idle;
        // Timed out.
        const timedOut = track(describeAbsent(provider));
        await flush();
        await vi.advanceTimersByTimeAsync(1000);
        await flush();
        expect(timedOut.error).toMatchObject({ code: 'Unavailable' });
        sessions.push(...idle);
        // Not a string.
        const notAString = track(describeAbsent(provider));
        await flush();
        held.answers[1]?.(12345678);
        await flush();
        expect(notAString.error).toMatchObject({ code: 'AccessDenied', message: /not a string/ });
        sessions.push(...idle);
        // Joined by a caller waiting for the one session: it gets the kept session and logs in.
        const third = describeAbsent(provider);
        await flush();
        held.answers[2]?.(PIN());
        await expect(third).rejects.toMatchObject({ code: 'NotFound' });
        sessions.push(...idle);
        expect(n).toMatchObject({ C_OpenSession: 1, C_CloseSession: 0, C_Login: 1 });
        expect(new Set(sessions).size, 'the same session throughout').toBe(1);
        expectPoolConsistent(provider, n, 0);
      });
    } finally {
      for (const answer of held.answers) answer(PIN());
      await provider.close();
    }
  });

  it('a C_Login the token refused closes its session (it saw a PKCS#11 error); the same wrong PIN, refused before C_Login, keeps it', async () => {
    expect(moduleRefs(softhsm().KEYPORT_SOFTHSM_MODULE), 'another provider is open in this process').toBe(0);
    let pin = '00000000-wrong';
    const provider = new Pkcs11Provider(providerOptions({ pin: { callback: () => pin }, maxSessions: 1 }));
    try {
      await counting(provider, async (n) => {
        await expect(describeAbsent(provider)).rejects.toMatchObject({ code: 'AccessDenied' });
        // Our last session is replaced before it is closed (release()).
        expect(n).toMatchObject({ C_Login: 1, C_OpenSession: 2, C_CloseSession: 1 });
        await expect(describeAbsent(provider)).rejects.toMatchObject({ message: /not sent again/ });
        expect(n).toMatchObject({ C_Login: 1, C_OpenSession: 2, C_CloseSession: 1 });
        pin = PIN();
        await expect(describeAbsent(provider)).rejects.toMatchObject({ code: 'NotFound' });
        expect(n).toMatchObject({ C_Login: 2, C_OpenSession: 2, C_CloseSession: 1 });
        expectPoolConsistent(provider, n, 0);
      });
    } finally {
      await provider.close();
    }
  });

  it('an abort while the PIN is awaited releases each caller; every borrowed session goes back exactly once', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    for (const maxSessions of [1, 2]) {
      const held = heldCallback();
      const provider = new Pkcs11Provider(
        providerOptions({ pin: { callback: held.callback, timeoutMs: 1000 }, maxSessions }),
      );
      try {
        await counting(provider, async (n) => {
          // A starts the login on its session; B joins it (2 sessions) or waits for A's (1).
          const abortA = new AbortController();
          const abortB = new AbortController();
          const a = track(describeAbsent(provider, abortA.signal));
          const b = track(describeAbsent(provider, abortB.signal));
          const cCall = describeAbsent(provider); // never aborted
          const c = track(cCall);
          await flush();
          expect(held.asked).toBe(1);
          abortA.abort();
          abortB.abort();
          await flush();
          expect(a.error).toMatchObject({ code: 'Aborted' });
          expect(b.error).toMatchObject({ code: 'Aborted' });
          expect(c.state).toBe('pending');
          // A's session is still the login's until it settles: the PIN never comes.
          await vi.advanceTimersByTimeAsync(1000);
          await flush();
          if (maxSessions === 2) {
            // C joined the same login and fails with it.
            expect(c.error, `maxSessions ${maxSessions}`).toMatchObject({ code: 'Unavailable' });
          } else {
            // C waited for the one session and got it when the login failed: it asks again.
            expect(held.asked).toBe(2);
            held.answers[1]?.(PIN());
            await expect(cCall).rejects.toMatchObject({ code: 'NotFound' });
          }
          expectPoolConsistent(provider, n, 0);
          // The pool still works (with 2 sessions, this call asks for the PIN again).
          const next = describeAbsent(provider);
          track(next); // observed now: with 1 session it settles during the flush
          await flush();
          held.answers.at(-1)?.(PIN());
          await expect(next).rejects.toMatchObject({ code: 'NotFound' });
          expectPoolConsistent(provider, n, 0);
        });
      } finally {
        for (const answer of held.answers) answer(PIN());
        await provider.close();
      }
    }
  });

  it('close() during a login does not wait for the PIN: the caller fails (Unavailable), the session is closed, the late PIN logs nothing in', async () => {
    const held = heldCallback();
    const provider = new Pkcs11Provider(providerOptions({ pin: { callback: held.callback } }));
    const refs = moduleRefs(softhsm().KEYPORT_SOFTHSM_MODULE);
    await counting(provider, async (n) => {
      const call = track(describeAbsent(provider));
      await flush();
      expect(held.asked).toBe(1);
      const closed = track(provider.close());
      await flush();
      expect(closed.state, 'close() waited for the PIN callback').toBe('fulfilled');
      expect(call.error).toMatchObject({ code: 'Unavailable', message: expect.stringContaining('closed') });
      expect(provider.pool.size).toBe(0);
      expect(moduleRefs(softhsm().KEYPORT_SOFTHSM_MODULE)).toBe(refs - 1);
      held.answers[0]?.(PIN());
      await flush();
      expect(n.C_Login).toBe(0);
    });
  });

  it('callbacks that answer a number, bytes, an empty string or nothing are AccessDenied naming the type; bytes are wiped', async () => {
    const bytes = Buffer.from(PIN());
    const cases: Array<[() => unknown, RegExp]> = [
      [() => 12345678, /not a string \(got number\)/],
      [() => bytes, /not a string \(got Buffer\)/],
      [() => Promise.resolve(undefined), /not a string \(got undefined\)/],
      [() => '', /empty PIN/],
    ];
    for (const [callback, message] of cases) {
      const error = await Pkcs11Provider.open(
        providerOptions({ pin: { callback: callback as () => string } }),
      ).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'AccessDenied', message: expect.stringMatching(message) });
      expect(inspect(error, { depth: 10 }) + JSON.stringify(error)).not.toContain(PIN());
    }
    expect(bytes.every((byte) => byte === 0)).toBe(true);
  });

  it('a thenable that resolves twice (or throws after resolving) is read once: one PIN, one C_Login', async () => {
    const provider = new Pkcs11Provider(
      providerOptions({
        pin: {
          callback: () =>
            ({
              // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
              then(resolve: (pin: string) => void) {
                resolve(PIN());
                resolve('00000000-wrong');
                throw new Error('after resolving');
              },
            }) as unknown as Promise<string>,
        },
      }),
    );
    try {
      await counting(provider, async (n) => {
        await expect(describeAbsent(provider)).rejects.toMatchObject({ code: 'NotFound' });
        await expect(describeAbsent(provider)).rejects.toMatchObject({ code: 'NotFound' });
        expect(n.C_Login).toBe(1);
      });
    } finally {
      await provider.close();
    }
  });

  it('the PIN source is read from a copy: changing the options object afterwards changes nothing', async () => {
    const pin: { env: string } = { env: 'KEYPORT_SOFTHSM_PIN' };
    const provider = new Pkcs11Provider(providerOptions({ pin }));
    try {
      pin.env = 'KEYPORT_NO_SUCH_PIN_VAR';
      (pin as Record<string, unknown>).callback = () => '00000000-wrong';
      await expect(describeAbsent(provider)).rejects.toMatchObject({ code: 'NotFound' });
    } finally {
      await provider.close();
    }
  });
});

describe('the PIN file', () => {
  const fifo = join(dir, 'pin.fifo');
  execFileSync('mkfifo', [fifo]);
  afterAll(() => {
    // Frees a reader still blocked opening the FIFO (the old code did that), if any.
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // no reader: nothing blocked
    }
  });

  it('a FIFO (or a symbolic link to one, or a directory) is refused at once, not waited on', async () => {
    const link = join(dir, 'pin.fifo-link');
    symlinkSync(fifo, link);
    const folder = join(dir, 'pin.dir');
    mkdirSync(folder);
    for (const file of [fifo, link, folder]) {
      const source: PinSource = { file };
      const provider = new Pkcs11Provider(providerOptions({ pin: source }));
      try {
        await expect(describeAbsent(provider), file).rejects.toMatchObject({
          code: 'AccessDenied',
          message: expect.stringContaining('not a regular file'),
        });
      } finally {
        await provider.close();
      }
    }
  });

  it('a symbolic link to a regular file is followed (secret mounts are links)', async () => {
    const target = join(dir, 'pin.real');
    writeFileSync(target, `${PIN()}\n`, { mode: 0o600 });
    const link = join(dir, 'pin.link');
    symlinkSync(target, link);
    const provider = await Pkcs11Provider.open(providerOptions({ pin: { file: link } }));
    await provider.close();
  });
});
