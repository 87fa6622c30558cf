/**
 * The shared suite against keyport's Key Vault server in vault mode: RSA and EC keys. The vault
 * has no symmetric keys, so the suite's context and data-key topics (AES_256 only) do not run
 * here: the emulated context on RSA keys is proven in emulated-context.test.ts.
 */
import { KEY_VAULT_CAPABILITIES } from '../src/index.js';
import { describeAzureConformance } from './support/conformance.js';

describeAzureConformance({
  mode: 'vault',
  name: 'azure-keyvault (keyport Key Vault server, vault mode)',
  capabilities: KEY_VAULT_CAPABILITIES,
  // RSA_3072/4096 take the RSA_2048 code path and cost seconds per key; keys.test.ts creates one of each.
  keySpecs: ['RSA_2048', 'EC_P256', 'EC_P384'],
});
