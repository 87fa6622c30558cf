/**
 * Version metadata that never changes once a version exists — its algorithm and public key —
 * fetched once and kept, so asymmetric encrypt and verify cost no extra call after the first.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { KeyportError, type ProviderCallOptions } from '@keyport/core';
import { crc32c, int64Value } from './crc32c.js';
import { ALGORITHM_NAMES, enumName } from './enums.js';
import { integrityError } from './errors.js';
import { currentVersion } from './key-info.js';
import type { KeyService } from './keys.js';
import { type KeyTarget, versionIdOf, versionName } from './names.js';
import type { Rpc } from './rpc.js';

export interface VersionPublicKey {
  readonly algorithm: string;
  readonly key: KeyObject;
  /** SPKI DER. */
  readonly spki: Uint8Array;
}

const MAX_CACHED = 1000;

export class VersionCache {
  private readonly algorithms = new Map<string, string>();
  private readonly publicKeys = new Map<string, VersionPublicKey>();

  constructor(
    private readonly rpc: Rpc,
    private readonly keys: KeyService,
  ) {}

  private remember<T>(map: Map<string, T>, name: string, value: T): T {
    if (map.size >= MAX_CACHED) map.clear();
    map.set(name, value);
    return value;
  }

  /** The version an unpinned asymmetric/MAC call uses, with its algorithm. */
  async resolve(t: KeyTarget, o: ProviderCallOptions): Promise<{ id: string; algorithm: string }> {
    if (t.version !== undefined) {
      const name = versionName(t.keyName, t.version);
      const cached = this.algorithms.get(name);
      if (cached !== undefined) return { id: t.version, algorithm: cached };
      const v = await this.rpc.call(o, (co, kms) => kms.getCryptoKeyVersion({ name }, co), {
        keyUri: t.uri,
      });
      return {
        id: t.version,
        algorithm: this.remember(this.algorithms, name, enumName(v.algorithm, ALGORITHM_NAMES)),
      };
    }
    const leading = currentVersion(await this.keys.versions(t.keyName, o, t.uri));
    const id = versionIdOf(leading?.name);
    if (leading === undefined || id === undefined) {
      throw new KeyportError('KeyStateConflict', 'the key has no usable version', { keyUri: t.uri });
    }
    const algorithm = enumName(leading.algorithm, ALGORITHM_NAMES);
    this.remember(this.algorithms, versionName(t.keyName, id), algorithm);
    return { id, algorithm };
  }

  /** GetPublicKey, with its pem_crc32c checked. */
  async publicKey(t: KeyTarget, id: string, o: ProviderCallOptions): Promise<VersionPublicKey> {
    const name = versionName(t.keyName, id);
    const cached = this.publicKeys.get(name);
    if (cached !== undefined) return cached;
    const res = await this.rpc.call(o, (co, kms) => kms.getPublicKey({ name }, co), { keyUri: t.uri });
    const pem = res.pem ?? '';
    const expected = int64Value(res.pemCrc32c);
    if (expected !== undefined && expected !== crc32c(Buffer.from(pem, 'utf8'))) {
      throw integrityError('public key PEM');
    }
    const key = createPublicKey(pem);
    const spki = new Uint8Array(key.export({ type: 'spki', format: 'der' }));
    const algorithm = enumName(res.algorithm, ALGORITHM_NAMES);
    this.remember(this.algorithms, name, algorithm);
    return this.remember(this.publicKeys, name, { algorithm, key, spki });
  }
}
