/**
 * `importHsmKey`: a key born in the HSM becomes a key of AWS KMS, Vault/OpenBao transit or the
 * local keystore, and the pairing is recorded. Every check that can fail runs before the target
 * is changed, so a refusal leaves nothing imported half-way:
 *
 *   1. plan      algorithm + route from the target's capabilities and the HSM's OAEP hashes
 *   2. HSM key   generate (exportable AES_256) or check the given one
 *   3. target    must be pending_import (or, for transit-direct, must not exist) and AES_256
 *   4. params    fetched through Keyport (or given); algorithm and expiry checked
 *   5. wrap      inside the HSM (C_WrapKey); only wrapped bytes leave the token
 *   6. import    Keyport importKeyMaterial (or transit's import with hash_function)
 *   7. record    the manifest, replaced atomically
 */
import { type ImportParameters, type KeyInfo, KeyportError, needs } from '@keyport/core';
import { hsmObject, resolveHsmKey, wrapInHsm } from './hsm-key.js';
import { recordPairing } from './manifest.js';
import { type ImportPlan, oaepHashOf, planImport } from './plan.js';
import {
  assertTransitKeyAbsent,
  type TransitKeyPath,
  transitImport,
  transitKeyPath,
  transitLatestVersion,
  transitWrappingKey,
} from './transit-direct.js';
import type { ByokPairing, ImportHsmKeyOptions } from './types.js';

const fail = (code: 'InvalidArgument' | 'KeyStateConflict', message: string, keyUri: string) =>
  new KeyportError(code, message, { provider: 'byok', keyUri });

async function checkKeyportTarget(o: ImportHsmKeyOptions): Promise<KeyInfo> {
  const info = await o.keyport.describeKey(o.target.uri, o.signal === undefined ? {} : { signal: o.signal });
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

async function parametersFor(o: ImportHsmKeyOptions, plan: ImportPlan, transit: TransitKeyPath | undefined) {
  let params: ImportParameters;
  if (o.importParameters !== undefined) {
    params = o.importParameters;
  } else if (transit !== undefined && o.target.transit !== undefined) {
    const wrappingPublicKey = await transitWrappingKey(o.target.transit, transit, o.signal);
    params = { keyUri: o.target.uri, algorithm: plan.algorithm, wrappingPublicKey };
  } else {
    params = await o.keyport.getImportParameters(
      o.target.uri,
      { algorithm: plan.algorithm },
      o.signal === undefined ? {} : { signal: o.signal },
    );
  }
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
  const transit = plan.route === 'transit-direct' ? transitKeyPath(o.target.uri) : undefined;

  // The target first: a refused target must not leave a freshly generated HSM key behind.
  if (transit !== undefined && o.target.transit !== undefined) {
    await assertTransitKeyAbsent(o.target.transit, transit, o.signal);
  } else {
    await checkKeyportTarget(o);
  }
  const hsmKey = await resolveHsmKey(o.keyport, o.hsm, o.hsmKey, o.signal);
  const params = await parametersFor(o, plan, transit);

  const wrapped = await wrapInHsm(
    o.hsm,
    { uri: hsmKey.uri, version: hsmKey.primaryVersion as string },
    params.wrappingPublicKey,
    plan.algorithm,
    o.signal,
  );

  let targetVersion: string | undefined;
  if (transit !== undefined && o.target.transit !== undefined) {
    await transitImport(o.target.transit, transit, wrapped, oaepHashOf(plan.algorithm), o.signal);
    targetVersion = await transitLatestVersion(o.target.transit, transit, o.signal);
  } else {
    const imported = await o.keyport.importKeyMaterial(
      o.target.uri,
      {
        wrappedMaterial: wrapped,
        algorithm: plan.algorithm,
        ...(params.importToken !== undefined ? { importToken: params.importToken } : {}),
      },
      o.signal === undefined ? {} : { signal: o.signal },
    );
    targetVersion = imported.primaryVersion;
  }

  const pairing: ByokPairing = {
    hsm: hsmObject(hsmKey),
    target: {
      uri: o.target.uri,
      ...(targetVersion !== undefined ? { version: targetVersion } : {}),
      scheme: plan.scheme,
      spec: 'AES_256',
      wrappingAlgorithm: plan.algorithm,
      route: plan.route,
    },
    importedAt: new Date().toISOString(),
  };
  await recordPairing(o.manifestPath, pairing);
  return pairing;
}
