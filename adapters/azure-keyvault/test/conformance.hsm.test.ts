/**
 * The shared suite against keyport's Key Vault server in Managed HSM mode: oct-HSM AES-256 keys
 * (AES-GCM at the HSM with the context as native AAD, data keys, envelope), RSA-HSM and EC-HSM.
 */
import { MANAGED_HSM_CAPABILITIES } from '../src/index.js';
import { describeAzureConformance } from './support/conformance.js';

describeAzureConformance({
  mode: 'hsm',
  name: 'azure-keyvault (keyport Key Vault server, Managed HSM mode)',
  capabilities: MANAGED_HSM_CAPABILITIES,
  keySpecs: ['AES_256', 'RSA_2048', 'EC_P384'],
});
