/**
 * BYOK through Cloud KMS import jobs: getImportParameters creates an import job
 * (RSA_OAEP_3072_SHA256_AES_256 or RSA_OAEP_4096_SHA256_AES_256) in the key's ring and waits for
 * its wrapping key; importKeyMaterial sends the wrapped material with ImportCryptoKeyVersion.
 * The import token keyport hands back is the import job's resource name.
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import {
  type ImportKeyMaterialRequest,
  type ImportParameters,
  type ImportParametersRequest,
  type ImportWrappingAlgorithm,
  type KeyInfo,
  KeyportError,
  type KeyRef,
  type ProviderCallOptions,
  sleep,
  UnsupportedError,
} from '@keyport/core';
import { GCP_KMS_CAPABILITIES } from './capabilities.js';
import { own } from './crc32c.js';
import { ALGORITHM_NAMES, enumName, VERSION_STATE_NAMES } from './enums.js';
import { type AlgorithmField, type ImportMethodField, purposeOf } from './key-info.js';
import type { KeyService } from './keys.js';
import { type KeyTarget, targetOf, toDate, versionIdOf } from './names.js';
import type { Rpc } from './rpc.js';

const POLL_MS = 150;

function checkAlgorithm(t: KeyTarget, algorithm: ImportWrappingAlgorithm): void {
  if (!GCP_KMS_CAPABILITIES.import.includes(algorithm)) {
    throw new UnsupportedError('import', `Cloud KMS import jobs do not wrap with ${algorithm}`, {
      keyUri: t.uri,
    });
  }
}

export class ImportService {
  constructor(
    private readonly rpc: Rpc,
    private readonly keys: KeyService,
    private readonly keyBits: 3072 | 4096,
  ) {}

  async getImportParameters(
    ref: KeyRef,
    req: ImportParametersRequest,
    o: ProviderCallOptions,
  ): Promise<ImportParameters> {
    const t = targetOf(ref);
    const algorithm = req.algorithm ?? 'RSA_AES_KEY_WRAP_SHA_256';
    checkAlgorithm(t, algorithm);
    const key = await this.keys.getKey(t, o);
    if (key.importOnly !== true) {
      throw new KeyportError(
        'KeyStateConflict',
        'the key holds Cloud KMS-generated material; create it with external: true to import',
        {
          keyUri: t.uri,
        },
      );
    }
    const request = {
      parent: t.keyRing,
      importJobId: `kpi-${randomBytes(8).toString('hex')}`,
      importJob: {
        importMethod: `RSA_OAEP_${this.keyBits}_SHA256_AES_256` as ImportMethodField,
        protectionLevel: key.versionTemplate?.protectionLevel ?? 'SOFTWARE',
      },
    };
    let job = await this.rpc.call(o, (co, kms) => kms.createImportJob(request, co), { keyUri: t.uri });
    // The wrapping key is generated asynchronously: the job is PENDING_GENERATION until it is ACTIVE.
    while (job.state !== 'ACTIVE' && job.state !== 2) {
      if (job.state === 'EXPIRED' || job.state === 3) {
        throw new KeyportError('KeyStateConflict', 'the import job expired', { keyUri: t.uri });
      }
      await sleep(POLL_MS, o.signal);
      const name = job.name ?? '';
      job = await this.rpc.call(o, (co, kms) => kms.getImportJob({ name }, co), { keyUri: t.uri });
    }
    const pem = job.publicKey?.pem ?? '';
    const spki = createPublicKey(pem).export({ type: 'spki', format: 'der' });
    const expiresAt = toDate(job.expireTime);
    return {
      keyUri: t.uri,
      algorithm,
      wrappingPublicKey: new Uint8Array(spki),
      importToken: new TextEncoder().encode(job.name ?? ''),
      ...(expiresAt !== undefined ? { expiresAt } : {}),
    };
  }

  async importKeyMaterial(
    ref: KeyRef,
    req: ImportKeyMaterialRequest,
    o: ProviderCallOptions,
  ): Promise<KeyInfo> {
    const t = targetOf(ref);
    checkAlgorithm(t, req.algorithm);
    if (req.importToken === undefined) {
      throw new KeyportError(
        'InvalidArgument',
        'importKeyMaterial needs the importToken from getImportParameters',
      );
    }
    const importJob = new TextDecoder().decode(req.importToken);
    if (!importJob.startsWith(`${t.keyRing}/importJobs/`)) {
      throw new KeyportError('InvalidArgument', 'the import token names an import job outside this key ring');
    }
    const key = await this.keys.getKey(t, o);
    const request = {
      parent: t.keyName,
      algorithm: enumName(key.versionTemplate?.algorithm, ALGORITHM_NAMES) as AlgorithmField,
      importJob,
      wrappedKey: own(req.wrappedMaterial),
    };
    let version = await this.rpc.call(o, (co, kms) => kms.importCryptoKeyVersion(request, co), {
      keyUri: t.uri,
      op: 'import',
    });
    while (enumName(version.state, VERSION_STATE_NAMES) === 'PENDING_IMPORT') {
      await sleep(POLL_MS, o.signal);
      const name = version.name ?? '';
      version = await this.rpc.call(o, (co, kms) => kms.getCryptoKeyVersion({ name }, co), {
        keyUri: t.uri,
      });
    }
    const state = enumName(version.state, VERSION_STATE_NAMES);
    if (state !== 'ENABLED') {
      throw new KeyportError(
        'InvalidArgument',
        `Cloud KMS did not accept the material (version state ${state})`,
        {
          keyUri: t.uri,
        },
      );
    }
    const id = versionIdOf(version.name);
    if (id !== undefined && purposeOf(key) === 'ENCRYPT_DECRYPT' && !key.primary)
      await this.keys.setPrimary(t, id, o);
    return this.keys.describeKey({ uri: t.uri }, o);
  }
}
