/**
 * Key derivation (framework/transitive-requirements.md "HKDF Encryption Key" and "HKDF Commit
 * Key"). For the committing suites HKDF-SHA512 is extracted once with the message id as salt
 * and expanded twice: `suiteId || "DERIVEKEY"` for the encryption key, `"COMMITKEY"` for the
 * commit key stored in the header. Both outputs are 32 bytes, less than one SHA-512 block, so
 * each expand is one HMAC.
 */
import { createHmac, hkdfSync } from 'node:crypto';
import { bytesEqual, invalidCiphertext } from './bytes.js';
import type { AlgorithmSuite } from './suites.js';

const DERIVEKEY = Buffer.from('DERIVEKEY', 'utf8');
const COMMITKEY = Buffer.from('COMMITKEY', 'utf8');
const ONE = Buffer.of(1);

export interface DerivedKeys {
  /** The AES-256-GCM key for the header tag and the body. */
  readonly key: Buffer;
  /** v2: the commit key (algorithm suite data); v1: empty. */
  readonly commitKey: Uint8Array;
}

function suiteIdBytes(suite: AlgorithmSuite): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(suite.id);
  return b;
}

export function deriveKeys(suite: AlgorithmSuite, dataKey: Uint8Array, messageId: Uint8Array): DerivedKeys {
  if (dataKey.length !== suite.keyLength) throw invalidCiphertext('the data key has the wrong length');
  if (suite.kdfHash === undefined) {
    return { key: Buffer.from(dataKey), commitKey: new Uint8Array(0) };
  }
  if (!suite.commitment) {
    // v1 HKDF: zero salt of the hash length, info = suite id || message id.
    const info = Buffer.concat([suiteIdBytes(suite), messageId]);
    const raw = hkdfSync(suite.kdfHash, dataKey, Buffer.alloc(0), info, suite.keyLength);
    return { key: Buffer.from(raw), commitKey: new Uint8Array(0) };
  }
  const prk = createHmac('sha512', messageId).update(dataKey).digest();
  const enc = createHmac('sha512', prk).update(suiteIdBytes(suite)).update(DERIVEKEY).update(ONE).digest();
  const commit = createHmac('sha512', prk).update(COMMITKEY).update(ONE).digest();
  prk.fill(0);
  // The key's 32 bytes, copied out of the 64-byte HMAC output, whose rest is zeroed.
  const key = Buffer.from(enc.subarray(0, suite.keyLength));
  enc.fill(0);
  return { key, commitKey: new Uint8Array(commit.subarray(0, suite.suiteDataLength)) };
}

/** Checks the header's commit key against the derived one in constant time. */
export function verifyCommitment(suite: AlgorithmSuite, derived: DerivedKeys, suiteData: Uint8Array): void {
  if (suite.commitment && !bytesEqual(derived.commitKey, suiteData)) {
    throw invalidCiphertext('key commitment does not match: wrong data key or tampered header');
  }
}
