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
/**
 * Which of two equal derivations is cheaper depends on the OpenSSL Node links: with OpenSSL 3.0
 * (Node 20) three `createHmac` objects cost about a third of two one-shot `hkdfSync` calls; from
 * OpenSSL 3.2 on (Node 22, 24) every HMAC object fetches its algorithm anew and the one-shot
 * calls win. Measured by `bench/envelope.bench.mjs` (cached 1 KiB seal) on both lines.
 */
const ONE_SHOT_HKDF = ((): boolean => {
  const [major, minor] = (process.versions.openssl ?? '0.0').split('.').map(Number);
  return (major ?? 0) > 3 || ((major ?? 0) === 3 && (minor ?? 0) >= 2);
})();

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
  if (ONE_SHOT_HKDF) {
    const key = Buffer.from(
      hkdfSync(
        'sha512',
        dataKey,
        messageId,
        Buffer.concat([suiteIdBytes(suite), DERIVEKEY]),
        suite.keyLength,
      ),
    );
    const commit = new Uint8Array(hkdfSync('sha512', dataKey, messageId, COMMITKEY, suite.suiteDataLength));
    return { key, commitKey: commit };
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
