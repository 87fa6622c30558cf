/**
 * The client's side of audit: fail-closed by default, 'warn' as the opt-out, keyed context
 * digests by default (from the JSONL sink's key), bare SHA-256 only when asked for.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AuditFailure,
  type AuditSink,
  encodeContext,
  JsonlAuditSink,
  Keyport,
  KeyportError,
  type KmsProvider,
  MemoryAuditSink,
  verifyAuditLog,
} from '../src/index.js';
import { KEY, tempLog } from './support/audit.js';
import { AES_ONLY_CAPABILITIES } from './support/capabilities.js';

const caps = AES_ONLY_CAPABILITIES;

const uri = 'local://k.kp#a';
const provider = (overrides: Partial<KmsProvider> = {}): KmsProvider =>
  ({
    scheme: 'local',
    name: 'local',
    capabilities: caps,
    encrypt: async () => ({ ciphertext: new Uint8Array([1]), keyVersion: '1' }),
    decrypt: async () => ({ plaintext: new Uint8Array([42]), keyVersion: '1' }),
    ...overrides,
  }) as KmsProvider;

const broken: AuditSink = {
  write: () => Promise.reject(new Error('ENOSPC: no space left on device')),
};

describe('fail-closed audit', () => {
  it('an operation whose event cannot be written fails with AuditFailure (Unavailable) and returns nothing', async () => {
    const kp = new Keyport({ providers: [provider()], audit: [broken] });
    const err = await kp.decrypt(uri, new Uint8Array([1])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuditFailure);
    expect(err).toBeInstanceOf(KeyportError);
    expect(err).toMatchObject({ code: 'Unavailable', retryable: false, keyUri: uri, provider: 'local' });
    expect((err as Error).message).not.toContain('42');
  });

  it('a sink refusing a tampered log makes the operation fail with Integrity', async () => {
    const tampered: AuditSink = {
      write: () => Promise.reject(new KeyportError('Integrity', 'the audit log was truncated')),
    };
    const kp = new Keyport({ providers: [provider()], audit: [tampered] });
    await expect(kp.encrypt(uri, new Uint8Array(1))).rejects.toMatchObject({
      name: 'AuditFailure',
      code: 'Integrity',
    });
  });

  it('a failed operation that cannot be audited either fails with AuditFailure, keeping its own error', async () => {
    const kp = new Keyport({
      providers: [provider({ encrypt: () => Promise.reject(new KeyportError('AccessDenied', 'no')) })],
      audit: [broken],
      retry: { maxAttempts: 1 },
    });
    const err = (await kp.encrypt(uri, new Uint8Array(1)).catch((e: unknown) => e)) as AuditFailure;
    expect(err).toBeInstanceOf(AuditFailure);
    expect(err.operationError?.code).toBe('AccessDenied');
  });

  it('a sink that throws synchronously counts as a failure too', async () => {
    const throwing: AuditSink = {
      write: () => {
        throw new Error('boom');
      },
    };
    const kp = new Keyport({ providers: [provider()], audit: [new MemoryAuditSink(), throwing] });
    await expect(kp.encrypt(uri, new Uint8Array(1))).rejects.toBeInstanceOf(AuditFailure);
  });

  it("'warn' returns the result and reports the failure", async () => {
    const seen: unknown[] = [];
    const kp = new Keyport({
      providers: [provider()],
      audit: [broken],
      onAuditFailure: 'warn',
      onAuditError: (e) => seen.push(e),
    });
    await expect(kp.decrypt(uri, new Uint8Array([1]))).resolves.toMatchObject({
      plaintext: new Uint8Array([42]),
    });
    expect(seen).toHaveLength(1);
  });

  it('each item of a batch fails closed when its event cannot be written', async () => {
    const kp = new Keyport({ providers: [provider()], audit: [broken] });
    await expect(
      kp.encryptBatch(uri, [{ plaintext: new Uint8Array(1) }, { plaintext: new Uint8Array(2) }]),
    ).resolves.toMatchObject([{ ok: false }, { ok: false }]);
  });

  it('operations resolve only once the JSONL sink has the event on disk', async () => {
    const path = await tempLog();
    const sink = await JsonlAuditSink.open(path, { hmacKey: KEY });
    const kp = new Keyport({ providers: [provider()], audit: [sink] });
    await kp.encrypt(uri, new Uint8Array(1), { context: { tenant: 'acme' } });
    // Before close: the event is already written and anchored.
    expect(await verifyAuditLog(path, KEY)).toMatchObject({ ok: true, events: 1 });
    await kp.close();
  });
});

describe('context digests', () => {
  const context = { tenant: 'acme' };
  const bare = createHash('sha256').update(encodeContext(context)).digest('hex');

  it('are keyed by the JSONL sink key by default, so a dictionary of values does not reverse them', async () => {
    const path = await tempLog();
    const sink = await JsonlAuditSink.open(path, { hmacKey: KEY });
    const memory = new MemoryAuditSink();
    const kp = new Keyport({ providers: [provider()], audit: [memory, sink] });
    await kp.encrypt(uri, new Uint8Array(1), { context });
    const again = new Keyport({ providers: [provider()], audit: [memory, sink] });
    await again.encrypt(uri, new Uint8Array(1), { context });
    await kp.close();
    const [a, b] = memory.events.map((e) => e.contextDigest);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).not.toBe(bare);
    expect(a).toBe(b); // the same key across clients sharing the log: comparable
  });

  it('are keyed by a random per-client key when no sink offers one', async () => {
    const memory = new MemoryAuditSink();
    const kp = new Keyport({ providers: [provider()], audit: [memory] });
    await kp.encrypt(uri, new Uint8Array(1), { context });
    await kp.encrypt(uri, new Uint8Array(1), { context });
    const [a, b] = memory.events.map((e) => e.contextDigest);
    expect(a).not.toBe(bare);
    expect(a).toBe(b);
  });

  it("are bare SHA-256 only with auditDigestKey: 'unkeyed'", async () => {
    const memory = new MemoryAuditSink();
    const kp = new Keyport({ providers: [provider()], audit: [memory], auditDigestKey: 'unkeyed' });
    await kp.encrypt(uri, new Uint8Array(1), { context });
    expect(memory.events[0]?.contextDigest).toBe(bare);
  });
});
