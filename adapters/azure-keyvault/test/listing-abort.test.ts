/**
 * An abort during a listing's later page: the HTTP request for that page is cancelled (its socket
 * destroyed, no answer read), not just left behind while the listing's promise rejects. The SDK
 * sends a page after the first (its nextLink) with no options, so this holds only if keyport gives
 * that request the caller's signal. Against keyport's Key Vault server, which holds the page (its
 * injected latency); the client's requests are watched through Node's http diagnostics channels.
 */

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { KeyClient } from '@azure/keyvault-keys';
import { Keyport } from '@keyport/core';
import type { AzureKeyVaultServer } from '@keyport/test-servers';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { AzureKeyVaultProvider } from '../src/index.js';
import {
  clientOptions,
  providerFor,
  startServer,
  staticToken,
  TOKENS,
  uniqueName,
} from './support/server.js';

/** How long the server holds the later page: longer than the test waits for the cancellation. */
const HELD_MS = 2_000;

let server: AzureKeyVaultServer;
beforeAll(async () => {
  server = await startServer('vault');
  const keyport = new Keyport({ providers: [providerFor(server)], retry: { maxAttempts: 1 } });
  // Two keys, listed one per page: the second page is a nextLink request.
  for (const hint of ['first', 'second']) {
    await keyport.createKey('azurekeyvault', { name: uniqueName(hint), spec: 'RSA_2048' });
  }
  await keyport.close();
});
afterEach(() => server.faults.clear());
afterAll(() => server.stop());

interface Watched {
  readonly request: ClientRequest;
  responded: boolean;
  readonly closed: Promise<void>;
}

/** The client requests for a listing's later pages (their URL carries the server's `$skiptoken`). */
function watchPageRequests(): { readonly seen: Watched[]; stop(): void } {
  const seen: Watched[] = [];
  const onStart = (message: unknown) => {
    const { request } = message as { request: ClientRequest };
    if (!request.path.includes('skiptoken')) return;
    const watched: Watched = {
      request,
      responded: false,
      closed: new Promise((resolve) => request.once('close', () => resolve())),
    };
    request.once('response', () => {
      watched.responded = true;
    });
    seen.push(watched);
  };
  subscribe('http.client.request.start', onStart);
  return { seen, stop: () => unsubscribe('http.client.request.start', onStart) };
}

const until = async (check: () => boolean, ms: number) => {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 10));
};

it.each([
  ['a KeyClient keyport builds', () => providerFor(server)],
  [
    'a caller-built KeyClient',
    () =>
      new AzureKeyVaultProvider({
        keyClient: new KeyClient(server.url, staticToken(TOKENS.admin), {
          ...clientOptions(server.caFile),
          retryOptions: { maxRetries: 0 },
        }),
        credential: staticToken(TOKENS.admin),
        clientOptions: clientOptions(server.caFile),
        vaultKind: 'vault',
      }),
  ],
])('an abort during a later page cancels its HTTP request (%s)', { timeout: 15_000 }, async (_, make) => {
  const keyport = new Keyport({ providers: [make()], retry: { maxAttempts: 1 } });
  const watch = watchPageRequests();
  const controller = new AbortController();
  try {
    const listing = keyport
      .listKeys('azurekeyvault', { signal: controller.signal, pageSize: 1 })
      [Symbol.asyncIterator]();
    expect((await listing.next()).done).toBe(false);
    // The first page is in; the server now holds every answer, the next page's among them.
    server.faults.set({ latencyMs: HELD_MS });
    const next = listing.next();
    next.catch(() => {});
    await until(() => watch.seen.length > 0, HELD_MS / 2);
    expect(watch.seen).toHaveLength(1);
    const held = watch.seen[0] as Watched;

    const aborted = Date.now();
    controller.abort();
    await expect(next).rejects.toMatchObject({ code: 'Aborted' });
    // Cancelled: the request's socket is destroyed at once, well before the server would answer.
    const closedInTime = await Promise.race([
      held.closed.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), HELD_MS / 2)),
    ]);
    expect(closedInTime).toBe(true);
    expect(Date.now() - aborted).toBeLessThan(HELD_MS);
    expect(held.request.destroyed).toBe(true);
    // And once the server has answered, nothing was read: the answer never reached the client.
    await new Promise((resolve) => setTimeout(resolve, HELD_MS + 200));
    expect(held.responded).toBe(false);
  } finally {
    watch.stop();
    await keyport.close();
  }
});
