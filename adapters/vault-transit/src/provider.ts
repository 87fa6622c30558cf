/**
 * `VaultTransitProvider`: the portable provider plus what only transit offers — keys of any
 * transit type, raw key reads, immediate deletion, version policies and a rewrap that never
 * drops the context. These run outside core's call policy, so each maps its own errors and takes
 * an optional signal. (Batch encryption is portable: `encryptBatch` / `decryptBatch` live on
 * `TransitKmsProvider`, behind `Keyport.encryptBatch`.)
 */
import type { EncryptionContext, KeyInfo, KeyRef } from '@keyport/core';
import { rewrap } from './batch.js';
import * as crypto from './crypto.js';
import type { TransitKeyData, TransitKeyType } from './key-types.js';
import { TransitKmsProvider } from './kms-provider.js';
import * as life from './lifecycle.js';

export interface ExtraCallOptions {
  readonly signal?: AbortSignal;
}

const never = (): AbortSignal => new AbortController().signal;

export class VaultTransitProvider extends TransitKmsProvider {
  /** Creates a key of any transit type (including chacha20-poly1305 and ed25519). */
  createTransitKey(
    name: string,
    type: TransitKeyType,
    opts: life.TransitKeyOptions = {},
    o: ExtraCallOptions = {},
  ): Promise<TransitKeyData> {
    const key = this.keyForName(name);
    return this.mapped(key, async () => {
      const data = await life.createTransitKey(this.session, key, type, opts, o.signal ?? never());
      this.facts.remember(key, data);
      return data;
    });
  }

  /** The raw transit key data (any type). */
  readTransitKey(ref: KeyRef, o: ExtraCallOptions = {}): Promise<TransitKeyData> {
    const key = this.key(ref);
    return this.mapped(key, () => crypto.readKey(this.session, key, o.signal ?? never()));
  }

  /** Deletes a key immediately and irreversibly (deletion_allowed, then DELETE). */
  deleteKey(ref: KeyRef, o: ExtraCallOptions = {}): Promise<void> {
    const key = this.key(ref);
    return this.mapped(key, async () => {
      const signal = o.signal ?? never();
      await life.deleteKey(this.session, this.facts, key, signal);
      this.extrasSeen.delete(`${key.mount}/${key.name}`);
      await this.store?.remove(key, signal);
    });
  }

  /** min_decryption_version / min_encryption_version (0 = latest for encryption). */
  setVersionPolicy(
    ref: KeyRef,
    policy: { minDecryptionVersion?: number; minEncryptionVersion?: number },
    o: ExtraCallOptions = {},
  ): Promise<KeyInfo> {
    const key = this.key(ref);
    return this.mapped(key, async () => {
      const signal = o.signal ?? never();
      await life.configure(
        this.session,
        key,
        {
          ...(policy.minDecryptionVersion !== undefined
            ? { min_decryption_version: policy.minDecryptionVersion }
            : {}),
          ...(policy.minEncryptionVersion !== undefined
            ? { min_encryption_version: policy.minEncryptionVersion }
            : {}),
        },
        signal,
      );
      return this.describe(key, signal);
    });
  }

  /** Re-encrypts under the newest version, never dropping the context (see batch.ts). */
  rewrap(
    ref: KeyRef,
    ciphertext: Uint8Array,
    req: { context?: EncryptionContext } = {},
    o: ExtraCallOptions = {},
  ) {
    const key = this.key(ref);
    return this.mapped(key, () =>
      rewrap(this.session, this.facts, key, ciphertext, req.context, o.signal ?? never()),
    );
  }
}
