/**
 * createKey whose answer is lost (the connection drops after Cloud KMS made the key, or the
 * attempt times out while it makes it): the retry, core's or the caller's own, meets
 * ALREADY_EXISTS for that very key and must answer with it; a key someone else made, before
 * the first attempt or to another request, stays AlreadyExists. Against the Cloud KMS gRPC test
 * server; answers are lost by a gRPC call-invocation transformer (after the server handled the
 * call) or by the server's latency fault with a short caller deadline.
 */
import { type CallProperties, Metadata, status } from '@grpc/grpc-js';
import { type AuditEvent, Keyport, KeyportError } from '@keyport/core';
import type { CloudKmsServer } from '@keyport/test-servers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { GcpKmsProvider } from '../src/index.js';
import { grpcProvider, signal, startServer } from './support/targets.js';

const KEY_RING = 'projects/keyport-create-retry/locations/global/keyRings/lost';
const CREATE = '/google.cloud.kms.v1.KeyManagementService/CreateCryptoKey';

let server: CloudKmsServer;
/** How many CreateCryptoKey answers still to lose, and the most ever in flight at once. */
const wire = { loseNext: 0, inFlight: 0, maxInFlight: 0 };
let provider: GcpKmsProvider;
/** Someone else: another provider (another process, say) on the same key ring. */
let other: GcpKmsProvider;

/**
 * Wraps each CreateCryptoKey's callback: counts calls in flight and, when armed, replaces the
 * server's answer (after the server handled the call) with what a dropped connection gives.
 */
function observeCreates(props: CallProperties<unknown, unknown>): CallProperties<unknown, unknown> {
  const callback = props.callback;
  if (props.methodDefinition.path !== CREATE || callback === undefined) return props;
  wire.inFlight++;
  wire.maxInFlight = Math.max(wire.maxInFlight, wire.inFlight);
  return {
    ...props,
    callback: (error, value) => {
      wire.inFlight--;
      if (wire.loseNext > 0) {
        wire.loseNext--;
        const lost = Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), {
          code: status.UNAVAILABLE,
          details: 'Connection dropped',
          metadata: new Metadata(),
        });
        callback(lost);
        return;
      }
      if (error) callback(error);
      else callback(null, value);
    },
  };
}

beforeAll(async () => {
  server = await startServer();
  provider = grpcProvider(server, {
    keyRing: KEY_RING,
    clientOptions: { 'grpc.callInvocationTransformer': observeCreates },
  });
  other = grpcProvider(server, { keyRing: KEY_RING });
  // The ring exists from here on: each test's first RPC is the CreateCryptoKey it is about.
  await other.createKey({ name: 'ring-maker', spec: 'AES_256' }, signal());
});
afterEach(() => {
  server.faults.clear();
  Object.assign(wire, { loseNext: 0, inFlight: 0, maxInFlight: 0 });
});
afterAll(async () => {
  await provider.close();
  await other.close();
  await server.stop();
});

function keyport(events: AuditEvent[] = []): Keyport {
  return new Keyport({
    providers: [provider],
    retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20 },
    audit: [{ write: (e) => void events.push(e) }],
  });
}

const uriOf = (name: string) => `gcp-kms://${KEY_RING}/cryptoKeys/${name}`;

describe('createKey whose answer was lost', () => {
  it("core's retry answers with the key its first attempt made, not AlreadyExists", async () => {
    const events: AuditEvent[] = [];
    wire.loseNext = 1;
    const key = await keyport(events).createKey('gcp-kms', {
      name: 'lost-by-core',
      spec: 'AES_256',
      labels: { team: 'billing' },
    });
    expect(wire.loseNext).toBe(0); // the first answer was lost
    expect(key).toMatchObject({ uri: uriOf('lost-by-core'), spec: 'AES_256', labels: { team: 'billing' } });
    expect(events.find((e) => e.op === 'createKey')).toMatchObject({ outcome: 'success', attempts: 2 });
  });

  it("the caller's own retry after a timed-out attempt answers with that attempt's key", async () => {
    // The server makes the key after the caller stopped waiting.
    server.faults.set({ latencyMs: 300, methods: ['CreateCryptoKey'] });
    const request = { name: 'lost-by-timeout', spec: 'EC_P256' as const, labels: { env: 'test' } };
    const first = await provider
      .createKey(request, { signal: AbortSignal.timeout(50) })
      .catch((e: unknown) => e);
    expect(first).toBeInstanceOf(KeyportError);
    expect(first).not.toMatchObject({ code: 'AlreadyExists' });
    await until(async () => (await other.describeKey({ uri: uriOf(request.name) }, signal())) !== undefined);
    server.faults.clear();
    const key = await provider.createKey(request, signal());
    expect(key).toMatchObject({
      uri: uriOf(request.name),
      spec: 'EC_P256',
      usage: 'sign_verify',
      state: 'enabled',
    });
    expect(key.primaryVersion).toBe('1');
  });

  it('a key of that name someone else made before the first attempt stays AlreadyExists', async () => {
    // Made a minute "ago" by the server's clock: well before our attempt, beyond any clock skew.
    server.clock.set(new Date(Date.now() - 60_000));
    await other.createKey({ name: 'taken-before', spec: 'AES_256' }, signal());
    server.clock.set(new Date());
    wire.loseNext = 1; // our first attempt's ALREADY_EXISTS is lost; the retry sees it again
    const error = await keyport()
      .createKey('gcp-kms', { name: 'taken-before', spec: 'AES_256' })
      .catch((e: unknown) => e);
    expect(wire.loseNext).toBe(0);
    expect(error).toMatchObject({ code: 'AlreadyExists', keyUri: uriOf('taken-before') });
  });

  it('a key made meanwhile by someone else to another request stays AlreadyExists', async () => {
    // Our attempt never reaches the handler (the connection drops first); someone else's does.
    server.faults.set({ dropNext: 1, methods: ['CreateCryptoKey'] });
    const request = { name: 'taken-meanwhile', spec: 'AES_256' as const };
    await expect(provider.createKey(request, signal())).rejects.toMatchObject({ code: 'Unavailable' });
    await other.createKey({ name: 'taken-meanwhile', spec: 'HMAC_256' }, signal());
    await expect(provider.createKey(request, signal())).rejects.toMatchObject({ code: 'AlreadyExists' });
  });

  it('concurrent creates of one name in one provider go one at a time', async () => {
    server.faults.set({ latencyMs: 100, methods: ['CreateCryptoKey'] });
    const request = { name: 'concurrent', spec: 'AES_256' as const };
    const results = await Promise.allSettled([
      provider.createKey(request, signal()),
      provider.createKey(request, signal()),
    ]);
    expect(wire.maxInFlight).toBe(1);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const refused = results.find((r) => r.status === 'rejected');
    expect(refused?.reason).toMatchObject({ code: 'AlreadyExists' });
  });
});

/** Polls `check` (errors count as not yet) until it holds, for at most two seconds. */
async function until(check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 2_000;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('the condition did not hold within two seconds');
}
