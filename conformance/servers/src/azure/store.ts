// In-memory vault state: live keys with their versions, soft-deleted keys, rotation policies.
// Names are case-insensitive in Key Vault, so maps are keyed by the lower-cased name.
import { randomBytes } from 'node:crypto';
import type { TestClock } from './clock.js';
import { conflict, deletedKeyNotFound, keyNotFound } from './errors.js';
import type { KeyMaterial } from './material.js';

export interface KeyAttributes {
  enabled: boolean;
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
}

export interface KeyVersion {
  readonly version: string;
  readonly material: KeyMaterial;
  keyOps: string[];
  attributes: KeyAttributes;
  tags: Record<string, string>;
}

export interface LifetimeAction {
  trigger: { timeAfterCreate?: string; timeBeforeExpiry?: string };
  action: { type: 'Rotate' | 'Notify' };
}

export interface RotationPolicy {
  lifetimeActions: LifetimeAction[];
  expiryTime?: string;
  created: number;
  updated: number;
}

export interface KeyRecord {
  readonly name: string;
  readonly versions: KeyVersion[];
  rotationPolicy?: RotationPolicy;
}

export interface DeletedRecord {
  readonly record: KeyRecord;
  readonly deletedDate: number;
  readonly scheduledPurgeDate: number;
}

export const newVersionId = (): string => randomBytes(16).toString('hex');

export class KeyStore {
  readonly live = new Map<string, KeyRecord>();
  readonly deleted = new Map<string, DeletedRecord>();

  constructor(
    private readonly clock: TestClock,
    readonly recoverableDays: number,
  ) {}

  record(name: string): KeyRecord {
    const r = this.live.get(name.toLowerCase());
    if (!r) throw keyNotFound(name);
    return r;
  }

  /** A version by id, or the latest when `version` is empty. */
  version(name: string, version: string | undefined): KeyVersion {
    const r = this.record(name);
    if (!version) {
      const latest = r.versions[r.versions.length - 1];
      if (!latest) throw keyNotFound(name);
      return latest;
    }
    const v = r.versions.find((x) => x.version === version.toLowerCase());
    if (!v) throw keyNotFound(`${name}/${version}`);
    return v;
  }

  /** Adds a version, creating the key if needed; a soft-deleted name cannot be reused. */
  addVersion(name: string, v: KeyVersion): KeyRecord {
    const id = name.toLowerCase();
    if (this.deleted.has(id)) {
      throw conflict(
        `Key ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the key can only be recovered or purged.`,
        'ObjectIsDeletedButRecoverable',
      );
    }
    let r = this.live.get(id);
    if (!r) {
      r = { name, versions: [] };
      this.live.set(id, r);
    }
    r.versions.push(v);
    return r;
  }

  softDelete(name: string): DeletedRecord {
    const r = this.record(name);
    const now = this.clock.nowSeconds();
    const d = { record: r, deletedDate: now, scheduledPurgeDate: now + this.recoverableDays * 86_400 };
    this.live.delete(name.toLowerCase());
    this.deleted.set(name.toLowerCase(), d);
    return d;
  }

  deletedRecord(name: string): DeletedRecord {
    const d = this.deleted.get(name.toLowerCase());
    if (!d) throw deletedKeyNotFound(name);
    return d;
  }

  recover(name: string): KeyRecord {
    const d = this.deletedRecord(name);
    this.deleted.delete(name.toLowerCase());
    this.live.set(name.toLowerCase(), d.record);
    return d.record;
  }

  purge(name: string): void {
    this.deletedRecord(name);
    this.deleted.delete(name.toLowerCase());
  }

  /** Deleted keys whose scheduled purge date has passed are purged by the service itself. */
  sweep(): void {
    const now = this.clock.nowSeconds();
    for (const [id, d] of this.deleted) if (d.scheduledPurgeDate <= now) this.deleted.delete(id);
  }
}
