import { describe, expect, it } from 'vitest';
import {
  AuditFailure,
  Keyport,
  KeyportError,
  type KmsProvider,
  MemoryAuditSink,
  parseKeyRef,
  UnsupportedError,
  withKeyVersion,
} from '../src/index.js';
import { AES_ONLY_CAPABILITIES } from './support/capabilities.js';

const caps = AES_ONLY_CAPABILITIES;

/** A provider whose every method fails unless overridden: it proves core never calls it. */
function provider(overrides: Partial<KmsProvider>): KmsProvider {
  const never = (): never => {
    throw new Error('core should not have called the provider');
  };
  const base = {
    scheme: 'local',
    name: 'local',
    capabilities: caps,
    parseUri: parseKeyRef,
    formatUri: (ref: { uri: string; version?: string }) => withKeyVersion(ref.uri, ref.version),
    mapError: () => undefined,
    close: async () => {},
    // A declaration, not a method: an empty one (the Proxy below answers a function otherwise).
    repeats: {},
  } as unknown as KmsProvider;
  return new Proxy(base, {
    get: (target, prop) =>
      (overrides as Record<string | symbol, unknown>)[prop] ??
      (target as unknown as Record<string | symbol, unknown>)[prop] ??
      never,
  });
}

const uri = 'local://k.kp#a';

describe('Keyport client', () => {
  it('refuses an undeclared capability before calling the provider', async () => {
    const kp = new Keyport({ providers: [provider({})] });
    await expect(kp.rotateKey(uri)).rejects.toBeInstanceOf(UnsupportedError);
    await expect(kp.createGrant(uri, { grantee: 'x', operations: ['decrypt'] })).rejects.toMatchObject({
      code: 'Unsupported',
      capability: 'grants',
      keyUri: uri,
    });
    await expect(kp.sign(uri, new Uint8Array(1))).rejects.toMatchObject({ capability: 'sign' });
  });

  it('refuses a grant on a pinned version before calling the provider: grants cover every version', async () => {
    const kp = new Keyport({
      providers: [{ ...provider({}), capabilities: { ...caps, grants: 'native' } } as KmsProvider],
    });
    for (const key of [`local://k.kp?version=2#a`, { uri, version: '2' }]) {
      await expect(kp.createGrant(key, { grantee: 'x', operations: ['decrypt'] })).rejects.toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringContaining('a grant covers every version of a key'),
      });
    }
  });

  it('routes by scheme and refuses unknown schemes and duplicate registration', async () => {
    const kp = new Keyport({ providers: [provider({})] });
    await expect(kp.encrypt('hcvault://h:1/transit/keys/k', new Uint8Array(1))).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    expect(() => kp.register(provider({}))).toThrow(/already registered/);
  });

  it('maps raw errors once, retries retryable ones and audits one event per operation', async () => {
    let calls = 0;
    const audit = new MemoryAuditSink();
    const kp = new Keyport({
      retry: { baseDelayMs: 1, maxDelayMs: 1 },
      audit: [audit],
      providers: [
        provider({
          encrypt: async () => {
            calls++;
            if (calls < 3) throw Object.assign(new Error('busy'), { status: 429 });
            return { ciphertext: new Uint8Array([1]), keyVersion: '2' };
          },
          mapError: (e) =>
            (e as { status?: number }).status === 429
              ? new KeyportError('Throttled', 'throttled', { requestId: 'req-1', cause: e })
              : undefined,
        }),
      ],
    });
    const r = await kp.encrypt(uri, new Uint8Array([9]), { context: { tenant: 'acme' } });
    expect(r.keyVersion).toBe('2');
    expect(calls).toBe(3);
    expect(audit.events).toHaveLength(1);
    expect(audit.events[0]).toMatchObject({
      op: 'encrypt',
      outcome: 'success',
      attempts: 3,
      keyVersion: '2',
      contextKeys: ['tenant'],
    });
    expect(JSON.stringify(audit.events)).not.toContain('acme');
  });

  it('a sink cannot change the event the sinks after it record: the event is frozen', async () => {
    const after = new MemoryAuditSink();
    const kp = new Keyport({
      onAuditFailure: 'warn',
      onAuditError: () => undefined,
      audit: [
        {
          write(event) {
            (event as { outcome: string }).outcome = 'failure';
            (event.contextKeys as string[]).push('forged');
          },
        },
        after,
      ],
      providers: [provider({ encrypt: async () => ({ ciphertext: new Uint8Array([1]), keyVersion: '1' }) })],
    });
    await kp.encrypt(uri, new Uint8Array([9]), { context: { tenant: 'acme' } });
    expect(after.events).toEqual([expect.objectContaining({ outcome: 'success', contextKeys: ['tenant'] })]);
    expect(Object.isFrozen(after.events[0])).toBe(true);
  });

  it('fills provider and key into errors and audits failures with their code', async () => {
    const audit = new MemoryAuditSink();
    const kp = new Keyport({
      audit: [audit],
      providers: [
        provider({
          decrypt: async () => {
            throw new KeyportError('InvalidCiphertext', 'bad', { requestId: 'r-9' });
          },
        }),
      ],
    });
    const err = await kp.decrypt(uri, new Uint8Array(3)).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'InvalidCiphertext',
      provider: 'local',
      keyUri: uri,
      requestId: 'r-9',
    });
    expect(audit.events[0]).toMatchObject({
      outcome: 'failure',
      errorCode: 'InvalidCiphertext',
      requestId: 'r-9',
    });
  });

  it('lists through an async iterable and audits the listing once', async () => {
    const audit = new MemoryAuditSink();
    const kp = new Keyport({
      audit: [audit],
      providers: [
        provider({
          listKeys: async function* () {
            yield {
              uri: 'local://k.kp#a',
              spec: 'AES_256',
              usage: 'encrypt_decrypt',
              state: 'enabled',
              labels: {},
            };
            yield {
              uri: 'local://k.kp#b',
              spec: 'AES_256',
              usage: 'encrypt_decrypt',
              state: 'enabled',
              labels: {},
            };
          },
        }),
      ],
    });
    const uris: string[] = [];
    for await (const k of kp.listKeys('local')) uris.push(k.uri);
    expect(uris).toEqual(['local://k.kp#a', 'local://k.kp#b']);
    expect(audit.events.map((e) => e.op)).toEqual(['listKeys']);
  });

  it('rejects a ref whose version contradicts its URI', async () => {
    const kp = new Keyport({ providers: [provider({})] });
    await expect(kp.describeKey({ uri: 'local://k.kp?version=2#a', version: '3' })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });

  it("a failing audit sink does not fail the operation with onAuditFailure: 'warn'", async () => {
    const errors: unknown[] = [];
    const kp = new Keyport({
      onAuditFailure: 'warn',
      audit: [
        {
          write: () => {
            throw new Error('disk full');
          },
        },
      ],
      onAuditError: (e) => errors.push(e),
      providers: [provider({ encrypt: async () => ({ ciphertext: new Uint8Array(1), keyVersion: '1' }) })],
    });
    await expect(kp.encrypt(uri, new Uint8Array(1))).resolves.toBeDefined();
    expect(errors).toHaveLength(1);
  });

  it('a driver whose mapError throws or answers a non-KeyportError still fails typed and audited', async () => {
    const mappers: Record<string, () => unknown> = {
      throws: () => {
        throw new Error('mapper bug');
      },
      'answers a string': () => 'Throttled',
      'answers a plain object': () => ({ code: 'Throttled', retryable: true }),
    };
    for (const [what, mapError] of Object.entries(mappers)) {
      const sink = new MemoryAuditSink();
      let calls = 0;
      const kp = new Keyport({
        audit: [sink],
        retry: { maxAttempts: 3, baseDelayMs: 0 },
        providers: [
          provider({
            mapError: mapError as KmsProvider['mapError'],
            encrypt: async () => {
              calls++;
              throw 'PLAINTEXT-SECRET';
            },
          }),
        ],
      });
      const error = await kp.encrypt(uri, new Uint8Array(1)).catch((e: unknown) => e);
      expect(error, what).toBeInstanceOf(KeyportError);
      expect((error as KeyportError).code, what).toBe('Internal');
      expect(JSON.stringify(error), what).not.toContain('PLAINTEXT-SECRET');
      expect(calls, what).toBe(1); // not retried on the mapper's say-so
      expect(
        sink.events.map((e) => [e.outcome, e.errorCode]),
        what,
      ).toEqual([['failure', 'Internal']]);
    }
  });

  it("a sink that never settles holds a call only until the caller's signal aborts it", async () => {
    const hung = { write: () => new Promise<void>(() => {}) };
    const encrypt = async () => ({ ciphertext: new Uint8Array(1), keyVersion: '1' });
    // Fail-closed: the operation ran, its record did not land: AuditFailure, code Aborted.
    const closed = new Keyport({ audit: [hung], providers: [provider({ encrypt })] });
    const error = await closed
      .encrypt(uri, new Uint8Array(1), { signal: AbortSignal.timeout(50) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuditFailure);
    expect(error).toMatchObject({ code: 'Aborted', keyUri: uri, operationError: undefined });
    // 'warn': the result comes back and the failure is reported.
    const told: unknown[] = [];
    const warn = new Keyport({
      audit: [hung],
      onAuditFailure: 'warn',
      onAuditError: (e) => told.push(e),
      providers: [provider({ encrypt })],
    });
    await expect(
      warn.encrypt(uri, new Uint8Array(1), { signal: AbortSignal.timeout(50) }),
    ).resolves.toMatchObject({ keyVersion: '1' });
    expect(told).toEqual([expect.objectContaining({ code: 'Aborted' })]);
    // A sink that answers is never cut off, even when the signal fires while it writes.
    const ac = new AbortController();
    const events: unknown[] = [];
    const quick = new Keyport({
      audit: [
        {
          write: (event) => {
            ac.abort();
            events.push(event);
          },
        },
      ],
      providers: [provider({ encrypt })],
    });
    await expect(quick.encrypt(uri, new Uint8Array(1), { signal: ac.signal })).resolves.toBeDefined();
    expect(events).toHaveLength(1);
  });

  it("a sink that never settles holds a listing only until the caller's signal aborts it", async () => {
    const hung = { write: () => new Promise<void>(() => {}) };
    const kp = new Keyport({
      audit: [hung],
      providers: [
        provider({
          listKeys: async function* () {
            yield {
              uri: 'local://k.kp#a',
              spec: 'AES_256',
              usage: 'encrypt_decrypt',
              state: 'enabled',
              labels: {},
            };
          },
        }),
      ],
    });
    const listAll = async () => {
      for await (const _ of kp.listKeys('local', { signal: AbortSignal.timeout(50) })) {
        // drain
      }
    };
    const error = await listAll().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuditFailure);
    expect(error).toMatchObject({ code: 'Aborted' });
  });
});
