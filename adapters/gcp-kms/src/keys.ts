/**
 * Keys, versions and their lifecycle: create (with the key ring on demand), describe, list,
 * rotate (a new version, made primary for ENCRYPT_DECRYPT keys), rotation policy,
 * enable/disable/destroy/restore of one version.
 */
import type { protos } from '@google-cloud/kms';
import {
  type CreateKeyRequest,
  type KeyInfo,
  KeyportError,
  type KeyRef,
  type ListOptions,
  type ProviderCallOptions,
  type RotationPolicy,
  supportsSpec,
  UnsupportedError,
} from '@keyport/core';
import { GCP_KMS_CAPABILITIES } from './capabilities.js';
import { ALGORITHM_NAMES, enumName } from './enums.js';
import {
  type AlgorithmField,
  type CryptoKey,
  type CryptoKeyVersion,
  currentVersion,
  purposeOf,
  toKeyInfo,
} from './key-info.js';
import { type KeyTarget, targetOf, toTimestamp, versionIdOf, versionName } from './names.js';
import type { Rpc } from './rpc.js';
import { algorithmFor } from './specs.js';

type ListVersionsRequest = protos.google.cloud.kms.v1.IListCryptoKeyVersionsRequest;
type ListKeysRequest = protos.google.cloud.kms.v1.IListCryptoKeysRequest;

const KEY_ID = /^[A-Za-z0-9_-]{1,63}$/;
const DAY_SECONDS = 86_400;

export interface KeySettings {
  readonly keyRing: string | undefined;
  readonly protectionLevel: 'SOFTWARE' | 'HSM';
}

export class KeyService {
  constructor(
    private readonly rpc: Rpc,
    private readonly settings: KeySettings,
  ) {}

  /** Where a new key goes: a full gcp-kms:// URI, or a bare id inside the configured key ring. */
  private newKeyTarget(name: string): { keyRing: string; id: string } {
    if (name.startsWith('gcp-kms://')) {
      const t = targetOf({ uri: name });
      if (t.version !== undefined)
        throw new KeyportError('InvalidArgument', 'a new key URI names no version');
      return { keyRing: t.keyRing, id: t.keyName.slice(t.keyRing.length + '/cryptoKeys/'.length) };
    }
    if (this.settings.keyRing === undefined) {
      throw new KeyportError(
        'InvalidArgument',
        'createKey with a bare name needs the keyRing option (or pass a gcp-kms:// URI)',
      );
    }
    if (!KEY_ID.test(name))
      throw new KeyportError('InvalidArgument', 'Cloud KMS key ids are 1-63 letters, digits, _ or -');
    return { keyRing: this.settings.keyRing, id: name };
  }

  async createKey(req: CreateKeyRequest, o: ProviderCallOptions): Promise<KeyInfo> {
    const usage = req.usage ?? GCP_KMS_CAPABILITIES.keySpecs[req.spec]?.[0];
    if (usage === undefined)
      throw new UnsupportedError('keySpecs', `Cloud KMS keys of spec ${req.spec} are not supported`);
    const { purpose, algorithm } = algorithmFor(req.spec, usage);
    if (!supportsSpec(GCP_KMS_CAPABILITIES, req.spec, usage)) {
      throw new UnsupportedError('keySpecs', `${req.spec} keys for ${usage} are not supported`);
    }
    const { keyRing, id } = this.newKeyTarget(req.name);
    const rotation = req.rotation?.periodDays === undefined ? {} : rotationFields(req.rotation);
    const cryptoKey: CryptoKey = {
      purpose,
      versionTemplate: {
        algorithm: algorithm as AlgorithmField,
        protectionLevel: this.settings.protectionLevel,
      },
      labels: { ...(req.labels ?? {}) },
      ...rotation,
      ...(req.external === true ? { importOnly: true } : {}),
    };
    const request = {
      parent: keyRing,
      cryptoKeyId: id,
      cryptoKey,
      ...(req.external === true ? { skipInitialVersionCreation: true } : {}),
    };
    const keyUri = `gcp-kms://${keyRing}/cryptoKeys/${id}`;
    let created: CryptoKey;
    try {
      created = await this.rpc.call(o, (co, kms) => kms.createCryptoKey(request, co), { keyUri });
    } catch (e) {
      // The key ring does not exist yet: create it (key rings cannot be deleted, so this is one-off).
      if (!(e instanceof KeyportError && e.code === 'NotFound')) throw e;
      await this.ensureKeyRing(keyRing, o);
      created = await this.rpc.call(o, (co, kms) => kms.createCryptoKey(request, co), { keyUri });
    }
    if (purpose === 'ENCRYPT_DECRYPT') return toKeyInfo(created);
    return toKeyInfo(created, await this.versions(created.name ?? '', o, keyUri));
  }

  private async ensureKeyRing(keyRing: string, o: ProviderCallOptions): Promise<void> {
    const at = keyRing.indexOf('/keyRings/');
    const request = {
      parent: keyRing.slice(0, at),
      keyRingId: keyRing.slice(at + '/keyRings/'.length),
      keyRing: {},
    };
    try {
      await this.rpc.call(o, (co, kms) => kms.createKeyRing(request, co));
    } catch (e) {
      if (!(e instanceof KeyportError && e.code === 'AlreadyExists')) throw e;
    }
  }

  async getKey(t: KeyTarget, o: ProviderCallOptions): Promise<CryptoKey> {
    return this.rpc.call(o, (co, kms) => kms.getCryptoKey({ name: t.keyName }, co), { keyUri: t.uri });
  }

  async versions(keyName: string, o: ProviderCallOptions, keyUri?: string): Promise<CryptoKeyVersion[]> {
    const out: CryptoKeyVersion[] = [];
    const pages = this.rpc.pages<CryptoKeyVersion, ListVersionsRequest>(
      o,
      { parent: keyName, pageSize: 1000 },
      (req, co, kms) => kms.listCryptoKeyVersions(req, co),
      keyUri,
    );
    for await (const v of pages) out.push(v);
    return out;
  }

  async describeKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    const t = targetOf(ref);
    const key = await this.getKey(t, o);
    try {
      return toKeyInfo(key, await this.versions(t.keyName, o, t.uri));
    } catch (e) {
      // An endpoint without version listing (drongo, say) still describes ENCRYPT_DECRYPT keys,
      // whose primary version is embedded in the key.
      const missing = e instanceof KeyportError && (e.code === 'NotFound' || e.code === 'Unsupported');
      if (missing && purposeOf(key) === 'ENCRYPT_DECRYPT') return toKeyInfo(key);
      throw e;
    }
  }

  async *listKeys(o: ListOptions): AsyncIterable<KeyInfo> {
    const keyRing = this.settings.keyRing;
    if (keyRing === undefined) throw new KeyportError('InvalidArgument', 'listKeys needs the keyRing option');
    const pages = this.rpc.pages<CryptoKey, ListKeysRequest>(
      o,
      { parent: keyRing, pageSize: o.pageSize ?? 100 },
      (req, co, kms) => kms.listCryptoKeys(req, co),
    );
    for await (const key of pages) {
      // Only ENCRYPT_DECRYPT keys embed their leading version; others need their versions listed.
      const symmetric = purposeOf(key) === 'ENCRYPT_DECRYPT';
      yield symmetric ? toKeyInfo(key) : toKeyInfo(key, await this.versions(key.name ?? '', o));
    }
  }

  /** The version an unpinned call means: the primary (ENCRYPT_DECRYPT) or the newest live version. */
  async resolveVersion(t: KeyTarget, o: ProviderCallOptions): Promise<string> {
    if (t.version !== undefined) return t.version;
    const key = await this.getKey(t, o);
    const leading =
      purposeOf(key) === 'ENCRYPT_DECRYPT'
        ? key.primary
        : currentVersion(await this.versions(t.keyName, o, t.uri));
    const id = versionIdOf(leading?.name);
    if (id === undefined)
      throw new KeyportError('KeyStateConflict', 'the key has no usable version', { keyUri: t.uri });
    return id;
  }

  async rotateKey(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    const t = targetOf(ref);
    const created = await this.rpc.call(
      o,
      (co, kms) => kms.createCryptoKeyVersion({ parent: t.keyName, cryptoKeyVersion: {} }, co),
      { keyUri: t.uri },
    );
    const id = versionIdOf(created.name);
    // Only ENCRYPT_DECRYPT keys have a primary; for the others the newest version leads by itself.
    if (id !== undefined && enumName(created.algorithm, ALGORITHM_NAMES) === 'GOOGLE_SYMMETRIC_ENCRYPTION') {
      await this.setPrimary(t, id, o);
    }
    return this.describeKey({ uri: t.uri }, o);
  }

  async setPrimary(t: KeyTarget, id: string, o: ProviderCallOptions): Promise<void> {
    await this.rpc.call(
      o,
      (co, kms) => kms.updateCryptoKeyPrimaryVersion({ name: t.keyName, cryptoKeyVersionId: id }, co),
      { keyUri: t.uri },
    );
  }

  async setRotationPolicy(ref: KeyRef, policy: RotationPolicy, o: ProviderCallOptions): Promise<KeyInfo> {
    const t = targetOf(ref);
    const fields = policy.periodDays === undefined ? {} : rotationFields(policy);
    await this.rpc.call(
      o,
      (co, kms) =>
        kms.updateCryptoKey(
          {
            cryptoKey: { name: t.keyName, ...fields },
            updateMask: { paths: ['rotation_period', 'next_rotation_time'] },
          },
          co,
        ),
      { keyUri: t.uri },
    );
    return this.describeKey({ uri: t.uri }, o);
  }

  async setVersionState(
    ref: KeyRef,
    state: 'ENABLED' | 'DISABLED',
    o: ProviderCallOptions,
  ): Promise<KeyInfo> {
    const t = targetOf(ref);
    const id = await this.resolveVersion(t, o);
    await this.rpc.call(
      o,
      (co, kms) =>
        kms.updateCryptoKeyVersion(
          { cryptoKeyVersion: { name: versionName(t.keyName, id), state }, updateMask: { paths: ['state'] } },
          co,
        ),
      { keyUri: t.uri },
    );
    return this.describeKey({ uri: t.uri }, o);
  }

  async destroyVersion(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    const t = targetOf(ref);
    if (t.version === undefined)
      throw new KeyportError('InvalidArgument', 'destroyKeyVersion needs a key version');
    const name = versionName(t.keyName, t.version);
    await this.rpc.call(o, (co, kms) => kms.destroyCryptoKeyVersion({ name }, co), { keyUri: t.uri });
    return this.describeKey({ uri: t.uri }, o);
  }

  /** Cloud KMS only: takes a version out of DESTROY_SCHEDULED (it comes back DISABLED). */
  async restoreVersion(ref: KeyRef, o: ProviderCallOptions): Promise<KeyInfo> {
    const t = targetOf(ref);
    if (t.version === undefined)
      throw new KeyportError('InvalidArgument', 'restoreKeyVersion needs a key version');
    const name = versionName(t.keyName, t.version);
    await this.rpc.call(o, (co, kms) => kms.restoreCryptoKeyVersion({ name }, co), { keyUri: t.uri });
    return this.describeKey({ uri: t.uri }, o);
  }
}

/** rotation_period and next_rotation_time for a policy; refuses periods Cloud KMS cannot hold. */
function rotationFields(policy: RotationPolicy): Pick<CryptoKey, 'rotationPeriod' | 'nextRotationTime'> {
  const days = policy.periodDays;
  if (days === undefined || !Number.isFinite(days) || days <= 0) {
    throw new KeyportError('InvalidArgument', 'rotation periodDays must be a positive number of days');
  }
  const seconds = Math.round(days * DAY_SECONDS);
  const next = policy.nextRotationAt ?? new Date(Date.now() + seconds * 1000);
  return { rotationPeriod: { seconds }, nextRotationTime: toTimestamp(next) };
}
