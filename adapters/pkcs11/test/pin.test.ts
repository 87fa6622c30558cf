/**
 * PIN sources. Login state belongs to the whole process (PKCS#11), so the wrong-PIN case runs
 * first, while no provider in this test process is logged in — checked, not assumed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Keyport, KeyportError } from '@keyport/core';
import { afterAll, describe, expect, it } from 'vitest';
import { moduleRefs, Pkcs11Provider } from '../src/index.js';
import { providerOptions, signal, softhsm, withWrappedP11 } from './support.js';

/** Every string reachable from `root` through own properties (Maps, arrays, promises' values aside). */
function stringsIn(root: unknown): Set<string> {
  const seen = new Set<unknown>();
  const out = new Set<string>();
  const walk = (v: unknown, depth: number): void => {
    if (typeof v === 'string') out.add(v);
    if (typeof v !== 'object' || v === null || seen.has(v) || depth > 12) return;
    seen.add(v);
    if (v instanceof Map) for (const entry of v) walk(entry, depth + 1);
    if (v instanceof Set || Array.isArray(v)) for (const x of v) walk(x, depth + 1);
    for (const key of Reflect.ownKeys(v)) {
      const d = Object.getOwnPropertyDescriptor(v, key);
      if (d !== undefined && 'value' in d) walk(d.value, depth + 1);
    }
  };
  walk(root, 0);
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'keyport-pin-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the user PIN', () => {
  it('a wrong PIN fails with AccessDenied and the PIN is in no message', async () => {
    expect(moduleRefs(softhsm().KEYPORT_SOFTHSM_MODULE), 'another provider is open in this process').toBe(0);
    const wrong = '00000000-wrong';
    const error = await Pkcs11Provider.open(providerOptions({ pin: { callback: () => wrong } })).catch(
      (e) => e,
    );
    expect(error).toMatchObject({ code: 'AccessDenied' });
    expect(JSON.stringify(error)).not.toContain(wrong);
    expect(String(error.message)).toContain('CKR_PIN_INCORRECT');
    expect(moduleRefs(softhsm().KEYPORT_SOFTHSM_MODULE)).toBe(0);
  });

  it('a hostile wrong PIN (long, with control characters) is AccessDenied and in no part of the error', async () => {
    expect(moduleRefs(softhsm().KEYPORT_SOFTHSM_MODULE), 'another provider is open in this process').toBe(0);
    for (const wrong of [`pin-${'x'.repeat(300)}`, 'pin\u0000\r\n%s%o{x}']) {
      const error = await Pkcs11Provider.open(providerOptions({ pin: { callback: () => wrong } })).catch(
        (e) => e,
      );
      expect(error).toMatchObject({ code: 'AccessDenied' });
      for (const shown of [inspect(error, { depth: 10, showHidden: true }), JSON.stringify(error)])
        expect(shown).not.toContain(wrong);
    }
    const notAString = await Pkcs11Provider.open(
      providerOptions({ pin: { callback: () => 12345678 as unknown as string } }),
    ).catch((e) => e);
    expect(notAString).toMatchObject({ code: 'AccessDenied' });
    expect(moduleRefs(softhsm().KEYPORT_SOFTHSM_MODULE)).toBe(0);
  });

  it('a PIN the token refused is not sent again (tokens count wrong PINs toward a lockout); another one is', async () => {
    expect(moduleRefs(softhsm().KEYPORT_SOFTHSM_MODULE), 'another provider is open in this process').toBe(0);
    let pin = '00000000-wrong';
    const provider = new Pkcs11Provider(providerOptions({ pin: { callback: () => pin } }));
    let logins = 0;
    const list = async () => {
      for await (const _ of provider.listKeys({ signal: signal() }));
    };
    try {
      await withWrappedP11(
        provider,
        ['C_Login'],
        (_, original) =>
          function (this: unknown, ...args: unknown[]) {
            logins++;
            return original.apply(this, args);
          },
        async () => {
          await expect(list()).rejects.toMatchObject({ code: 'AccessDenied', message: /CKR_PIN_INCORRECT/ });
          for (let i = 0; i < 3; i++) {
            const again = await list().catch((e: unknown) => e);
            expect(again).toMatchObject({
              code: 'AccessDenied',
              retryable: false,
              message: /not sent again/,
            });
            expect(JSON.stringify(again) + inspect(again, { depth: 10 })).not.toContain(pin);
          }
          expect(logins).toBe(1);
          // A different PIN is tried; the right one logs in.
          pin = softhsm().KEYPORT_SOFTHSM_PIN;
          await list();
          expect(logins).toBe(2);
        },
      );
    } finally {
      await provider.close();
    }
  });

  it('the PIN is not kept on the provider once logged in', async () => {
    const pin = softhsm().KEYPORT_SOFTHSM_PIN;
    const provider = await Pkcs11Provider.open(providerOptions({ pin: { callback: () => pin } }));
    try {
      await provider.createKey({ name: `pin-kept-${Date.now()}`, spec: 'AES_256' }, { signal: signal() });
      expect(stringsIn(provider).has(pin)).toBe(false);
    } finally {
      await provider.close();
    }
  });

  it('comes from an environment variable, a file or a callback', async () => {
    const pin = softhsm().KEYPORT_SOFTHSM_PIN;
    const file = join(dir, 'pin');
    writeFileSync(file, `${pin}\n`, { mode: 0o600 });
    for (const source of [{ env: 'KEYPORT_SOFTHSM_PIN' }, { file }, { callback: async () => pin }]) {
      const provider = await Pkcs11Provider.open(providerOptions({ pin: source }));
      await provider.close();
    }
  });

  it("a PIN callback's own error (thrown or rejected) is AccessDenied, typed, with neither its message nor the PIN in it", async () => {
    const secret = 'pin-1234-in-the-message';
    const callbacks = [
      () => {
        throw new Error(`vault answered: ${secret}`);
      },
      () => Promise.reject(new Error(`vault answered: ${secret}`)),
      () => Promise.reject(secret),
    ];
    for (const callback of callbacks) {
      const error = await Pkcs11Provider.open(providerOptions({ pin: { callback } })).catch((e) => e);
      expect(error).toBeInstanceOf(KeyportError);
      expect(error).toMatchObject({ code: 'AccessDenied', message: expect.stringContaining('PIN callback') });
      for (const shown of [inspect(error, { depth: 10, showHidden: true }), JSON.stringify(error)])
        expect(shown).not.toContain(secret);
      const keyport = new Keyport({
        providers: [new Pkcs11Provider(providerOptions({ pin: { callback } }))],
      });
      try {
        const viaCore = await keyport.createKey('pkcs11', { name: 'never', spec: 'AES_256' }).catch((e) => e);
        expect(viaCore).toMatchObject({ code: 'AccessDenied' });
        expect(inspect(viaCore, { depth: 10, showHidden: true }) + JSON.stringify(viaCore)).not.toContain(
          secret,
        );
      } finally {
        await keyport.close();
      }
    }
  });

  it('a PIN file longer than 4096 bytes is refused without sending its content to the token', async () => {
    const big = join(dir, 'big-pin');
    writeFileSync(big, '1'.repeat(1024 * 1024));
    const provider = new Pkcs11Provider(providerOptions({ pin: { file: big } }));
    try {
      let logins = 0;
      await withWrappedP11(
        provider,
        ['C_Login'],
        (_, original) =>
          function (this: unknown, ...args: unknown[]) {
            logins++;
            return original.apply(this, args);
          },
        async () => {
          await expect(
            provider.describeKey({ uri: 'pkcs11:object=x' }, { signal: signal() }),
          ).rejects.toMatchObject({
            code: 'AccessDenied',
            message: expect.stringContaining('longer than 4096 bytes'),
          });
        },
      );
      expect(logins).toBe(0);
    } finally {
      await provider.close();
    }
  });

  it('a PIN callback that does not settle does not hold a caller past its AbortSignal, nor its session', async () => {
    let give: (pin: string) => void = () => undefined;
    const pending = new Promise<string>((resolve) => {
      give = resolve;
    });
    const provider = new Pkcs11Provider(
      providerOptions({ pin: { callback: () => pending }, maxSessions: 1 }),
    );
    try {
      const controller = new AbortController();
      const call = provider.describeKey({ uri: 'pkcs11:object=x' }, { signal: controller.signal });
      setTimeout(() => controller.abort(), 20);
      const outcome = await Promise.race([
        call.then(
          () => 'settled',
          (e: unknown) => e,
        ),
        new Promise((r) => setTimeout(() => r('still waiting after 1 s'), 1000)),
      ]);
      expect(outcome).toMatchObject({ code: 'Aborted' });
      // The session went back to the pool: once the PIN comes, the next call runs on it.
      give(softhsm().KEYPORT_SOFTHSM_PIN);
      await expect(
        provider.describeKey({ uri: 'pkcs11:object=x' }, { signal: signal() }),
      ).rejects.toMatchObject({
        code: 'NotFound',
      });
      expect(provider.pool.size).toBe(1);
    } finally {
      give(softhsm().KEYPORT_SOFTHSM_PIN);
      await provider.close();
    }
  });

  it('a missing source fails with AccessDenied naming the kind of source, not a value', async () => {
    const error = await Pkcs11Provider.open(
      providerOptions({ pin: { env: 'KEYPORT_NO_SUCH_PIN_VAR' } }),
    ).catch((e) => e);
    expect(error).toMatchObject({
      code: 'AccessDenied',
      message: expect.stringContaining('the environment variable named in pin.env is not set'),
    });
    const fromFile = await Pkcs11Provider.open(providerOptions({ pin: { file: join(dir, 'absent') } })).catch(
      (e) => e,
    );
    expect(fromFile).toMatchObject({ code: 'AccessDenied' });
  });

  it('an unset pin.env is not echoed: a PIN pasted as the variable name (any PIN can look like one) is in no part of the error', async () => {
    for (const pasted of ['hunter2', 'Pin_4711', '12345678', 'correct horse battery']) {
      expect(process.env[pasted]).toBeUndefined();
      const error = await Pkcs11Provider.open(providerOptions({ pin: { env: pasted } })).catch((e) => e);
      expect(error).toMatchObject({ code: 'AccessDenied', message: expect.stringContaining('pin.env') });
      for (const shown of [inspect(error, { depth: 10, showHidden: true }), JSON.stringify(error)])
        expect(shown).not.toContain(pasted);
    }
  });

  it('a token that is not there fails with Unavailable', () => {
    expect(() => new Pkcs11Provider(providerOptions({ token: { label: 'no-such-token' } }))).toThrow(
      expect.objectContaining({ code: 'Unavailable' }),
    );
    expect(() => new Pkcs11Provider(providerOptions({ token: {} }))).toThrow(
      expect.objectContaining({ code: 'InvalidArgument' }),
    );
  });

  it('a second provider on a token this process is logged in to shares the login: its PIN is not checked (README)', async () => {
    const first = await Pkcs11Provider.open(providerOptions());
    try {
      const second = await Pkcs11Provider.open(
        providerOptions({ pin: { callback: () => 'wrong-but-unchecked' } }),
      );
      await second.close();
    } finally {
      await first.close();
    }
  });
});
