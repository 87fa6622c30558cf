/**
 * PIN sources. Login state belongs to the whole process (PKCS#11), so the wrong-PIN case runs
 * first, while no provider in this test process is logged in — checked, not assumed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
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

  it('a missing source fails with AccessDenied naming the source, not a value', async () => {
    const error = await Pkcs11Provider.open(
      providerOptions({ pin: { env: 'KEYPORT_NO_SUCH_PIN_VAR' } }),
    ).catch((e) => e);
    expect(error).toMatchObject({ code: 'AccessDenied' });
    expect(error.message).toContain('KEYPORT_NO_SUCH_PIN_VAR');
    const fromFile = await Pkcs11Provider.open(providerOptions({ pin: { file: join(dir, 'absent') } })).catch(
      (e) => e,
    );
    expect(fromFile).toMatchObject({ code: 'AccessDenied' });
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
