/**
 * Answers that say "never" rather than "not now": asking again gets the same answer, so each is a
 * typed error that is not retryable, and core asks once. A 501 (the server does not implement the
 * operation) and a 401 challenge naming a resource outside the vault's domain (the server is not
 * the vault the caller configured). keyport's Key Vault server never gives them, so the vault is
 * played in-process (support/stand-in), the SDK's whole pipeline running before it.
 */
import { inspect } from 'node:util';
import { Keyport, UnsupportedError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { mapAzureError } from '../src/index.js';
import { HOST, type StandIn, standIn } from './support/stand-in.js';

const URI = `azurekeyvault://${HOST}/keys/k`;
const TOKEN = 's3cret-token-value';

/** Core with retries on: a retryable answer would be asked up to three times. */
function retrying(vault: StandIn, tokensAsked: { n: number }) {
  const credential = {
    getToken: async () => {
      tokensAsked.n++;
      return { token: TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 };
    },
  };
  return new Keyport({
    providers: [vault.provider({ credential })],
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
  });
}

describe('501 Not Implemented', () => {
  it('is Unsupported (capability operation), not retryable: the vault is asked once', async () => {
    const vault = standIn();
    vault.route = () => ({ status: 501, body: { error: { code: 'NotImplemented', message: 'x' } } });
    const keyport = retrying(vault, { n: 0 });
    try {
      const error = await keyport.describeKey(URI).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnsupportedError);
      expect(error).toMatchObject({ code: 'Unsupported', capability: 'operation', retryable: false });
      expect((error as Error).message).toContain('501');
      expect(vault.requests).toEqual(['GET /keys/k/']);
    } finally {
      await keyport.close();
    }
  });

  it('other 5xx stay Unavailable and retryable', () => {
    for (const statusCode of [500, 502, 503, 504]) {
      expect(mapAzureError({ name: 'RestError', statusCode })).toMatchObject({
        code: 'Unavailable',
        retryable: true,
      });
    }
  });
});

describe("a challenge naming a resource outside the vault's domain", () => {
  const challenge = (resource: string) => ({
    status: 401,
    body: { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } },
    headers: {
      'www-authenticate': `Bearer authorization="https://login.windows.net/tenant", resource="${resource}"`,
    },
  });

  it('is AccessDenied, not retryable, saying what to check; no token is asked for or shown', async () => {
    const vault = standIn();
    vault.route = () => challenge('https://vault.example.net');
    const tokensAsked = { n: 0 };
    const keyport = retrying(vault, tokensAsked);
    try {
      const error = await keyport.describeKey(URI).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'AccessDenied', retryable: false, provider: 'azurekeyvault' });
      const message = (error as Error).message;
      expect(message).toContain('vaultUrl');
      expect(message).toContain('disableChallengeResourceVerification');
      // One request, the unauthenticated one the challenge answered; never retried.
      expect(vault.requests).toEqual(['GET /keys/k/']);
      expect(tokensAsked.n).toBe(0);
      expect(inspect(error, { depth: 8 })).not.toContain(TOKEN);
    } finally {
      await keyport.close();
    }
  });

  it("a challenge naming the vault's own domain still authenticates", async () => {
    const vault = standIn();
    let challenged = 0;
    vault.route = () => (challenged++ === 0 ? challenge('https://vault.azure.net') : undefined);
    const tokensAsked = { n: 0 };
    const keyport = retrying(vault, tokensAsked);
    try {
      // Challenged, then asked again with the token: the stand-in has no key k.
      await expect(keyport.describeKey(URI)).rejects.toMatchObject({ code: 'NotFound' });
      expect(tokensAsked.n).toBe(1);
    } finally {
      await keyport.close();
    }
  });
});
