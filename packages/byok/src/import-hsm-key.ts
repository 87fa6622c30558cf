/**
 * `importHsmKey`: a key born in the HSM becomes a key of AWS KMS, Vault/OpenBao transit or the
 * local keystore, and the pairing is recorded. Every check that can fail runs before the target
 * is changed, so a refusal leaves nothing imported half-way:
 *
 *   1. plan      algorithm from the target's capabilities and the HSM's OAEP hashes
 *   2. target    must be AES_256 and pending_import (created with `external: true`)
 *   3. HSM key   generate (exportable AES_256) or check the given one
 *   4. params    fetched through Keyport (or given); algorithm and expiry checked
 *   5. wrap      inside the HSM (C_WrapKey); only wrapped bytes leave the token
 *   6. import    Keyport importKeyMaterial with the planned algorithm
 *   7. record    the manifest, replaced atomically
 */
import { type ImportParameters, type KeyInfo, KeyportError, needs } from '@keyport/core';
import { hsmObject, resolveHsmKey, wrapInHsm } from './hsm-key.js';
import { recordPairing } from './manifest.js';
import { type ImportPlan, planImport } from './plan.js';
import type { ByokPairing, ImportHsmKeyOptions } from './types.js';

const fail = (code: 'InvalidArgument' | 'KeyStateConflict', message: string, keyUri: string) =>
  new KeyportError(code, message, { provider: 'byok', keyUri });

const callOptions = (o: ImportHsmKeyOptions) => (o.signal === undefined ? {} : { signal: o.signal });

async function checkTarget(o: ImportHsmKeyOptions): Promise<KeyInfo> {
  const info = await o.keyport.describeKey(o.target.uri, callOptions(o));
  if (info.spec !== 'AES_256') {
    throw fail(
      'InvalidArgument',
      `the target key is ${info.spec}; the HSM key is AES_256 material`,
      info.uri,
    );
  }
  if (info.state !== 'pending_import') {
    throw fail(
      'KeyStateConflict',
      `the target key is ${info.state}; import needs a key created with external: true (pending_import)`,
      info.uri,
    );
  }
  return info;
}

async function parametersFor(o: ImportHsmKeyOptions, plan: ImportPlan): Promise<ImportParameters> {
  const params =
    o.importParameters ??
    (await o.keyport.getImportParameters(o.target.uri, { algorithm: plan.algorithm }, callOptions(o)));
  if (params.algorithm !== plan.algorithm) {
    throw fail(
      'InvalidArgument',
      `the import parameters are for ${params.algorithm}; this import wraps with ${plan.algorithm}`,
      o.target.uri,
    );
  }
  const now = (o.clock ?? (() => new Date()))();
  if (params.expiresAt !== undefined && params.expiresAt.getTime() <= now.getTime()) {
    throw fail(
      'InvalidArgument',
      `the import parameters expired at ${params.expiresAt.toISOString()}; fetch new ones`,
      o.target.uri,
    );
  }
  return params;
}

/** Imports an HSM key into the target and records the pairing; returns the manifest entry. */
export async function importHsmKey(o: ImportHsmKeyOptions): Promise<ByokPairing> {
  needs(o.manifestPath !== '', 'manifestPath is required');
  const plan = planImport(o.keyport, o.hsm.oaepHashes, o.target);
  // The target first: a refused target must not leave a freshly generated HSM key behind.
  await checkTarget(o);
  const hsmKey = await resolveHsmKey(o.keyport, o.hsm, o.hsmKey, o.signal);
  const params = await parametersFor(o, plan);

  const wrapped = await wrapInHsm(
    o.hsm,
    { uri: hsmKey.uri, version: hsmKey.primaryVersion as string },
    params.wrappingPublicKey,
    plan.algorithm,
    o.signal,
  );
  const imported = await o.keyport.importKeyMaterial(
    o.target.uri,
    {
      wrappedMaterial: wrapped,
      algorithm: plan.algorithm,
      ...(params.importToken !== undefined ? { importToken: params.importToken } : {}),
    },
    callOptions(o),
  );

  const pairing: ByokPairing = {
    hsm: hsmObject(hsmKey),
    target: {
      uri: o.target.uri,
      ...(imported.primaryVersion !== undefined ? { version: imported.primaryVersion } : {}),
      scheme: plan.scheme,
      spec: 'AES_256',
      wrappingAlgorithm: plan.algorithm,
    },
    importedAt: new Date().toISOString(),
  };
  await recordPairing(o.manifestPath, pairing);
  return pairing;
}
