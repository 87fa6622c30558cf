/**
 * Who proves each capability of the Azure Key Vault adapter: keyport's own Key Vault server
 * (no third-party emulator can be installed here), for the README's capability matrix.
 */
import type { ProofTable } from '@keyport/conformance';

export const AZURE_SERVER_PROOF = {
  kind: 'keyport-test-server',
  name: 'keyport Azure Key Vault server',
} as const;

export const PROOFS: ProofTable = { default: AZURE_SERVER_PROOF };

/** Rows for renderCapabilityMatrix: one per vault kind. */
export { KEY_VAULT_CAPABILITIES, MANAGED_HSM_CAPABILITIES } from '../src/index.js';
