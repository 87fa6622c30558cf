/**
 * Key metadata transit cannot hold. Transit keys carry no labels, description or intended
 * usage, so with `metadataStore` configured keyport keeps them in a KV version 2 mount at
 * `<kvMount>/data/<prefix>/<transit mount>/<key name>`; without it, labels and descriptions
 * are refused (never silently dropped) and the usage is inferred from the key type.
 */
import type { KeyUsage } from '@keyport/core';
import type { KeyLocation } from './key-types.js';
import type { VaultSession } from './session.js';

export interface MetadataStoreOptions {
  /** A KV v2 mount, e.g. `secret`. */
  readonly kvMount: string;
  /** Path under the mount; default `keyport/keys`. */
  readonly prefix?: string;
}

export interface KeyMetadata {
  readonly labels?: Readonly<Record<string, string>> | undefined;
  readonly description?: string | undefined;
  readonly usage?: KeyUsage | undefined;
}

export class MetadataStore {
  constructor(
    private readonly session: VaultSession,
    private readonly options: MetadataStoreOptions,
  ) {}

  private path(kind: 'data' | 'metadata', key: KeyLocation): string {
    return `${this.options.kvMount}/${kind}/${this.options.prefix ?? 'keyport/keys'}/${key.mount}/${key.name}`;
  }

  async read(key: KeyLocation, signal: AbortSignal): Promise<KeyMetadata | undefined> {
    try {
      const r = (await this.session.call(signal, (o, vault) => vault.read(this.path('data', key), o))) as {
        data?: { data?: KeyMetadata };
      };
      return r.data?.data;
    } catch (error) {
      if ((error as { response?: { statusCode?: number } }).response?.statusCode === 404) return undefined;
      throw error;
    }
  }

  async write(key: KeyLocation, meta: KeyMetadata, signal: AbortSignal): Promise<void> {
    await this.session.call(signal, (o, vault) => vault.write(this.path('data', key), { data: meta }, o));
  }

  /** Removes every version of the key's metadata (after the key itself is deleted). */
  async remove(key: KeyLocation, signal: AbortSignal): Promise<void> {
    await this.session.call(signal, (o, vault) => vault.delete(this.path('metadata', key), o));
  }
}
