export { importHsmKey } from './import-hsm-key.js';
export { MANIFEST_FORMAT, pairingsOf, readManifest, recordPairing } from './manifest.js';
export { type ImportPlan, PREFERENCE as WRAPPING_PREFERENCE, planImport } from './plan.js';
export {
  hsmToTransitCiphertext,
  transitCiphertextVersion,
  transitToHsmCiphertext,
} from './transit-ciphertext.js';
export type {
  ByokManifest,
  ByokPairing,
  ExistingHsmKey,
  HsmKeyExporter,
  ImportHsmKeyOptions,
  ImportRoute,
  ImportTarget,
  NewHsmKey,
  OaepHash,
  TransitDirectOptions,
} from './types.js';
