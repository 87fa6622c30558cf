import type { Capabilities } from '../../src/index.js';

/** What the fake drivers of core's tests declare: AES keys with native context and data keys, nothing else. */
export const AES_ONLY_CAPABILITIES: Capabilities = {
  keySpecs: { AES_256: ['encrypt_decrypt'] },
  context: 'native',
  dataKeys: 'native',
  listKeys: true,
  rotation: 'none',
  autoRotation: false,
  enableDisable: false,
  scheduledDeletion: 'none',
  destroyVersion: false,
  grants: 'none',
  grantExpiry: 'none',
  grantConstraints: false,
  import: [],
  signingAlgorithms: [],
};
