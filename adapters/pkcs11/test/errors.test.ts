import { readFileSync } from 'node:fs';
import { KeyportError, UnsupportedError } from '@keyport/core';
import pkcs11js from 'pkcs11js';
import { describe, expect, it } from 'vitest';
import { CKR_TABLE, ckrName, ckrValue, mapPkcs11Error, PKCS11_ERROR_TABLE } from '../src/index.js';

const pkcs11Error = (name: string): Error => {
  const code = ckrValue(name);
  if (code === undefined) throw new Error(`no value for ${name}`);
  return new pkcs11js.Pkcs11Error(`${name}:${code}`, code, 'C_Decrypt');
};

describe('mapPkcs11Error: the CKR table', () => {
  for (const [name, { code, capability }] of Object.entries(PKCS11_ERROR_TABLE)) {
    it(`${name} → ${code}`, () => {
      const mapped = mapPkcs11Error(pkcs11Error(name));
      expect(mapped).toBeInstanceOf(KeyportError);
      expect(mapped?.code).toBe(code);
      expect(mapped?.message).toContain(name);
      expect(mapped?.cause).toBeInstanceOf(pkcs11js.Pkcs11Error);
      if (code === 'Unsupported') {
        expect(mapped).toBeInstanceOf(UnsupportedError);
        expect(capability).toBe('mechanism');
        expect((mapped as UnsupportedError).capability).toBe('mechanism');
      } else expect(capability).toBeUndefined();
    });
  }

  it('CKR_TABLE is the same table; inherited names are not rows', () => {
    expect(CKR_TABLE).toBe(PKCS11_ERROR_TABLE);
    for (const name of ['__proto__', 'constructor', 'toString'])
      expect(Object.hasOwn(PKCS11_ERROR_TABLE, name), name).toBe(false);
  });

  it('the issue’s required rows map as specified', () => {
    const expected: Record<string, string> = {
      CKR_PIN_INCORRECT: 'AccessDenied',
      CKR_KEY_HANDLE_INVALID: 'NotFound',
      CKR_OBJECT_HANDLE_INVALID: 'NotFound',
      CKR_ENCRYPTED_DATA_INVALID: 'InvalidCiphertext',
      CKR_ENCRYPTED_DATA_LEN_RANGE: 'InvalidCiphertext',
      CKR_SIGNATURE_INVALID: 'InvalidCiphertext',
      CKR_KEY_FUNCTION_NOT_PERMITTED: 'KeyStateConflict',
      CKR_DEVICE_ERROR: 'Unavailable',
      CKR_SESSION_HANDLE_INVALID: 'Unavailable',
      CKR_MECHANISM_INVALID: 'Unsupported',
    };
    for (const [name, code] of Object.entries(expected))
      expect(mapPkcs11Error(pkcs11Error(name))?.code, name).toBe(code);
  });

  it('only device and session trouble is retryable', () => {
    expect(mapPkcs11Error(pkcs11Error('CKR_DEVICE_ERROR'))?.retryable).toBe(true);
    expect(mapPkcs11Error(pkcs11Error('CKR_PIN_INCORRECT'))?.retryable).toBe(false);
    expect(mapPkcs11Error(pkcs11Error('CKR_ENCRYPTED_DATA_INVALID'))?.retryable).toBe(false);
  });

  it('an unknown CKR is Internal and named by its value', () => {
    const mapped = mapPkcs11Error(new pkcs11js.Pkcs11Error('CKR_VENDOR:2147483659', 0x8000000b, 'C_Sign'));
    expect(mapped?.code).toBe('Internal');
    expect(ckrName(0x8000000b)).toBe('CKR_0x8000000b');
  });

  it('a native pkcs11js failure is Internal; anything else is not mapped', () => {
    expect(mapPkcs11Error(new pkcs11js.NativeError('dlopen failed', 'load'))?.code).toBe('Internal');
    expect(mapPkcs11Error(new Error('other'))).toBeUndefined();
    expect(mapPkcs11Error('CKR_PIN_INCORRECT')).toBeUndefined();
  });

  it('every row of the table is in the README', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const [name, { code }] of Object.entries(PKCS11_ERROR_TABLE)) {
      expect(readme, name).toMatch(new RegExp(`\\| \`${name}\` \\| ${code} \\|`));
    }
  });
});
