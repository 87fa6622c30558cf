/**
 * PIN sources. Login state belongs to the whole process (PKCS#11), so the wrong-PIN case runs
 * first, while no provider in this test process is logged in — checked, not assumed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { moduleRefs, Pkcs11Provider } from '../src/index.js';
import { providerOptions, softhsm } from './support.js';

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
});
