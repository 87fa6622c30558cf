/**
 * Data keys for drivers without a data-key call (Cloud KMS, Key Vault, third-party drivers):
 * keyport draws the key from node:crypto and wraps it with the driver's own `encrypt`, under the
 * same context. Used when a driver declares `dataKeys: 'emulated'` and does not implement
 * `generateDataKey`. The length rule lives here, once, for every driver.
 */
import { randomBytes } from 'node:crypto';
import { KeyportError } from './errors.js';
import type { Driver, ProviderCallOptions } from './provider.js';
import type { DataKeyRequest, DataKeyResult, KeyRef } from './types.js';

/** Data-key lengths keyport accepts, in bytes (AES-128 to far beyond any AEAD key). */
export const DATA_KEY_BYTES = { min: 16, max: 1024, default: 32 } as const;

/** The requested data-key length, or InvalidArgument. */
export function dataKeyLength(bytes: number | undefined): number {
  const n = bytes ?? DATA_KEY_BYTES.default;
  if (!Number.isInteger(n) || n < DATA_KEY_BYTES.min || n > DATA_KEY_BYTES.max) {
    throw new KeyportError(
      'InvalidArgument',
      `data key length must be ${DATA_KEY_BYTES.min}..${DATA_KEY_BYTES.max} bytes`,
    );
  }
  return n;
}

export async function emulatedDataKey(
  driver: Driver,
  ref: KeyRef,
  req: DataKeyRequest,
  o: ProviderCallOptions,
): Promise<DataKeyResult> {
  const plaintext = new Uint8Array(randomBytes(dataKeyLength(req.bytes)));
  try {
    const sealed = await driver.encrypt(
      ref,
      plaintext,
      req.context === undefined ? {} : { context: req.context },
      o,
    );
    return { plaintext, wrapped: sealed.ciphertext, keyVersion: sealed.keyVersion };
  } catch (e) {
    plaintext.fill(0);
    throw e;
  }
}
