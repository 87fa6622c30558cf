/**
 * BYOK through Cloud KMS import jobs: getImportParameters creates an import job
 * (RSA_OAEP_3072_SHA256_AES_256 or RSA_OAEP_4096_SHA256_AES_256) in the key's ring and waits for
 * its wrapping key; importKeyMaterial sends the wrapped material with ImportCryptoKeyVersion.
 * The import token keyport hands back is the import job's resource name.
 */
import { randomBytes } from 'node:crypto';
import type { protos } from '@google-cloud/kms';
import {
  type ImportKeyMaterialRequest,
  type ImportParameters,
  type ImportParametersRequest,
  KeyportError,
  type KeyRef,
  keyportError,
  type ProviderCallOptions as Opts,
  sleep,
} from '@keyport/core';
import { type AlgorithmField, describeKey, getKey, purposeOf, setPrimary, toDate } from './keys.js';
import { defined, own, publicKeyFromPem, type Runtime } from './rpc.js';
import { algorithmName, versionStateName } from './specs.js';
import { targetOf, versionIdOf } from './uri.js';

type ImportMethodField = NonNullable<protos.google.cloud.kms.v1.IImportJob['importMethod']>;
const POLL_MS = 150;

export async function getImportParameters(rt: Runtime, ref: KeyRef, req: ImportParametersRequest, o: Opts) {
  const t = targetOf(ref);
  const key = await getKey(rt, t, o);
  if (key.importOnly !== true) {
    const why = 'the key holds Cloud KMS-generated material; create it with external: true to import';
    throw new KeyportError('KeyStateConflict', why, { keyUri: t.uri });
  }
  const importJob = {
    importMethod: `RSA_OAEP_${rt.importJobKeyBits}_SHA256_AES_256` as ImportMethodField,
    protectionLevel: key.versionTemplate?.protectionLevel ?? 'SOFTWARE',
  };
  const request = { parent: t.keyRing, importJobId: `kpi-${randomBytes(8).toString('hex')}`, importJob };
  let job = await rt.rpc.call(o, (co, kms) => kms.createImportJob(request, co), t.uri);
  // The wrapping key is generated asynchronously: the job is PENDING_GENERATION until it is ACTIVE.
  while (job.state !== 'ACTIVE' && job.state !== 2) {
    if (job.state === 'EXPIRED' || job.state === 3) {
      throw new KeyportError('KeyStateConflict', 'the import job expired', { keyUri: t.uri });
    }
    await sleep(POLL_MS, o.signal);
    const name = job.name ?? '';
    job = await rt.rpc.call(o, (co, kms) => kms.getImportJob({ name }, co), t.uri);
  }
  const details = { keyUri: t.uri, provider: rt.rpc.providerName };
  const wrapping = publicKeyFromPem(job.publicKey?.pem ?? '', 'import job wrapping key', details);
  const spki = wrapping.export({ type: 'spki', format: 'der' });
  return {
    keyUri: t.uri,
    // core has refused the wrapping algorithms the capabilities do not declare
    algorithm: req.algorithm ?? 'RSA_AES_KEY_WRAP_SHA_256',
    wrappingPublicKey: new Uint8Array(spki),
    importToken: new TextEncoder().encode(job.name ?? ''),
    ...defined({ expiresAt: toDate(job.expireTime) }),
  } satisfies ImportParameters;
}

export async function importKeyMaterial(rt: Runtime, ref: KeyRef, req: ImportKeyMaterialRequest, o: Opts) {
  const t = targetOf(ref);
  if (req.algorithm !== 'RSA_AES_KEY_WRAP_SHA_256') {
    const why = `Cloud KMS import jobs do not wrap with ${req.algorithm}`;
    throw keyportError('Unsupported', why, { keyUri: t.uri, capability: 'import' });
  }
  // Cloud KMS key versions have no material expiry: an expiry is refused, never dropped (the
  // material would outlive the date the caller asked for).
  if (req.expiresAt !== undefined) {
    const why = 'Cloud KMS imported key material cannot expire';
    throw keyportError('Unsupported', why, { keyUri: t.uri, capability: 'importExpiry' });
  }
  const importJob = req.importToken === undefined ? '' : new TextDecoder().decode(req.importToken);
  if (!importJob.startsWith(`${t.keyRing}/importJobs/`)) {
    const why = 'importKeyMaterial needs the importToken getImportParameters gave for this key ring';
    throw new KeyportError('InvalidArgument', why, { keyUri: t.uri });
  }
  const key = await getKey(rt, t, o);
  const request = {
    parent: t.keyName,
    algorithm: algorithmName(key.versionTemplate?.algorithm) as AlgorithmField,
    importJob,
    wrappedKey: own(req.wrappedMaterial),
  };
  let version = await rt.rpc.call(o, (co, kms) => kms.importCryptoKeyVersion(request, co), t.uri);
  while (versionStateName(version.state) === 'PENDING_IMPORT') {
    await sleep(POLL_MS, o.signal);
    const name = version.name ?? '';
    version = await rt.rpc.call(o, (co, kms) => kms.getCryptoKeyVersion({ name }, co), t.uri);
  }
  const state = versionStateName(version.state);
  if (state !== 'ENABLED') {
    const why = `Cloud KMS did not accept the material (version state ${state})`;
    throw new KeyportError('InvalidArgument', why, { keyUri: t.uri });
  }
  const id = versionIdOf(version.name);
  // The imported version becomes primary even when the key has one already (material imported
  // anew): otherwise encrypt would go on under the old material and the KeyInfo (and core's
  // audit event, which records its primaryVersion as the version imported) would name the old one.
  if (id !== undefined && purposeOf(key) === 'ENCRYPT_DECRYPT') await setPrimary(rt, t, id, o);
  return describeKey(rt, { uri: t.uri }, o);
}
