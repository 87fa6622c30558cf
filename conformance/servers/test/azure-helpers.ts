// Shared test plumbing: the official SDK clients pointed at a test server, trusting its CA for
// this process only (an https.Agent in the pipeline options, not NODE_EXTRA_CA_CERTS).
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { CryptographyClient, KeyClient } from '@azure/keyvault-keys';
import type { AzureKeyVaultServer } from '../src/azure/index.js';

type TokenCredential = ConstructorParameters<typeof KeyClient>[1];

export function staticToken(token: string): TokenCredential {
  return { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }) };
}

export function sdkOptions(server: AzureKeyVaultServer) {
  return {
    agent: new Agent({ ca: readFileSync(server.caFile), keepAlive: false }),
    // The challenge names https://vault.azure.net while the server is 127.0.0.1.
    disableChallengeResourceVerification: true,
    retryOptions: { maxRetries: 0 },
  };
}

export function keyClient(server: AzureKeyVaultServer, token: string): KeyClient {
  return new KeyClient(server.url, staticToken(token), sdkOptions(server));
}

/** A CryptographyClient over a key id; with a token lacking `get` it can only call the server. */
export function cryptoClient(server: AzureKeyVaultServer, keyId: string, token: string): CryptographyClient {
  return new CryptographyClient(keyId, staticToken(token), sdkOptions(server));
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/** A bare HTTPS call, for what the SDK hides (challenge, api-version, wire shapes). */
export function raw(
  server: AzureKeyVaultServer,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown } = {},
): Promise<RawResponse> {
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = request(
      `${server.url}${path}`,
      {
        method,
        ca: readFileSync(server.caFile),
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(payload ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
          });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The status and service error code of a rejected SDK call. */
export async function failure(
  p: Promise<unknown>,
): Promise<{ status: number | undefined; code: string | undefined; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { statusCode?: number; code?: string; message?: string };
    return { status: err.statusCode, code: err.code, message: err.message ?? '' };
  }
  throw new Error('expected the call to fail');
}

export const ADMIN = 'token-admin';
export const CRYPTO_ONLY = 'token-crypto-only';
export const READER = 'token-reader';

/** Principals used across the tests: an admin, a crypto user without `get`, a reader. */
export const PRINCIPALS = {
  [ADMIN]: 'all',
  [CRYPTO_ONLY]: ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey', 'sign', 'verify'],
  [READER]: ['get', 'list'],
} as const;
