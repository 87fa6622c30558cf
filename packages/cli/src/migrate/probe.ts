/**
 * The check before the first file: --to must wrap and unwrap (a random data key round-trips),
 * and --from must be reachable. A missing --from key, or one the provider cannot reach, stops
 * the run; a --from that refuses describe (permissions for decrypt only, or no describe) does not.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { type KeyOperations, KeyportError, toKeyportError } from '@keyport/core';
import { kmsRecipient } from '@keyport/envelope';

export async function probeKeys(
  keys: KeyOperations,
  from: string,
  to: string,
  signal?: AbortSignal,
): Promise<void> {
  const dataKey = randomBytes(32);
  const context = { 'keyport-migrate': 'probe' };
  const toRecipient = kmsRecipient(to);
  const env = { keys, ...(signal !== undefined ? { signal } : {}) };
  try {
    const edk = await toRecipient.wrap(dataKey, context, env);
    const back = await toRecipient.unwrap(edk, context, env);
    if (back.length !== dataKey.length || !timingSafeEqual(back, dataKey)) {
      throw new KeyportError('Integrity', 'the --to key did not return the probe data key');
    }
  } catch (e) {
    const err = toKeyportError(e);
    throw new KeyportError(
      err.code,
      `--to cannot be used (probe wrap and unwrap failed before any file was touched): ${err.message}`,
      {
        ...(err.keyUri !== undefined ? { keyUri: err.keyUri } : {}),
        ...(err.provider !== undefined ? { provider: err.provider } : {}),
        cause: err,
      },
    );
  } finally {
    dataKey.fill(0);
  }
  try {
    await keys.describeKey(from, signal !== undefined ? { signal } : {});
  } catch (e) {
    const err = toKeyportError(e);
    if (['NotFound', 'Unavailable', 'Timeout', 'InvalidArgument'].includes(err.code)) {
      throw new KeyportError(
        err.code,
        `--from cannot be reached (checked before any file was touched): ${err.message}`,
        {
          ...(err.keyUri !== undefined ? { keyUri: err.keyUri } : {}),
          cause: err,
        },
      );
    }
  }
}
