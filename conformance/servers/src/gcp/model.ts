import { type KeyObject, randomUUID } from 'node:crypto';
import type { Purpose } from './algorithms.js';
import type { Attestation } from './attestation.js';
import type { KeyMaterial } from './key-material.js';
import { packAny } from './proto.js';
import { notFound } from './rpc-error.js';

// In-memory state of one server: key rings, crypto keys with their versions, import jobs and
// IAM policies. Time-driven transitions (scheduled destruction, automatic rotation, import-job
// expiry) are applied by `settle(now)` before every call, so an advanced clock takes effect.
export type VersionState =
  | 'PENDING_GENERATION'
  | 'ENABLED'
  | 'DISABLED'
  | 'DESTROY_SCHEDULED'
  | 'DESTROYED'
  | 'PENDING_IMPORT'
  | 'IMPORT_FAILED';

export interface KeyRingRecord {
  name: string;
  createTime: Date;
}

export interface VersionRecord {
  id: number;
  name: string;
  state: VersionState;
  algorithm: string;
  protectionLevel: string;
  createTime: Date;
  generateTime?: Date;
  destroyTime?: Date;
  destroyEventTime?: Date;
  importJob?: string;
  importTime?: Date;
  /** HSM versions only. */
  attestation?: Attestation;
  /** Deleted when the version reaches DESTROYED. */
  material?: KeyMaterial;
}

export interface CryptoKeyRecord {
  name: string;
  keyRing: string;
  purpose: Purpose;
  createTime: Date;
  labels: Record<string, string>;
  algorithm: string;
  protectionLevel: string;
  rotationPeriodSeconds?: number;
  nextRotationTime?: Date;
  destroyScheduledDurationSeconds: number;
  importOnly: boolean;
  primaryId?: number;
  versions: Map<number, VersionRecord>;
  nextVersionId: number;
}

export interface ImportJobRecord {
  name: string;
  importMethod: string;
  protectionLevel: string;
  createTime: Date;
  generateTime?: Date;
  expireTime: Date;
  expireEventTime?: Date;
  state: 'PENDING_GENERATION' | 'ACTIVE' | 'EXPIRED';
  privateKey?: KeyObject;
  publicKeyPem?: string;
  /** HSM jobs, once ACTIVE. */
  attestation?: Attestation;
}

export interface RetiredRecord {
  name: string;
  originalResource: string;
  resourceType: string;
  deleteTime: Date;
}

/** A google.longrunning.Operation as handlers return it (plain object, Any fields packed). */
export interface OperationRecord {
  name: string;
  done: true;
  metadata: ReturnType<typeof packAny>;
  response: ReturnType<typeof packAny>;
}

/** Operations kept for GetOperation; the oldest are forgotten beyond this many. */
const MAX_OPERATIONS = 10_000;

export class KmsState {
  readonly keyRings = new Map<string, KeyRingRecord>();
  readonly cryptoKeys = new Map<string, CryptoKeyRecord>();
  readonly importJobs = new Map<string, ImportJobRecord>();
  /** RetiredResources by their name, and the CryptoKey names they retire (never reused). */
  readonly retired = new Map<string, RetiredRecord>();
  readonly retiredNames = new Set<string>();
  readonly operations = new Map<string, OperationRecord>();

  retiredResource(name: string): RetiredRecord {
    const r = this.retired.get(name);
    if (!r) throw notFound(`RetiredResource ${name}`);
    return r;
  }

  /** Records a finished operation under `location` whose result is google.protobuf.Empty. */
  finishOperation(location: string, metadataType: string, metadata: object): OperationRecord {
    const op: OperationRecord = {
      name: `${location}/operations/${randomUUID()}`,
      done: true,
      metadata: packAny(metadataType, metadata),
      response: packAny('google.protobuf.Empty', {}),
    };
    this.operations.set(op.name, op);
    if (this.operations.size > MAX_OPERATIONS) {
      const oldest = this.operations.keys().next().value;
      if (oldest !== undefined) this.operations.delete(oldest);
    }
    return op;
  }

  operation(name: string): OperationRecord {
    const op = this.operations.get(name);
    if (!op) throw notFound(`Operation ${name}`);
    return op;
  }

  keyRing(name: string): KeyRingRecord {
    const ring = this.keyRings.get(name);
    if (!ring) throw notFound(`KeyRing ${name}`);
    return ring;
  }

  cryptoKey(name: string): CryptoKeyRecord {
    const key = this.cryptoKeys.get(name);
    if (!key) throw notFound(`CryptoKey ${name}`);
    return key;
  }

  version(keyName: string, versionId: string): { key: CryptoKeyRecord; version: VersionRecord } {
    const key = this.cryptoKey(keyName);
    const version = /^[1-9][0-9]*$/.test(versionId) ? key.versions.get(Number(versionId)) : undefined;
    if (!version) throw notFound(`CryptoKeyVersion ${keyName}/cryptoKeyVersions/${versionId}`);
    return { key, version };
  }

  importJob(name: string): ImportJobRecord {
    const job = this.importJobs.get(name);
    if (!job) throw notFound(`ImportJob ${name}`);
    return job;
  }

  /** Applies every transition that fell due at or before `now`. `rotate` makes a new primary version. */
  settle(now: Date, rotate: (key: CryptoKeyRecord, at: Date) => void): void {
    for (const key of this.cryptoKeys.values()) {
      for (const version of key.versions.values()) {
        if (version.state === 'DESTROY_SCHEDULED' && version.destroyTime && version.destroyTime <= now) {
          version.state = 'DESTROYED';
          version.destroyEventTime = version.destroyTime;
          delete version.material;
        }
      }
      // Automatic rotation: one new version per elapsed period, as the service would have made.
      // A next_rotation_time without a rotation_period rotates once, then is cleared.
      while (key.nextRotationTime !== undefined && key.nextRotationTime <= now) {
        const at = key.nextRotationTime;
        rotate(key, at);
        if (key.rotationPeriodSeconds === undefined) delete key.nextRotationTime;
        else key.nextRotationTime = new Date(at.getTime() + key.rotationPeriodSeconds * 1000);
      }
    }
    for (const job of this.importJobs.values()) {
      if (job.state !== 'EXPIRED' && job.expireTime <= now) {
        job.state = 'EXPIRED';
        job.expireEventTime = job.expireTime;
        delete job.privateKey;
      }
    }
  }
}
