/**
 * Keyport.encryptBatch / decryptBatch over fake providers: the provider's batch method is one
 * request under the call policy (retried as a whole), per-item failures stay per item, every item
 * gets its own audit event, and providers without a batch method get per-item calls.
 */
import { describe, expect, it } from 'vitest';
import {
  AuditFailure,
  type BatchResult,
  type EncryptBatchItem,
  type EncryptResult,
  Keyport,
  KeyportError,
  type KeyRef,
  type KmsProvider,
  MemoryAuditSink,
  type ProviderCallOptions,
  parseKeyRef,
  withKeyVersion,
} from '../src/index.js';
import { AES_ONLY_CAPABILITIES } from './support/capabilities.js';

const caps = AES_ONLY_CAPABILITIES;

const uri = 'local://k.kp#a';
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** "Encrypts" by prefixing; a plaintext "bad" fails alone, ciphertexts without the prefix fail alone. */
function fakeCrypto() {
  const seal = (p: Uint8Array): BatchResult<EncryptResult> =>
    text(p) === 'bad'
      ? { ok: false, error: new KeyportError('InvalidArgument', 'item refused') }
      : { ok: true, value: { ciphertext: bytes(`ct:${text(p)}`), keyVersion: '3' } };
  const open = (c: Uint8Array) =>
    text(c).startsWith('ct:')
      ? ({ ok: true, value: { plaintext: bytes(text(c).slice(3)), keyVersion: '3' } } as const)
      : ({ ok: false, error: new KeyportError('InvalidCiphertext', 'not ours') } as const);
  return { seal, open };
}

interface Counts {
  batch: number;
  single: number;
  inFlight: number;
  maxInFlight: number;
}

function fakeProvider(
  withBatch: boolean,
  overrides: Partial<KmsProvider> = {},
): { p: KmsProvider; n: Counts } {
  const { seal, open } = fakeCrypto();
  const n: Counts = { batch: 0, single: 0, inFlight: 0, maxInFlight: 0 };
  const unwrap = <T>(r: BatchResult<T>): T => {
    if (!r.ok) throw r.error;
    return r.value;
  };
  const single = async <T>(f: () => T): Promise<T> => {
    n.single++;
    n.inFlight++;
    n.maxInFlight = Math.max(n.maxInFlight, n.inFlight);
    await new Promise((r) => setTimeout(r, 1));
    n.inFlight--;
    return f();
  };
  const p = {
    scheme: 'local',
    name: 'fake',
    capabilities: caps,
    parseUri: parseKeyRef,
    formatUri: (ref: KeyRef) => withKeyVersion(ref.uri, ref.version),
    mapError: () => undefined,
    close: async () => {},
    encrypt: (_ref: unknown, plaintext: Uint8Array) => single(() => unwrap(seal(plaintext))),
    decrypt: (_ref: unknown, ciphertext: Uint8Array) => single(() => unwrap(open(ciphertext))),
    ...(withBatch
      ? {
          encryptBatch: async (_ref: unknown, items: readonly EncryptBatchItem[]) => {
            n.batch++;
            return items.map((it) => seal(it.plaintext));
          },
          decryptBatch: async (_ref: unknown, items: readonly { ciphertext: Uint8Array }[]) => {
            n.batch++;
            return items.map((it) => open(it.ciphertext));
          },
        }
      : {}),
    ...overrides,
  } as unknown as KmsProvider;
  return { p, n };
}

const items = (...names: string[]) =>
  names.map((s, i) => ({ plaintext: bytes(s), context: { row: String(i) } }));

describe('Keyport batches', () => {
  it("a sink that never settles holds a batch only until the caller's signal aborts it", async () => {
    const hung = { write: () => new Promise<void>(() => {}) };
    const { p } = fakeProvider(true);
    const kp = new Keyport({ providers: [p], audit: [hung] });
    const error = await kp
      .encryptBatch(uri, items('a', 'b'), { signal: AbortSignal.timeout(50) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuditFailure);
    expect(error).toMatchObject({ code: 'Aborted' });
  });

  for (const withBatch of [true, false]) {
    it(`${withBatch ? 'batch method' : 'per-item fallback'}: results in order, a bad item fails alone, one audit event per item`, async () => {
      const audit = new MemoryAuditSink();
      const { p, n } = fakeProvider(withBatch);
      const kp = new Keyport({ providers: [p], audit: [audit] });
      const sealed = await kp.encryptBatch(uri, items('a', 'bad', 'c'));
      expect(sealed.map((r) => r.ok)).toEqual([true, false, true]);
      expect(sealed[1]).toMatchObject({
        ok: false,
        error: { code: 'InvalidArgument', provider: 'fake', keyUri: uri },
      });
      const cts = sealed.map((r) =>
        r.ok ? { ciphertext: r.value.ciphertext } : { ciphertext: bytes('junk') },
      );
      const opened = await kp.decryptBatch(uri, cts);
      expect(opened.map((r) => (r.ok ? text(r.value.plaintext) : r.error.code))).toEqual([
        'a',
        'InvalidCiphertext',
        'c',
      ]);
      expect(n.batch).toBe(withBatch ? 2 : 0);
      expect(n.single).toBe(withBatch ? 0 : 6);
      expect(
        audit.events.map((e) => `${e.op}:${e.outcome}:${e.errorCode ?? ''}:${e.keyVersion ?? ''}`),
      ).toEqual(
        expect.arrayContaining([
          'encrypt:success::3',
          'encrypt:failure:InvalidArgument:',
          'encrypt:success::3',
          'decrypt:success::3',
          'decrypt:failure:InvalidCiphertext:',
          'decrypt:success::3',
        ]),
      );
      expect(audit.events).toHaveLength(6);
      expect(audit.events.filter((e) => e.op === 'encrypt').map((e) => e.contextKeys)).toEqual([
        ['row'],
        ['row'],
        ['row'],
      ]);
      expect(new Set(audit.events.filter((e) => e.op === 'encrypt').map((e) => e.contextDigest)).size).toBe(
        3,
      );
    });
  }

  it('the fallback keeps at most 16 items in flight', async () => {
    const { p, n } = fakeProvider(false);
    const kp = new Keyport({ providers: [p] });
    const r = await kp.encryptBatch(uri, items(...Array.from({ length: 50 }, (_, i) => `x${i}`)));
    expect(r.every((x) => x.ok)).toBe(true);
    expect(n.single).toBe(50);
    expect(n.maxInFlight).toBeGreaterThan(1);
    expect(n.maxInFlight).toBeLessThanOrEqual(16);
  });

  it('retries the whole request when it fails retryably, then audits each item once with the attempts', async () => {
    const audit = new MemoryAuditSink();
    let calls = 0;
    const { p } = fakeProvider(true, {
      encryptBatch: async (_ref, batch) => {
        calls++;
        if (calls < 3) throw new KeyportError('Throttled', 'slow down');
        return batch.map(() => ({ ok: true, value: { ciphertext: bytes('c'), keyVersion: '1' } }) as const);
      },
    });
    const kp = new Keyport({ providers: [p], audit: [audit], retry: { baseDelayMs: 1, maxDelayMs: 2 } });
    const r = await kp.encryptBatch(uri, items('a', 'b'));
    expect(r.every((x) => x.ok)).toBe(true);
    expect(calls).toBe(3);
    expect(audit.events.map((e) => [e.outcome, e.attempts])).toEqual([
      ['success', 3],
      ['success', 3],
    ]);
  });

  it('a whole-request failure rejects (mapped by the provider) and audits every item as failed', async () => {
    const audit = new MemoryAuditSink();
    let calls = 0;
    const { p } = fakeProvider(true, {
      encryptBatch: async () => {
        calls++;
        throw new Error('raw sdk 403');
      },
      mapError: () => new KeyportError('AccessDenied', 'denied'),
    });
    const kp = new Keyport({ providers: [p], audit: [audit] });
    await expect(kp.encryptBatch(uri, items('a', 'b', 'c'))).rejects.toMatchObject({
      code: 'AccessDenied',
      provider: 'fake',
    });
    expect(calls).toBe(1);
    expect(audit.events.map((e) => e.errorCode)).toEqual(['AccessDenied', 'AccessDenied', 'AccessDenied']);
  });

  it('checks the capability once, before any call', async () => {
    const audit = new MemoryAuditSink();
    const { p, n } = fakeProvider(true, { capabilities: { ...caps, keySpecs: {} } });
    const kp = new Keyport({ providers: [p], audit: [audit] });
    await expect(kp.decryptBatch(uri, [{ ciphertext: bytes('ct:a') }])).rejects.toMatchObject({
      code: 'Unsupported',
    });
    expect(n.batch + n.single).toBe(0);
    expect(audit.events).toHaveLength(1);
  });

  it('an abort rejects the batch on both paths, and every item is audited', async () => {
    for (const withBatch of [true, false]) {
      const audit = new MemoryAuditSink();
      const controller = new AbortController();
      const hang = (_ref: unknown, _items: unknown, o: ProviderCallOptions) =>
        new Promise<never>((_, reject) => o.signal.addEventListener('abort', () => reject(new Error('cut'))));
      const { p } = fakeProvider(
        withBatch,
        withBatch
          ? { encryptBatch: hang }
          : { encrypt: (_ref, _pt, _req, o) => hang(undefined, undefined, o) },
      );
      const kp = new Keyport({ providers: [p], audit: [audit] });
      const pending = kp.encryptBatch(uri, items('a', 'b', 'c'), { signal: controller.signal });
      setTimeout(() => controller.abort(), 5);
      await expect(pending).rejects.toMatchObject({ code: 'Aborted' });
      expect(audit.events.map((e) => e.errorCode)).toEqual(['Aborted', 'Aborted', 'Aborted']);
    }
  });

  it('an empty batch makes no call; a closed client refuses', async () => {
    const { p, n } = fakeProvider(true);
    const kp = new Keyport({ providers: [p] });
    expect(await kp.encryptBatch(uri, [])).toEqual([]);
    expect(n.batch).toBe(0);
    await kp.close();
    await expect(kp.encryptBatch(uri, items('a'))).rejects.toMatchObject({ code: 'InvalidArgument' });
  });
});
