/**
 * Cloud KMS-only operations through a `Keyport`: each runs on core's one call path
 * (`driverCall`), with the same instance resolution, deadline, retries, abort, error mapping and
 * audit event (`gcp-kms:<name>`) as the neutral operations.
 */
import { type CallOptions, type KeyInfo, type KeyLike, type Keyport, KeyportError } from '@keyport/core';
import { GcpKmsProvider } from './provider.js';

/** RestoreCryptoKeyVersion: a version scheduled for destruction comes back disabled. */
export function restoreKeyVersion(keys: Keyport, key: KeyLike, o?: CallOptions): Promise<KeyInfo> {
  return keys.driverCall(
    key,
    'restoreKeyVersion',
    (driver, ref, po) => {
      if (!(driver instanceof GcpKmsProvider)) {
        throw new KeyportError(
          'InvalidArgument',
          `the key's instance is a ${driver.scheme} driver, not gcp-kms`,
        );
      }
      return driver.restoreKeyVersion(ref, po);
    },
    o,
  );
}
