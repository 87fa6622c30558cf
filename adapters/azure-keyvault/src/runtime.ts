/**
 * Shared state of one provider: its vaults and a cache of key specs (rotation keeps a key's type
 * and size, so one lookup per key name serves every later call), and the explanation of 404s.
 */
import { type Capabilities, KeyportError, type KeySpec, type ProviderCallOptions } from '@keyport/core';
import { capabilitiesFor } from './capabilities.js';
import type { CryptoRuntime } from './crypto.js';
import { mapAzureError, PROVIDER_NAME, requestIdOf, statusOf } from './errors.js';
import { specOf } from './specs.js';
import { type AzureKeyVaultProviderOptions, type ResolvedKey, type Vault, Vaults } from './vaults.js';

export class AzureRuntime implements CryptoRuntime {
  readonly vaults: Vaults;
  readonly capabilities: Capabilities;
  private readonly specs = new Map<string, KeySpec>();

  constructor(options: AzureKeyVaultProviderOptions) {
    this.vaults = new Vaults(options);
    this.capabilities = capabilitiesFor(this.vaults.kind);
  }

  get pollOptions(): { intervalInMs?: number } {
    const ms = this.vaults.pollIntervalMs;
    return ms === undefined ? {} : { intervalInMs: ms };
  }

  private cacheId(vault: Vault, name: string): string {
    return `${vault.url}|${name.toLowerCase()}`;
  }

  rememberSpec(vault: Vault, name: string, spec: KeySpec): void {
    this.specs.set(this.cacheId(vault, name), spec);
  }

  forgetSpec(vault: Vault, name: string): void {
    this.specs.delete(this.cacheId(vault, name));
  }

  async specOf(key: ResolvedKey, o: ProviderCallOptions): Promise<KeySpec> {
    const cached = this.specs.get(this.cacheId(key.vault, key.name));
    if (cached !== undefined) return cached;
    try {
      const found = await (await key.vault.keys()).getKey(key.name, { abortSignal: o.signal });
      const spec = specOf(found.key);
      this.rememberSpec(key.vault, key.name, spec);
      return spec;
    } catch (e) {
      if (statusOf(e) === 404) return this.explainMissing({ ...key, version: undefined }, e, false, o);
      throw e;
    }
  }

  /**
   * A 404 from the vault means one of three things: the key is soft-deleted (pending deletion:
   * KeyStateConflict, as on other providers), a ciphertext names a version this key does not have
   * (decrypting under the wrong key: InvalidCiphertext), or the key does not exist (NotFound).
   * The look-ups are best effort: when they fail, the answer stays NotFound.
   */
  async explainMissing(
    key: ResolvedKey,
    error: unknown,
    decrypting: boolean,
    o: ProviderCallOptions,
  ): Promise<never> {
    const base = { provider: PROVIDER_NAME, requestId: requestIdOf(error), cause: error };
    if (
      await this.exists(async () =>
        (await key.vault.keys()).getDeletedKey(key.name, { abortSignal: o.signal }),
      )
    ) {
      throw new KeyportError(
        'KeyStateConflict',
        'the key is soft-deleted (pending deletion): recover it first',
        base,
      );
    }
    if (
      decrypting &&
      (await this.exists(async () => (await key.vault.keys()).getKey(key.name, { abortSignal: o.signal })))
    ) {
      throw new KeyportError('InvalidCiphertext', 'the ciphertext was not made by this key', base);
    }
    throw mapAzureError(error) ?? new KeyportError('NotFound', 'the key was not found', base);
  }

  private async exists(lookup: () => Promise<unknown>): Promise<boolean> {
    try {
      await lookup();
      return true;
    } catch {
      return false;
    }
  }
}
