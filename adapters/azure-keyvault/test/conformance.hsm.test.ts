/**
 * The shared suite against keyport's Key Vault server in Managed HSM mode: oct-HSM AES-256 keys
 * (AES-GCM at the HSM with the context as native AAD, data keys, envelope), RSA-HSM and EC-HSM.
 */
import { describeProviderConformance } from '@keyport/conformance';
import type { AzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, beforeAll } from 'vitest';
import { type AzureKeyVaultProvider, MANAGED_HSM_CAPABILITIES } from '../src/index.js';
import { conformanceFixtures } from './support/conformance.js';
import { providerFor, startServer } from './support/server.js';

let server: AzureKeyVaultServer | undefined;
let provider: AzureKeyVaultProvider | undefined;
beforeAll(async () => {
  server = await startServer('hsm');
});
afterAll(async () => {
  await server?.stop();
});
const need = <T>(v: T | undefined, what: string): T => {
  if (v === undefined) throw new Error(`${what} is not ready`);
  return v;
};

describeProviderConformance({
  name: 'azure-keyvault (keyport Key Vault server, Managed HSM mode)',
  provider: {
    capabilities: MANAGED_HSM_CAPABILITIES,
    open: () => {
      provider = providerFor(need(server, 'the server'));
      return provider;
    },
  },
  fixtures: conformanceFixtures(
    'h',
    () => need(server, 'the server'),
    () => need(provider, 'the provider'),
    ['AES_256', 'RSA_2048', 'EC_P384'],
  ),
});
