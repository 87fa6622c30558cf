/**
 * CKR_* return values → KeyportError codes. One table, printed in the README and tested entry by
 * entry. Messages are keyport's own: the CKR name and the PKCS#11 function, never key bytes, PINs,
 * plaintext or context values (pkcs11js errors carry none of those either; they stay as `cause`).
 */
import { type ErrorTable, errorFromTable, KeyportError } from '@keyport/core';
import { P } from './p11.js';

/**
 * Every CKR the adapter can meet, keyed by its name, with the code it becomes. Anything else is
 * `Internal`. What the module cannot do (a mechanism, a parameter, a curve) is an Unsupported error
 * for the capability `mechanism`: the module decides it, only at call time.
 */
export const PKCS11_ERROR_TABLE: ErrorTable = {
  // who you are
  CKR_PIN_INCORRECT: { code: 'AccessDenied' },
  CKR_PIN_INVALID: { code: 'AccessDenied' },
  CKR_PIN_LEN_RANGE: { code: 'AccessDenied' },
  CKR_PIN_EXPIRED: { code: 'AccessDenied' },
  CKR_PIN_LOCKED: { code: 'AccessDenied' },
  CKR_USER_NOT_LOGGED_IN: { code: 'AccessDenied' },
  CKR_USER_PIN_NOT_INITIALIZED: { code: 'AccessDenied' },
  CKR_USER_TYPE_INVALID: { code: 'AccessDenied' },
  CKR_ATTRIBUTE_SENSITIVE: { code: 'AccessDenied' },
  CKR_TOKEN_WRITE_PROTECTED: { code: 'AccessDenied' },
  CKR_SESSION_READ_ONLY: { code: 'AccessDenied' },
  // which object
  CKR_KEY_HANDLE_INVALID: { code: 'NotFound' },
  CKR_OBJECT_HANDLE_INVALID: { code: 'NotFound' },
  CKR_WRAPPING_KEY_HANDLE_INVALID: { code: 'NotFound' },
  CKR_UNWRAPPING_KEY_HANDLE_INVALID: { code: 'NotFound' },
  // bad input bytes
  CKR_ENCRYPTED_DATA_INVALID: { code: 'InvalidCiphertext' },
  CKR_ENCRYPTED_DATA_LEN_RANGE: { code: 'InvalidCiphertext' },
  CKR_SIGNATURE_INVALID: { code: 'InvalidCiphertext' },
  CKR_SIGNATURE_LEN_RANGE: { code: 'InvalidCiphertext' },
  CKR_WRAPPED_KEY_INVALID: { code: 'InvalidCiphertext' },
  CKR_WRAPPED_KEY_LEN_RANGE: { code: 'InvalidCiphertext' },
  CKR_AEAD_DECRYPT_FAILED: { code: 'InvalidCiphertext' },
  // the key may not do this (disabled keys have CKA_ENCRYPT/CKA_SIGN... false)
  CKR_KEY_FUNCTION_NOT_PERMITTED: { code: 'KeyStateConflict' },
  CKR_KEY_NOT_WRAPPABLE: { code: 'KeyStateConflict' },
  CKR_KEY_UNEXTRACTABLE: { code: 'KeyStateConflict' },
  CKR_ACTION_PROHIBITED: { code: 'KeyStateConflict' },
  CKR_ATTRIBUTE_READ_ONLY: { code: 'KeyStateConflict' },
  // what the module cannot do
  CKR_MECHANISM_INVALID: { code: 'Unsupported', capability: 'mechanism' },
  CKR_MECHANISM_PARAM_INVALID: { code: 'Unsupported', capability: 'mechanism' },
  CKR_FUNCTION_NOT_SUPPORTED: { code: 'Unsupported', capability: 'mechanism' },
  CKR_ATTRIBUTE_TYPE_INVALID: { code: 'Unsupported', capability: 'mechanism' },
  CKR_RANDOM_NO_RNG: { code: 'Unsupported', capability: 'mechanism' },
  CKR_KEY_TYPE_INCONSISTENT: { code: 'InvalidArgument' },
  // what we asked for is malformed
  CKR_ARGUMENTS_BAD: { code: 'InvalidArgument' },
  CKR_DATA_INVALID: { code: 'InvalidArgument' },
  CKR_DATA_LEN_RANGE: { code: 'InvalidArgument' },
  CKR_ATTRIBUTE_VALUE_INVALID: { code: 'InvalidArgument' },
  CKR_TEMPLATE_INCOMPLETE: { code: 'InvalidArgument' },
  CKR_TEMPLATE_INCONSISTENT: { code: 'InvalidArgument' },
  CKR_KEY_SIZE_RANGE: { code: 'InvalidArgument' },
  CKR_DOMAIN_PARAMS_INVALID: { code: 'InvalidArgument' },
  CKR_CURVE_NOT_SUPPORTED: { code: 'Unsupported', capability: 'mechanism' },
  // the device or the session is gone or busy: worth another attempt on a fresh session
  CKR_DEVICE_ERROR: { code: 'Unavailable' },
  CKR_DEVICE_MEMORY: { code: 'Unavailable' },
  CKR_DEVICE_REMOVED: { code: 'Unavailable' },
  CKR_TOKEN_NOT_PRESENT: { code: 'Unavailable' },
  CKR_TOKEN_NOT_RECOGNIZED: { code: 'Unavailable' },
  CKR_SLOT_ID_INVALID: { code: 'Unavailable' },
  CKR_SESSION_HANDLE_INVALID: { code: 'Unavailable' },
  CKR_SESSION_CLOSED: { code: 'Unavailable' },
  CKR_SESSION_COUNT: { code: 'Unavailable' },
  CKR_OPERATION_ACTIVE: { code: 'Unavailable' },
  CKR_OPERATION_NOT_INITIALIZED: { code: 'Unavailable' },
  CKR_HOST_MEMORY: { code: 'Unavailable' },
  CKR_FUNCTION_FAILED: { code: 'Unavailable' },
  CKR_CRYPTOKI_NOT_INITIALIZED: { code: 'Unavailable' },
  CKR_FUNCTION_CANCELED: { code: 'Aborted' },
  CKR_CANCEL: { code: 'Aborted' },
  // a bug here or in the module
  CKR_GENERAL_ERROR: { code: 'Internal' },
  CKR_BUFFER_TOO_SMALL: { code: 'Internal' },
  CKR_CRYPTOKI_ALREADY_INITIALIZED: { code: 'Internal' },
};

/** CKR values newer than pkcs11js 2.1.7's constants (PKCS#11 v2.40 errata and v3.0). */
const EXTRA_CKR: Readonly<Record<string, number>> = {
  CKR_ACTION_PROHIBITED: 0x1b,
  CKR_AEAD_DECRYPT_FAILED: 0x35,
  CKR_CURVE_NOT_SUPPORTED: 0x140,
};

const NAMES_BY_VALUE = new Map<number, string>();
for (const [name, value] of [...Object.entries(P), ...Object.entries(EXTRA_CKR)]) {
  if (name.startsWith('CKR_') && typeof value === 'number' && !NAMES_BY_VALUE.has(value)) {
    NAMES_BY_VALUE.set(value, name);
  }
}

/** `CKR_PIN_INCORRECT` for 0xA0, `CKR_0x…` for values pkcs11js does not name. */
export function ckrName(code: number): string {
  return NAMES_BY_VALUE.get(code) ?? `CKR_0x${code.toString(16).padStart(8, '0')}`;
}

/** The same table under its historical name. */
export const CKR_TABLE: ErrorTable = PKCS11_ERROR_TABLE;

/** The CKR value of a table name, when pkcs11js knows it. */
export function ckrValue(name: string): number | undefined {
  const value = (P as unknown as Record<string, unknown>)[name] ?? EXTRA_CKR[name];
  return typeof value === 'number' ? value : undefined;
}

export const PROVIDER_NAME = 'pkcs11';

/** A pkcs11js error (Pkcs11Error with a CKR, or NativeError) → KeyportError; undefined for anything else. */
export function mapPkcs11Error(error: unknown): KeyportError | undefined {
  if (!(error instanceof P.NativeError)) return undefined;
  const method = (error as { method?: unknown }).method;
  const where = typeof method === 'string' && method !== '' ? ` in ${method}` : '';
  if (!(error instanceof P.Pkcs11Error)) {
    return new KeyportError('Internal', `pkcs11js native failure${where}`, {
      provider: PROVIDER_NAME,
      cause: error,
    });
  }
  const name = ckrName(error.code);
  const options = { provider: PROVIDER_NAME, cause: error };
  const message = `PKCS#11 ${name}${where}`;
  return (
    errorFromTable(PKCS11_ERROR_TABLE, name, message, options) ??
    new KeyportError('Internal', message, options)
  );
}

/** CKRs that mean "the bytes you gave do not open" during a decrypt or unwrap step. */
const DECRYPT_FAILURES = new Set(
  [
    'CKR_ENCRYPTED_DATA_INVALID',
    'CKR_ENCRYPTED_DATA_LEN_RANGE',
    'CKR_WRAPPED_KEY_INVALID',
    'CKR_WRAPPED_KEY_LEN_RANGE',
    'CKR_AEAD_DECRYPT_FAILED',
    // SoftHSM2 2.6 reports a failed GCM tag check and a failed OAEP decoding as CKR_GENERAL_ERROR.
    // Only inside a decrypt/unwrap step is it read as "invalid ciphertext" (README: SoftHSM-only).
    'CKR_GENERAL_ERROR',
  ].flatMap((n) => {
    const v = ckrValue(n);
    return v === undefined ? [] : [v];
  }),
);

/**
 * Errors of a C_Decrypt or C_UnwrapKey that refused its input. PKCS#11 (v2.40 and 3.0, C_Decrypt)
 * says a call to C_Decrypt always terminates the active operation unless it returns
 * CKR_BUFFER_TOO_SMALL or answers a length query, and C_UnwrapKey holds no operation at all: the
 * session is left idle and usable. The pool checks that before it keeps the session
 * (session-pool.ts), so a stream of bad ciphertexts does not cost a session each.
 */
const operationEndedErrors = new WeakSet<object>();

/** Whether `error` is a refusal after which the module holds no operation on the session. */
export function operationEnded(error: unknown): boolean {
  return typeof error === 'object' && error !== null && operationEndedErrors.has(error);
}

/** Inside C_Decrypt/C_UnwrapKey: the module's refusal of the input becomes InvalidCiphertext. */
export function asDecryptFailure(error: unknown, keyUri: string): unknown {
  if (error instanceof P.Pkcs11Error && DECRYPT_FAILURES.has(error.code)) {
    const refused = new KeyportError('InvalidCiphertext', 'the ciphertext does not open under this key', {
      provider: PROVIDER_NAME,
      keyUri,
      cause: error,
    });
    operationEndedErrors.add(refused);
    return refused;
  }
  return error;
}

export function invalidCiphertext(keyUri: string, why: string): KeyportError {
  return new KeyportError('InvalidCiphertext', `invalid ciphertext: ${why}`, {
    provider: PROVIDER_NAME,
    keyUri,
  });
}
