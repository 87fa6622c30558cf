/**
 * createKey whose answer is lost (the connection drops after Cloud KMS made the key, or the
 * attempt times out while it makes it): the retry, core's or the caller's own, meets
 * ALREADY_EXISTS for that very key and must answer with it; a key someone else made, before
 * the first attempt, to another request or to the same one (it lacks the random create marker
 * our request carried), stays AlreadyExists. Against the Cloud KMS gRPC test
 * server; answers are lost by a gRPC call-invocation transformer (after the server handled the
 * call) or by the server's latency fault with a short caller deadline.
 */
import { type CallProperties, Metadata, status } from '@grpc/grpc-js';
import { type AuditEvent, Keyport, KeyportError } from '@keyport/core';
import type { CloudKmsServer } from '@keyport/test-servers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { GcpKmsProvider } from '../src/index.js';
import { CREATE_MARKER_LABEL } from '../src/keys.js';
import { grpcProvider, signal, startServer } from './support/targets.js';

const KEY_RING = 'projects/keyport-create-retry/locations/global/keyRings/lost';
const CREATE = '/google.cloud.kms.v1.KeyManagementService/CreateCryptoKey';

let server: CloudKmsServer;
/**
 * How many CreateCryptoKey answers still to lose, the most ever in flight at once, and the
 * create marker label each CreateCryptoKey carried.
 */
const wire = { loseNext: 0, inFlight: 0, maxInFlight: 0, markers: [] as (string | undefined)[] };
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
  const sent = props.argument as { cryptoKey?: { labels?: Record<string, string> } };
  wire.markers.push(sent.cryptoKey?.labels?.[CREATE_MARKER_LABEL]);
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
  Object.assign(wire, { loseNext: 0, inFlight: 0, maxInFlight: 0, markers: [] });
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

  it('a key another provider instance made to the same request after our attempt was sent stays AlreadyExists', async () => {
    // Our attempt never reaches the handler; someone else (another instance: its own marker) makes
    // a key of the very shape we asked for, seconds later, well within any clock-skew allowance.
    server.faults.set({ dropNext: 1, methods: ['CreateCryptoKey'] });
    const request = { name: 'taken-same-shape', spec: 'AES_256' as const, labels: { team: 'billing' } };
    await expect(provider.createKey(request, signal())).rejects.toMatchObject({ code: 'Unavailable' });
    await other.createKey(request, signal());
    await expect(provider.createKey(request, signal())).rejects.toMatchObject({
      code: 'AlreadyExists',
      keyUri: uriOf(request.name),
    });
  });

  it('a key another principal made to the same request without any marker stays AlreadyExists', async () => {
    server.faults.set({ dropNext: 1, methods: ['CreateCryptoKey'] });
    const request = { name: 'taken-unmarked', spec: 'AES_256' as const };
    await expect(provider.createKey(request, signal())).rejects.toMatchObject({ code: 'Unavailable' });
    const kms = await other.client();
    await kms.createCryptoKey({
      parent: KEY_RING,
      cryptoKeyId: request.name,
      cryptoKey: {
        purpose: 'ENCRYPT_DECRYPT',
        versionTemplate: { algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION', protectionLevel: 'SOFTWARE' },
      },
    });
    await expect(provider.createKey(request, signal())).rejects.toMatchObject({ code: 'AlreadyExists' });
  });

  it('every attempt of one request carries one random marker, on the key but never among its labels', async () => {
    wire.loseNext = 1;
    const key = await keyport().createKey('gcp-kms', {
      name: 'marked',
      spec: 'EC_P256',
      labels: { team: 'billing' },
    });
    expect(wire.markers).toHaveLength(2);
    const [marker] = wire.markers;
    expect(marker).toMatch(/^[0-9a-f]{32}$/);
    expect(wire.markers[1]).toBe(marker);
    const [raw] = await (await provider.client()).getCryptoKey({ name: `${KEY_RING}/cryptoKeys/marked` });
    expect(raw.labels).toEqual({ team: 'billing', [CREATE_MARKER_LABEL]: marker });
    expect(key.labels).toEqual({ team: 'billing' });
    expect((await provider.describeKey({ uri: key.uri }, signal())).labels).toEqual({ team: 'billing' });
    const listed = [];
    for await (const k of provider.listKeys(signal())) listed.push(k);
    expect(listed.find((k) => k.uri === key.uri)).toMatchObject({ labels: { team: 'billing' } });
    for (const k of listed)
      if ('labels' in k) expect(Object.keys(k.labels)).not.toContain(CREATE_MARKER_LABEL);
    // Another create draws another marker.
    await provider.createKey({ name: 'marked-too', spec: 'AES_256' }, signal());
    expect(wire.markers[2]).toMatch(/^[0-9a-f]{32}$/);
    expect(wire.markers[2]).not.toBe(marker);
  });

  it('the marker label name is refused as a user label, before any call', async () => {
    const labels = { team: 'billing', [CREATE_MARKER_LABEL]: 'chosen-by-the-caller' };
    await expect(
      provider.createKey({ name: 'reserved', spec: 'AES_256', labels }, signal()),
    ).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining(CREATE_MARKER_LABEL),
    });
    expect(wire.markers).toHaveLength(0);
  });

  it('64 labels (all Cloud KMS holds) are created as given, without a marker', async () => {
    const labels = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`l${i}`, `${i}`]));
    const key = await provider.createKey({ name: 'full-labels', spec: 'AES_256', labels }, signal());
    expect(wire.markers).toEqual([undefined]);
    expect(key.labels).toEqual(labels);
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
