/**
 * The waits of long-running operations (a deletion, a recovery): Key Vault answers the DELETE at
 * once and finishes later, and the adapter polls until it is done. An abort or a deadline ends
 * the wait when it fires, with core's Aborted or Timeout, not when the poll interval ends (the
 * SDK's own wait between polls takes no signal). And what a deletion ends with is the key asked
 * for. Against a vault played in-process (support/stand-in).
 */
import { Keyport, type KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { bundle, deletedBundle, HOST, standIn } from './support/stand-in.js';

const URI = `azurekeyvault://${HOST}/keys/k`;
/** Far longer than any test waits: a wait that ignores the signal shows as still pending. */
const POLL_INTERVAL_MS = 600_000;

/** How a promise stands `ms` after it was made: settled with a value or error, or still pending. */
async function after<T>(ms: number, promise: Promise<T>) {
  const started = performance.now();
  const pending = Symbol('pending');
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    promise.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    new Promise<typeof pending>((resolve) => {
      timer = setTimeout(() => resolve(pending), ms);
    }),
  ]);
  clearTimeout(timer);
  return { outcome, ms: performance.now() - started, pending: outcome === pending };
}

/** Lets requests already on their way be answered: what is sent after this is a later poll. */
const settled = () => new Promise((resolve) => setTimeout(resolve, 50));

/** A vault whose deletion of `k` is answered and then stays pending (the deleted key not yet readable). */
function pendingDeletion() {
  const vault = standIn();
  vault.route = (url, method) => {
    if (method === 'DELETE' && url.pathname === '/keys/k') return { body: deletedBundle('k') };
    if (method === 'GET' && /^\/keys\/k\/?$/.test(url.pathname)) return { body: bundle('k') };
    return undefined; // GET /deletedkeys/k: 404, not yet deleted
  };
  return vault;
}

/** A vault where `k` is deleted and its recovery is answered and then stays pending. */
function pendingRecovery() {
  const vault = standIn();
  vault.route = (url, method) => {
    if (method === 'GET' && url.pathname === '/deletedkeys/k') return { body: deletedBundle('k') };
    if (method === 'POST' && url.pathname === '/deletedkeys/k/recover') return { body: bundle('k') };
    return undefined; // GET /keys/k: 404, not yet recovered
  };
  return vault;
}

describe('a deletion or recovery the vault has not finished', () => {
  it('the driver ends its wait when the caller aborts: Aborted, at once, and no poll after', async () => {
    const vault = pendingDeletion();
    const provider = vault.provider({ pollIntervalMs: POLL_INTERVAL_MS });
    const controller = new AbortController();
    const deleting = provider.scheduleKeyDeletion({ uri: URI }, {}, { signal: controller.signal });
    // The DELETE is answered and the first poll (a GET of the deleted key) made: the poller waits.
    await expect.poll(() => vault.requests).toContain('GET /deletedkeys/k');
    await settled();
    const polls = vault.requests.length;
    controller.abort();
    const { outcome, pending, ms } = await after(2_000, deleting);
    expect(pending).toBe(false);
    expect(ms).toBeLessThan(1_000);
    expect((outcome as { error?: KeyportError }).error).toMatchObject({ code: 'Aborted' });
    expect(vault.requests).toHaveLength(polls);
    await provider.close();
  });

  it('the driver ends a recovery wait when the caller aborts', async () => {
    const vault = pendingRecovery();
    const provider = vault.provider({ pollIntervalMs: POLL_INTERVAL_MS });
    const controller = new AbortController();
    const recovering = provider.cancelKeyDeletion({ uri: URI }, { signal: controller.signal });
    await expect.poll(() => vault.requests).toContain('POST /deletedkeys/k/recover');
    // The SDK reads the key before and after the POST: the second read is the first poll.
    await expect
      .poll(() => vault.requests.filter((r) => /^GET \/keys\/k\/?$/.test(r)).length)
      .toBeGreaterThanOrEqual(2);
    await settled();
    const polls = vault.requests.length;
    controller.abort();
    const { outcome, pending } = await after(2_000, recovering);
    expect(pending).toBe(false);
    expect((outcome as { error?: KeyportError }).error).toMatchObject({ code: 'Aborted' });
    expect(vault.requests).toHaveLength(polls);
    await provider.close();
  });

  it("through a Keyport, the call's deadline ends the wait: Timeout, and the driver's work ends too", async () => {
    const vault = pendingDeletion();
    const keyport = new Keyport({
      providers: [vault.provider({ pollIntervalMs: POLL_INTERVAL_MS })],
      retry: { maxAttempts: 1 },
    });
    try {
      const { outcome, pending } = await after(
        3_000,
        keyport.scheduleKeyDeletion(URI, {}, { timeoutMs: 300 }),
      );
      expect(pending).toBe(false);
      expect((outcome as { error?: KeyportError }).error).toMatchObject({ code: 'Timeout' });
      const polls = vault.requests.length;
      // Nothing keeps polling behind the caller's back.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(vault.requests).toHaveLength(polls);
    } finally {
      await keyport.close();
    }
  });

  it('polls every pollIntervalMs until the vault reports the deletion done', async () => {
    const vault = standIn();
    let polls = 0;
    vault.route = (url, method) => {
      if (method === 'DELETE' && url.pathname === '/keys/k') return { body: deletedBundle('k') };
      if (method === 'GET' && url.pathname === '/deletedkeys/k') {
        return ++polls >= 3 ? { body: deletedBundle('k') } : undefined;
      }
      return undefined;
    };
    const keyport = new Keyport({
      providers: [vault.provider({ pollIntervalMs: 5 })],
      retry: { maxAttempts: 1 },
    });
    try {
      const info = await keyport.scheduleKeyDeletion(URI);
      expect(info).toMatchObject({ state: 'pending_deletion' });
      expect(polls).toBe(3);
    } finally {
      await keyport.close();
    }
  });
});

describe('the answer a deletion ends with', () => {
  it('a deletion answered with another key is Internal (saying the delete was sent), never that key', async () => {
    const vault = standIn();
    vault.route = (url, method) => {
      if (method === 'DELETE' && url.pathname === '/keys/k') return { body: deletedBundle('other') };
      if (method === 'GET' && url.pathname === '/deletedkeys/k') return { body: deletedBundle('other') };
      return undefined;
    };
    const keyport = new Keyport({
      providers: [vault.provider({ pollIntervalMs: 5 })],
      retry: { maxAttempts: 1 },
    });
    try {
      const error = await keyport.scheduleKeyDeletion(URI).catch((e: unknown) => e as KeyportError);
      expect(error).toMatchObject({ code: 'Internal', retryable: false });
      expect((error as KeyportError).message).toMatch(/another key/);
      expect((error as KeyportError).message).not.toContain('/keys/other');
    } finally {
      await keyport.close();
    }
  });
});
