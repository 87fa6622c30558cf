import { constants, createDecipheriv, generateKeyPair, privateDecrypt } from 'node:crypto';
import { promisify } from 'node:util';
import { ownEntry } from '../shared/own.js';
import { algorithmSpec, pqcUnavailable } from './algorithms.js';
import { attest } from './attestation.js';
import type { Handler } from './context.js';
import { PERMISSION } from './iam-roles.js';
import { importMaterial } from './key-material.js';
import type { ImportJobRecord } from './model.js';
import { checkId, parseCryptoKey, parseImportJob, parseKeyRing } from './names.js';
import { type ListRequest, page } from './paging.js';
import { alreadyExists, invalid, precondition, unimplemented } from './rpc-error.js';
import { storeVersion } from './rpc-keys.js';
import { importJobToProto, versionToProto } from './wire.js';

// Import jobs and ImportCryptoKeyVersion. A job is created PENDING_GENERATION and becomes ACTIVE
// once its RSA wrapping key exists (callers poll GetImportJob, as with the service); it expires
// three days after creation. Unwrapping follows the ImportCryptoKeyVersionRequest.wrapped_key
// reference: RSAES-OAEP of an ephemeral AES-256 key then AES-KWP (RFC 5649) of the key for the
// *_AES_256 methods (the CKM_RSA_AES_KEY_WRAP layout), plain RSAES-OAEP-SHA256 otherwise.
const JOB_LIFETIME_MS = 3 * 24 * 3600 * 1000;
const KWP_IV = Buffer.from('a65959a6', 'hex');

interface ImportMethod {
  bits: number;
  hash: 'sha1' | 'sha256';
  withAes: boolean;
}
const METHODS: Record<string, ImportMethod> = {
  RSA_OAEP_3072_SHA1_AES_256: { bits: 3072, hash: 'sha1', withAes: true },
  RSA_OAEP_4096_SHA1_AES_256: { bits: 4096, hash: 'sha1', withAes: true },
  RSA_OAEP_3072_SHA256_AES_256: { bits: 3072, hash: 'sha256', withAes: true },
  RSA_OAEP_4096_SHA256_AES_256: { bits: 4096, hash: 'sha256', withAes: true },
  RSA_OAEP_3072_SHA256: { bits: 3072, hash: 'sha256', withAes: false },
  RSA_OAEP_4096_SHA256: { bits: 4096, hash: 'sha256', withAes: false },
};

const generatePair = promisify(generateKeyPair);

function unwrap(job: ImportJobRecord, wrapped: Buffer): Buffer {
  const method = METHODS[job.importMethod]!;
  const rsa = (data: Buffer) =>
    privateDecrypt(
      { key: job.privateKey!, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: method.hash },
      data,
    );
  try {
    if (!method.withAes) return rsa(wrapped);
    const rsaLength = method.bits / 8;
    const aesKey = rsa(wrapped.subarray(0, rsaLength));
    if (aesKey.length !== 32) throw new Error('ephemeral key is not AES-256');
    const kwp = createDecipheriv('id-aes256-wrap-pad', aesKey, KWP_IV);
    return Buffer.concat([kwp.update(wrapped.subarray(rsaLength)), kwp.final()]);
  } catch {
    throw invalid('The wrapped key material could not be unwrapped with the import job.');
  }
}

interface ImportRequest {
  parent?: string;
  cryptoKeyVersion?: string;
  algorithm?: string;
  importJob?: string;
  wrappedKey?: Buffer;
  rsaAesWrappedKey?: Buffer;
}

export const importHandlers: Record<string, Handler> = {
  CreateImportJob(request, ctx) {
    const req = request as {
      parent?: string;
      importJobId?: string;
      importJob?: { importMethod?: string; protectionLevel?: string } | null;
    };
    const parent = parseKeyRing('parent', req.parent);
    const id = checkId('import_job_id', req.importJobId);
    ctx.authorize(parent, 'cloudkms.importJobs.create');
    ctx.state.keyRing(parent);
    const input = req.importJob;
    if (!input) throw invalid('import_job is required.');
    const methodName = input.importMethod ?? 'IMPORT_METHOD_UNSPECIFIED';
    if (methodName === 'IMPORT_METHOD_UNSPECIFIED') throw invalid('import_job.import_method is required.');
    const method = ownEntry(METHODS, methodName);
    if (!method) throw unimplemented(`Import method ${methodName}`);
    const level = input.protectionLevel ?? 'PROTECTION_LEVEL_UNSPECIFIED';
    if (level === 'PROTECTION_LEVEL_UNSPECIFIED') throw invalid('import_job.protection_level is required.');
    if (level !== 'SOFTWARE' && level !== 'HSM') throw unimplemented(`Protection level ${level}`);
    const name = `${parent}/importJobs/${id}`;
    if (ctx.state.importJobs.has(name)) throw alreadyExists(`ImportJob ${name}`);
    const job: ImportJobRecord = {
      name,
      importMethod: methodName,
      protectionLevel: level,
      createTime: ctx.now,
      expireTime: new Date(ctx.now.getTime() + JOB_LIFETIME_MS),
      state: 'PENDING_GENERATION',
    };
    ctx.state.importJobs.set(name, job);
    const clockAtStart = ctx.now.getTime() - Date.now();
    void generatePair('rsa', { modulusLength: method.bits }).then(({ privateKey, publicKey }) => {
      if (job.state !== 'PENDING_GENERATION') return;
      job.privateKey = privateKey;
      job.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
      job.generateTime = new Date(Date.now() + clockAtStart);
      // The service attests the wrapping key of an HSM import job (ImportJob.attestation).
      if (job.protectionLevel === 'HSM') {
        job.attestation = attest(
          job.name,
          job.importMethod,
          { kind: 'pair', privateKey, publicKey },
          job.generateTime,
        );
      }
      job.state = 'ACTIVE';
    });
    return importJobToProto(job);
  },

  GetImportJob(request, ctx) {
    const { job } = parseImportJob('name', (request as { name?: string }).name);
    ctx.authorize(job, 'cloudkms.importJobs.get');
    return importJobToProto(ctx.state.importJob(job));
  },

  ListImportJobs(request, ctx) {
    const req = request as ListRequest & { parent?: string };
    const parent = parseKeyRing('parent', req.parent);
    ctx.authorize(parent, 'cloudkms.importJobs.list');
    ctx.state.keyRing(parent);
    const jobs = [...ctx.state.importJobs.values()].filter((j) => j.name.startsWith(`${parent}/importJobs/`));
    jobs.sort((a, b) => (a.name < b.name ? -1 : 1));
    const p = page(parent, 'google.cloud.kms.v1.ImportJob', jobs.map(importJobToProto), req);
    return {
      importJobs: p.items,
      nextPageToken: p.nextPageToken,
      totalSize: p.totalSize,
    };
  },

  ImportCryptoKeyVersion(request, ctx) {
    const req = request as ImportRequest;
    const { key: keyName } = parseCryptoKey('parent', req.parent);
    const { job: jobName } = parseImportJob('import_job', req.importJob);
    ctx.authorize(keyName, 'cloudkms.cryptoKeyVersions.create');
    ctx.authorize(jobName, PERMISSION.useToImport);
    const key = ctx.state.cryptoKey(keyName);
    if (req.cryptoKeyVersion) throw unimplemented('Re-importing into an existing CryptoKeyVersion');
    const algorithm = req.algorithm ?? 'CRYPTO_KEY_VERSION_ALGORITHM_UNSPECIFIED';
    if (algorithm === 'CRYPTO_KEY_VERSION_ALGORITHM_UNSPECIFIED') throw invalid('algorithm is required.');
    const spec = algorithmSpec(algorithm);
    if (!spec) throw unimplemented(`Algorithm ${algorithm}`);
    const missing = pqcUnavailable(spec);
    if (missing !== undefined) throw unimplemented(`Algorithm ${algorithm} (${missing})`);
    if (spec.purpose !== key.purpose)
      throw invalid(`Algorithm ${algorithm} is not compatible with purpose ${key.purpose}.`);
    const hasNew = (req.wrappedKey?.length ?? 0) > 0;
    const hasLegacy = (req.rsaAesWrappedKey?.length ?? 0) > 0;
    if (hasNew === hasLegacy)
      throw invalid('Exactly one of wrapped_key and rsa_aes_wrapped_key must be specified.');
    const job = ctx.state.importJob(jobName);
    if (job.state !== 'ACTIVE')
      throw precondition(`ImportJob ${job.name} is not ACTIVE, current state is: ${job.state}.`);
    if (job.protectionLevel !== key.protectionLevel) {
      throw precondition(
        `ImportJob ${job.name} has protection level ${job.protectionLevel}, the CryptoKey ${key.protectionLevel}.`,
      );
    }
    const wrapped = (hasNew ? req.wrappedKey : req.rsaAesWrappedKey)!;
    if (hasLegacy && !METHODS[job.importMethod]!.withAes) {
      throw invalid('rsa_aes_wrapped_key requires an import method that wraps with AES-256.');
    }
    const material = importMaterial(spec, unwrap(job, wrapped));
    const version = storeVersion(key, ctx.now, {
      state: 'ENABLED',
      algorithm,
      material,
      importJob: job.name,
      importTime: ctx.now,
    });
    if (key.purpose === 'ENCRYPT_DECRYPT' && key.primaryId === undefined) key.primaryId = version.id;
    return versionToProto(version);
  },
};
