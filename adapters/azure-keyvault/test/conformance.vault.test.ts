/**
 * The shared suite against keyport's Key Vault server in vault mode: RSA and EC keys. The vault
 * has no symmetric keys, so the suite's context and data-key topics (AES_256 only) do not run
 * here: the emulated context on RSA keys is proven in emulated-context.test.ts.
 */
import { describeProviderConformance } from '@keyport/conformance';
import type { AzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, beforeAll } from 'vitest';
import { type AzureKeyVaultProvider, KEY_VAULT_CAPABILITIES } from '../src/index.js';
import { conformanceFixtures } from './support/conformance.js';
import { providerFor, startServer } from './support/server.js';

let server: AzureKeyVaultServer | undefined;
let provider: AzureKeyVaultProvider | undefined;
beforeAll(async () => {
  server = await startServer('vault');
});
afterAll(async () => {
  await server?.stop();
});
const need = <T>(v: T | undefined, what: string): T => {
  if (v === undefined) throw new Error(`${what} is not ready`);
  return v;
};

describeProviderConformance({
  name: 'azure-keyvault (keyport Key Vault server, vault mode)',
  provider: {
    capabilities: KEY_VAULT_CAPABILITIES,
    open: () => {
      provider = providerFor(need(server, 'the server'));
      return provider;
    },
  },
  // RSA_3072/4096 take the RSA_2048 code path and cost seconds per key; keys.test.ts creates one of each.
  fixtures: conformanceFixtures(
    'v',
    () => need(server, 'the server'),
    () => need(provider, 'the provider'),
    ['RSA_2048', 'EC_P256', 'EC_P384'],
  ),
});
