/**
 * Transit-only operations through a `Keyport`: each runs on core's one call path (`driverCall`),
 * so it gets the same instance resolution, deadline, retries, abort, error mapping and audit
 * event (`hcvault:<name>`) as the neutral operations. The driver methods of the same names are
 * the raw calls these wrap.
 */
import {
  type CallOptions,
  type EncryptionContext,
  type KeyLike,
  type Keyport,
  KeyportError,
  type KmsProvider,
} from '@keyport/core';
import { VaultTransitProvider } from './provider.js';

function transit(driver: KmsProvider): VaultTransitProvider {
  if (!(driver instanceof VaultTransitProvider)) {
    throw new KeyportError('InvalidArgument', `the key's instance is a ${driver.scheme} driver, not hcvault`);
  }
  return driver;
}

/** Deletes a transit key now and irreversibly (deletion_allowed, then DELETE). */
export function deleteKey(keys: Keyport, key: KeyLike, o?: CallOptions): Promise<void> {
  return keys.driverCall(key, 'deleteKey', (d, ref, po) => transit(d).deleteKey(ref, po), o);
}

/** Re-encrypts a ciphertext under the key's newest version inside Vault, keeping its context. */
export function rewrap(
  keys: Keyport,
  key: KeyLike,
  ciphertext: Uint8Array,
  o?: CallOptions & { context?: EncryptionContext },
) {
  const req = o?.context === undefined ? {} : { context: o.context };
  return keys.driverCall(key, 'rewrap', (d, ref, po) => transit(d).rewrap(ref, ciphertext, req, po), o);
}
