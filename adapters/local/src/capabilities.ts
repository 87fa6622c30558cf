import { type Capabilities, USAGES_BY_SPEC } from '@keyport/core';

/** What the local keystore does, as data (checked by core before each call and by the tests). */
export const LOCAL_CAPABILITIES: Capabilities = Object.freeze({
  keySpecs: USAGES_BY_SPEC,
  context: 'native',
  dataKeys: 'native',
  listKeys: true,
  rotation: 'versioned',
  autoRotation: true,
  enableDisable: true,
  scheduledDeletion: 'native',
  destroyVersion: true,
  grants: 'native',
  grantExpiry: 'native',
  grantConstraints: true,
  // SHA-1 too: HSMs such as SoftHSM2 2.6.1 wrap with OAEP SHA-1 only (see import.ts).
  import: ['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'],
  signingAlgorithms: ['RSASSA_PSS_SHA_256', 'ECDSA_SHA_256', 'ECDSA_SHA_384'],
} as const);

/** Waiting period of scheduleKeyDeletion, in whole days. */
export const DELETION_DAYS = { min: 1, max: 365, default: 30 } as const;
/** Automatic rotation period, in whole days. */
export const ROTATION_PERIOD_DAYS = { min: 1, max: 36_500 } as const;
/** How long import parameters (wrapping key + token) stay valid. */
export const IMPORT_PARAMETERS_TTL_MS = 24 * 60 * 60 * 1000;
/** Data key sizes generateDataKey accepts, in bytes: core's one rule. */
export { DATA_KEY_BYTES } from '@keyport/core';
