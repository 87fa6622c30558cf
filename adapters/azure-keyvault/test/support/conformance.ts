/** Fixtures shared by the two conformance runs (a Key Vault and a Managed HSM). */
import { type ConformanceFixtures, uniqueKeyNames } from '@keyport/conformance';
import type { KeyRef } from '@keyport/core';
import type { AzureKeyVaultServer } from '@keyport/test-servers';
import type { AzureKeyVaultProvider } from '../../src/index.js';
import { PROOFS } from '../proofs.js';
import { hostOf } from './server.js';

export function conformanceFixtures(
  hint: string,
  server: () => AzureKeyVaultServer,
  provider: () => AzureKeyVaultProvider,
  keySpecs: ConformanceFixtures['keySpecs'],
): ConformanceFixtures {
  return {
    keyName: uniqueKeyNames(`conf-${hint}`),
    missingKeyUri: () => `azurekeyvault://${hostOf(server())}/keys/missing-${Date.now().toString(36)}`,
    ...(keySpecs !== undefined ? { keySpecs } : {}),
    proofs: PROOFS,
    publicKey: (ref: KeyRef) => provider().getPublicKey(ref, { signal: new AbortController().signal }),
    concurrency: 16,
  };
}
