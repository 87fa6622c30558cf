/** Opening (and creating) a keystore: the entry point of this package. */

import { localError, throwIfAborted } from './errors.js';
import { checkPrincipal } from './grants.js';
import { KeystoreAccess } from './key-access.js';
import { KeystoreFile } from './keystore-file.js';
import { LocalProvider } from './provider.js';
import { DEFAULT_SCRYPT, type ScryptParams, validScrypt } from './sealed-file.js';

export interface OpenLocalKeystoreOptions {
  /** The keystore file. Key URIs carry this path exactly as given (`local://<path>#<name>`). */
  readonly path: string;
  /** Seals the file (scrypt). A string is used as its UTF-8 bytes, unnormalised. */
  readonly passphrase: string | Uint8Array;
  /**
   * The principal to act as. Defaults to the keystore's owner. When a keystore is created,
   * this principal becomes its owner ('owner' when absent).
   */
  readonly principal?: string;
  /** Create the keystore when the file does not exist (otherwise: NotFound). */
  readonly create?: boolean;
  /** scrypt cost for a NEW keystore (default log2N 15, r 8, p 1); an existing file keeps its own. */
  readonly kdf?: Partial<ScryptParams>;
  /** The time source for rotation, deletion, grant and import expiry; `() => new Date()` by default. */
  readonly clock?: () => Date;
  /** How long a write waits for another writer's lock; 10 s by default. */
  readonly lockTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

export async function openLocalKeystore(options: OpenLocalKeystoreOptions): Promise<LocalProvider> {
  throwIfAborted(options.signal);
  if (typeof options.path !== 'string' || options.path.length === 0) {
    throw localError('InvalidArgument', 'path is required');
  }
  if (options.principal !== undefined) checkPrincipal(options.principal, 'principal');
  const passphrase =
    typeof options.passphrase === 'string'
      ? Buffer.from(options.passphrase, 'utf8')
      : Buffer.from(options.passphrase ?? []);
  if (passphrase.length === 0) throw localError('InvalidArgument', 'passphrase must not be empty');
  const params: ScryptParams = { ...DEFAULT_SCRYPT, ...options.kdf };
  if (!validScrypt(params)) throw localError('InvalidArgument', 'scrypt parameters out of range');
  const clock = options.clock ?? (() => new Date());
  const file = new KeystoreFile({ path: options.path, passphrase, lockTimeoutMs: options.lockTimeoutMs });
  passphrase.fill(0);
  try {
    if (options.create === true) {
      await file.createIfMissing(options.principal ?? 'owner', params, clock(), options.signal);
    }
    const body = await file.read(options.signal); // checks the passphrase and the file
    const access = new KeystoreAccess(file, options.principal ?? body.owner, options.path, clock);
    return new LocalProvider(access);
  } catch (error) {
    file.close();
    throw error;
  }
}
