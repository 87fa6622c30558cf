/**
 * Key derivation (framework/transitive-requirements.md "HKDF Encryption Key" and "HKDF Commit
 * Key"). For the committing suites HKDF-SHA512 is extracted once with the message id as salt
 * and expanded twice: `suiteId || "DERIVEKEY"` for the encryption key, `"COMMITKEY"` for the
 * commit key stored in the header. Both outputs are 32 bytes, less than one SHA-512 block, so
 * each expand is one HMAC.
 */
import { createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { BYTE_KEYS_THROW } from '@keyport/core';
import type { AeadKey } from './aead.js';
import { bytesEqual, invalidCiphertext } from './bytes.js';
import type { AlgorithmSuite } from './suites.js';

const DERIVEKEY = Buffer.from('DERIVEKEY', 'utf8');
const COMMITKEY = Buffer.from('COMMITKEY', 'utf8');
const ONE = Buffer.of(1);
/**
 * How keys are handed to OpenSSL and how the two keys are derived, chosen by measurement
 * (`bench/envelope.bench.mjs`, cached 1 KiB seal, and the derivation alone) on each Node line:
 * - Node 24 asks of every key given as *bytes* to `createCipheriv`, `createHmac` or `hkdfSync`
 *   whether it is a KeyObject, then a CryptoKey, each by catching a thrown error (core's
 *   `BYTE_KEYS_THROW`); two throws cost more than a 1 KiB seal's AES. There keys go in as
 *   KeyObjects (`createSecretKey` takes the bytes-only path, no throw) and the derivation is two
 *   one-shot `hkdfSync` calls (16 us, against 55 us for three `createHmac` objects with byte keys).
 * - Node 22 checks a property instead, so bytes are the cheaper key (a KeyObject costs more to
 *   make than the two ciphers save), and three `createHmac` objects (10 us) beat two one-shot
 *   `hkdfSync` calls (16 to 21 us), which each extract anew.
 * - Node 26 no longer throws: bytes are the cheaper key again, and two one-shot `hkdfSync` calls
 *   beat three `createHmac` objects (a cached 1 KiB seal 19.5-20.0 us, against 20.2-22.7 us by
 *   HMAC and 20.7-21.5 us with KeyObjects).
 */
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
const KEY_OBJECTS = BYTE_KEYS_THROW;
const ONE_SHOT_HKDF = NODE_MAJOR >= 24;

export interface DerivedKeys {
  /**
   * The AES-256-GCM key for the header tag and the body: a KeyObject where that is cheaper
   * (see `KEY_OBJECTS`; Node frees its bytes with `OPENSSL_clear_free` when it is collected),
   * otherwise the bytes.
   */
  readonly key: AeadKey;
  /** v2: the commit key (algorithm suite data); v1: empty. */
  readonly commitKey: Uint8Array;
}

/**
 * The AES key from freshly derived `bytes` (memory no one else holds: never Node's shared Buffer
 * pool), which become the key's own memory, or are zeroed once a KeyObject holds the key.
 */
function aeadKey(bytes: Uint8Array): AeadKey {
  if (!KEY_OBJECTS) {
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  const key = createSecretKey(bytes);
  bytes.fill(0);
  return key;
}

const deriveInfos = new Map<number, Buffer>();
/** `suite id || "DERIVEKEY"`, made once per suite. */
function deriveInfo(suite: AlgorithmSuite): Buffer {
  let info = deriveInfos.get(suite.id);
  if (info === undefined) {
    info = Buffer.concat([suiteIdBytes(suite), DERIVEKEY]);
    deriveInfos.set(suite.id, info);
  }
  return info;
}

function suiteIdBytes(suite: AlgorithmSuite): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(suite.id);
  return b;
}

/** Why a data key is also kept as a KeyObject: see `DerivedKeys.key`. */
const dataKeyObjects = new WeakMap<Uint8Array, KeyObject>();

/**
 * The data key as a KeyObject, made once per data-key buffer (a cached data key is derived from
 * for every message). Used only while the buffer is live and unzeroed (callers derive before
 * they zero); the KeyObject goes with the buffer.
 */
function dataKeyObject(dataKey: Uint8Array): KeyObject {
  let k = dataKeyObjects.get(dataKey);
  if (k === undefined) {
    k = createSecretKey(dataKey);
    dataKeyObjects.set(dataKey, k);
  }
  return k;
}

/** Zeroes a data key and drops the KeyObject made from it, so nothing derives from it again. */
export function zeroDataKey(dataKey: Uint8Array): void {
  dataKey.fill(0);
  dataKeyObjects.delete(dataKey);
}

export function deriveKeys(suite: AlgorithmSuite, dataKey: Uint8Array, messageId: Uint8Array): DerivedKeys {
  if (dataKey.length !== suite.keyLength) throw invalidCiphertext('the data key has the wrong length');
  if (suite.kdfHash === undefined) {
    return { key: aeadKey(Uint8Array.from(dataKey)), commitKey: new Uint8Array(0) };
  }
  if (!suite.commitment) {
    // v1 HKDF: zero salt of the hash length, info = suite id || message id.
    const info = Buffer.concat([suiteIdBytes(suite), messageId]);
    const ikm = KEY_OBJECTS ? dataKeyObject(dataKey) : dataKey;
    const raw = new Uint8Array(hkdfSync(suite.kdfHash, ikm, Buffer.alloc(0), info, suite.keyLength));
    return { key: aeadKey(raw), commitKey: new Uint8Array(0) };
  }
  if (ONE_SHOT_HKDF) {
    const ikm = KEY_OBJECTS ? dataKeyObject(dataKey) : dataKey;
    const key = aeadKey(
      new Uint8Array(hkdfSync('sha512', ikm, messageId, deriveInfo(suite), suite.keyLength)),
    );
    const commit = new Uint8Array(hkdfSync('sha512', ikm, messageId, COMMITKEY, suite.suiteDataLength));
    return { key, commitKey: commit };
  }
  const prk = createHmac('sha512', messageId).update(dataKey).digest();
  const enc = createHmac('sha512', prk).update(deriveInfo(suite)).update(ONE).digest();
  const commit = createHmac('sha512', prk).update(COMMITKEY).update(ONE).digest();
  prk.fill(0);
  // The key is the first 32 bytes of the 64-byte HMAC output, used where they lie; the rest is
  // zeroed. Copying them into a fresh Uint8Array first cost ~1.3 us of a ~23 us cached 1 KiB
  // seal on Node 22: V8 keeps so small an array on its heap and moves it off when `aeadKey`
  // reads its `.buffer`.
  enc.fill(0, suite.keyLength);
  const key = aeadKey(enc.subarray(0, suite.keyLength));
  return { key, commitKey: new Uint8Array(commit.subarray(0, suite.suiteDataLength)) };
}

/** Checks the header's commit key against the derived one in constant time. */
export function verifyCommitment(suite: AlgorithmSuite, derived: DerivedKeys, suiteData: Uint8Array): void {
  if (suite.commitment && !bytesEqual(derived.commitKey, suiteData)) {
    throw invalidCiphertext('key commitment does not match: wrong data key or tampered header');
  }
}
