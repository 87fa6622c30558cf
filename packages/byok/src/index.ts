export { importHsmKey } from './import-hsm-key.js';
export { hsmToLocalCiphertext, localToHsmCiphertext } from './local-ciphertext.js';
export {
  checkManifest,
  MANIFEST_FORMAT,
  pairingsOf,
  type RecordPairingOptions,
  readManifest,
  recordPairing,
} from './manifest.js';
export { type ImportPlan, PREFERENCE as WRAPPING_PREFERENCE, planImport } from './plan.js';
export {
  hsmToTransitCiphertext,
  transitCiphertextVersion,
  transitToHsmCiphertext,
} from './transit-ciphertext.js';
export type {
  ByokHsmKeyIntent,
  ByokManifest,
  ByokPairing,
  ByokPendingImport,
  ExistingHsmKey,
  HsmKeyExporter,
  ImportHsmKeyOptions,
  ImportTarget,
  NewHsmKey,
  OaepHash,
} from './types.js';
