/** The shared suite against keyport's Key Vault server, for one vault kind per call. */
import { type ConformanceFixtures, describeProviderConformance, uniqueKeyNames } from '@keyport/conformance';
import type { Capabilities, KeyRef } from '@keyport/core';
import type { AzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, beforeAll } from 'vitest';
import type { AzureKeyVaultProvider } from '../../src/index.js';
import { PROOFS } from '../proofs.js';
import { hostOf, type Mode, providerFor, startServer } from './server.js';

const need = <T>(v: T | undefined, what: string): T => {
  if (v === undefined) throw new Error(`${what} is not ready`);
  return v;
};

/** Starts a server in `mode` for the file and registers the whole suite against it. */
export function describeAzureConformance(options: {
  mode: Mode;
  name: string;
  capabilities: Capabilities;
  keySpecs: ConformanceFixtures['keySpecs'];
}): void {
  let server: AzureKeyVaultServer | undefined;
  let provider: AzureKeyVaultProvider | undefined;
  beforeAll(async () => {
    server = await startServer(options.mode);
  });
  afterAll(async () => {
    await server?.stop();
  });
  describeProviderConformance({
    name: options.name,
    provider: {
      capabilities: options.capabilities,
      open: () => {
        provider = providerFor(need(server, 'the server'));
        return provider;
      },
    },
    fixtures: {
      keyName: uniqueKeyNames(`conf-${options.mode === 'hsm' ? 'h' : 'v'}`),
      missingKeyUri: () =>
        `azurekeyvault://${hostOf(need(server, 'the server'))}/keys/missing-${Date.now().toString(36)}`,
      ...(options.keySpecs !== undefined ? { keySpecs: options.keySpecs } : {}),
      proofs: PROOFS,
      publicKey: (ref: KeyRef) =>
        need(provider, 'the provider').getPublicKey(ref, { signal: new AbortController().signal }),
      concurrency: 16,
    },
  });
}
