/**
 * keyport's Key Vault test server, started in-process for a test file, and providers pointed at
 * it. The server's CA is trusted by these clients only (an https.Agent in the SDK options), and
 * challenge-resource verification is turned off here, in test configuration: the challenge names
 * vault.azure.net while the server is 127.0.0.1.
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { KeyClient, type KeyClientOptions } from '@azure/keyvault-keys';
import {
  type AzureKeyPermission,
  type AzureKeyVaultServer,
  DEFAULT_AZURE_TOKEN,
  startAzureKeyVaultServer,
} from '@keyport/test-servers';
import { AzureKeyVaultProvider } from '../../src/index.js';

export type Mode = 'vault' | 'hsm';

/** Tokens the servers accept: the admin, and principals with a few permissions each. */
export const TOKENS = {
  admin: DEFAULT_AZURE_TOKEN,
  encryptOnly: 'token-encrypt-only',
  nobody: 'token-nobody',
} as const;

const PRINCIPALS: Record<string, readonly AzureKeyPermission[] | 'all'> = {
  [TOKENS.admin]: 'all',
  [TOKENS.encryptOnly]: ['wrapKey', 'encrypt', 'get'],
  [TOKENS.nobody]: [],
};

export function staticToken(token: string) {
  return { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }) };
}

export function clientOptions(caFile: string): KeyClientOptions {
  return {
    agent: new Agent({ ca: readFileSync(caFile), keepAlive: true }),
    disableChallengeResourceVerification: true,
  };
}

export function startServer(mode: Mode): Promise<AzureKeyVaultServer> {
  return startAzureKeyVaultServer({ mode, principals: PRINCIPALS, softDeleteRetentionDays: 7 });
}

export function providerFor(
  server: AzureKeyVaultServer,
  token: string = TOKENS.admin,
): AzureKeyVaultProvider {
  return new AzureKeyVaultProvider({
    vaultUrl: server.url,
    credential: staticToken(token),
    clientOptions: clientOptions(server.caFile),
    vaultKind: server.mode === 'hsm' ? 'managedHsm' : 'vault',
    pollIntervalMs: 5,
  });
}

/** A bare SDK client against the same server, for checks made behind the adapter's back. */
export function sdkClient(server: AzureKeyVaultServer): KeyClient {
  return new KeyClient(server.url, staticToken(TOKENS.admin), {
    ...clientOptions(server.caFile),
    retryOptions: { maxRetries: 0 },
  });
}

/** `azurekeyvault://127.0.0.1:<port>` */
export function hostOf(server: AzureKeyVaultServer): string {
  return new URL(server.url).host;
}

export function call(): { signal: AbortSignal } {
  return { signal: new AbortController().signal };
}

let counter = 0;
export function uniqueName(hint: string): string {
  counter++;
  return `kp-${hint.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-${Date.now().toString(36)}-${counter}`;
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
