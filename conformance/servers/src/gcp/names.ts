import { invalid } from './rpc-error.js';

// Resource names as the API reference spells them. A malformed name is INVALID_ARGUMENT; a
// well-formed name that names nothing is NOT_FOUND (decided by the caller). Every segment is
// bounded as the service bounds it: ids are [a-zA-Z0-9_-]{1,63} (key rings, keys, import jobs,
// versions), locations [a-z0-9-]{1,63}, projects an id, a number or a domain-scoped id (at most
// 100 characters), so no name of unbounded length is ever stored or echoed back.
const PROJECT = '[a-z0-9][a-z0-9.:-]{0,99}';
const LOC = '[a-z0-9][a-z0-9-]{0,62}';
const SEGMENT = '[a-zA-Z0-9_-]{1,63}';
const ID = /^[a-zA-Z0-9_-]{1,63}$/;
/** Longer than any valid name: a request naming something longer is refused before any regex runs. */
export const MAX_NAME_LENGTH = 512;
const LOCATION_RE = new RegExp(`^projects/(${PROJECT})/locations/(${LOC})$`);
const KEY_RING_RE = new RegExp(`^projects/${PROJECT}/locations/${LOC}/keyRings/(${SEGMENT})$`);
const CRYPTO_KEY_RE = new RegExp(
  `^(projects/${PROJECT}/locations/${LOC}/keyRings/${SEGMENT})/cryptoKeys/(${SEGMENT})$`,
);
const VERSION_RE = new RegExp(
  `^(projects/${PROJECT}/locations/${LOC}/keyRings/${SEGMENT}/cryptoKeys/${SEGMENT})/cryptoKeyVersions/(${SEGMENT})$`,
);
const IMPORT_JOB_RE = new RegExp(
  `^(projects/${PROJECT}/locations/${LOC}/keyRings/${SEGMENT})/importJobs/(${SEGMENT})$`,
);
const RETIRED_RE = new RegExp(`^(projects/${PROJECT}/locations/${LOC})/retiredResources/(${SEGMENT})$`);

const bounded = (name: string | undefined): name is string =>
  typeof name === 'string' && name.length <= MAX_NAME_LENGTH;

export function checkId(field: string, id: string | undefined): string {
  if (id === undefined || !ID.test(id)) {
    throw invalid(`${field} must match the regular expression [a-zA-Z0-9_-]{1,63}.`);
  }
  return id;
}

export function parseLocation(field: string, name: string | undefined): string {
  if (!bounded(name) || !LOCATION_RE.test(name)) {
    throw invalid(`${field} must be of the form projects/*/locations/*.`);
  }
  return name;
}

export function parseKeyRing(field: string, name: string | undefined): string {
  if (!bounded(name) || !KEY_RING_RE.test(name)) {
    throw invalid(`${field} must be of the form projects/*/locations/*/keyRings/*.`);
  }
  return name;
}

export function parseCryptoKey(field: string, name: string | undefined): { keyRing: string; key: string } {
  const m = !bounded(name) ? null : CRYPTO_KEY_RE.exec(name);
  if (!m) throw invalid(`${field} must be of the form projects/*/locations/*/keyRings/*/cryptoKeys/*.`);
  return { keyRing: m[1]!, key: name! };
}

export function parseVersion(field: string, name: string | undefined): { key: string; versionId: string } {
  const m = !bounded(name) ? null : VERSION_RE.exec(name);
  if (!m) {
    throw invalid(
      `${field} must be of the form projects/*/locations/*/keyRings/*/cryptoKeys/*/cryptoKeyVersions/*.`,
    );
  }
  return { key: m[1]!, versionId: m[2]! };
}

export function parseImportJob(field: string, name: string | undefined): { keyRing: string; job: string } {
  const m = !bounded(name) ? null : IMPORT_JOB_RE.exec(name);
  if (!m) throw invalid(`${field} must be of the form projects/*/locations/*/keyRings/*/importJobs/*.`);
  return { keyRing: m[1]!, job: name! };
}

export function parseRetiredResource(field: string, name: string | undefined): { location: string } {
  const m = !bounded(name) ? null : RETIRED_RE.exec(name);
  if (!m) throw invalid(`${field} must be of the form projects/*/locations/*/retiredResources/*.`);
  return { location: m[1]! };
}

/** Encrypt takes a CryptoKey or a CryptoKeyVersion name. */
export function parseKeyOrVersion(
  field: string,
  name: string | undefined,
): { key: string; versionId: string | undefined } {
  if (bounded(name) && VERSION_RE.test(name)) return parseVersion(field, name);
  const { key } = parseCryptoKey(field, name);
  return { key, versionId: undefined };
}

/** The key ring that holds a key, version or import job name (for IAM inheritance). */
export function keyRingOf(name: string): string | undefined {
  const m = /^(projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+)(\/|$)/.exec(name);
  return m?.[1];
}

export function projectOf(name: string): string | undefined {
  return /^projects\/([^/]+)/.exec(name)?.[1];
}
