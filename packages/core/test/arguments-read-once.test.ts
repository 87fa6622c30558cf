/** Arguments are read once and checked as read: grant operations, audit events, file-lock options. */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  type AuditEvent,
  acquireFileLock,
  JsonlAuditSink,
  Keyport,
  type KmsProvider,
  parseKeyRef,
  verifyAuditLog,
  withKeyVersion,
} from '../src/index.js';
import { event, KEY, tempLog } from './support/audit.js';
import { AES_ONLY_CAPABILITIES } from './support/capabilities.js';

const uri = 'local://k.kp#a';

function driver(
  methods: Record<string, unknown>,
  caps: Partial<typeof AES_ONLY_CAPABILITIES> = {},
): KmsProvider {
  return {
    scheme: 'local',
    name: 'local',
    capabilities: { ...AES_ONLY_CAPABILITIES, ...caps },
    parseUri: parseKeyRef,
    formatUri: (ref: { uri: string; version?: string }) => withKeyVersion(ref.uri, ref.version),
    mapError: () => undefined,
    close: async () => {},
    encrypt: async () => ({ ciphertext: new Uint8Array(1), keyVersion: '1' }),
    decrypt: async () => ({ plaintext: new Uint8Array(1), keyVersion: '1' }),
    ...methods,
  } as unknown as KmsProvider;
}

describe('grant operations are read like any other list argument', () => {
  const grantDriver = (seen: unknown[]) =>
    driver(
      {
        createGrant: async (_ref: unknown, req: { operations: unknown[] }) => {
          seen.push(req.operations);
          return { id: 'g', keyUri: uri, grantee: 'x', operations: req.operations };
        },
        listGrants: async function* () {},
        revokeGrant: async () => {},
      },
      { grants: 'native' },
    );

  it('a hole in operations is InvalidArgument, never handed to the driver', async () => {
    const seen: unknown[] = [];
    const kp = new Keyport({ providers: [grantDriver(seen)] });
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    const operations = ['decrypt', , 'encrypt'] as never;
    await expect(kp.createGrant(uri, { grantee: 'x', operations })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    expect(seen).toEqual([]);
  });

  it('operations whose reading throws (a Proxy) is InvalidArgument, not the caller exception', async () => {
    const seen: unknown[] = [];
    const kp = new Keyport({ providers: [grantDriver(seen)] });
    const operations = new Proxy(['decrypt'], {
      get: (t, p) => {
        if (p === '0') throw new Error('trap');
        return Reflect.get(t, p);
      },
    }) as never;
    await expect(kp.createGrant(uri, { grantee: 'x', operations })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    expect(seen).toEqual([]);
  });
});

describe('the JSONL sink writes what it checked', () => {
  it('an event whose getter answers differently on a second read cannot plant an invalid record', async () => {
    const path = await tempLog();
    const sink = await JsonlAuditSink.open(path, { hmacKey: KEY });
    await sink.write(event(0));
    let reads = 0;
    const twoFaced = {
      ...event(1),
      get durationMs(): number {
        reads++;
        return (reads > 1 ? 'later' : 1) as number;
      },
    } as AuditEvent;
    await sink.write(twoFaced).catch(() => undefined);
    await sink.write(event(2));
    await sink.close();
    // Whatever the sink made of it, the log verifies and stays writable.
    const verified = await verifyAuditLog(path, KEY);
    expect(verified.problem).toBeUndefined();
    expect(await readFile(path, 'utf8')).not.toContain('later');
    const again = await JsonlAuditSink.open(path, { hmacKey: KEY });
    await again.write(event(3));
    await again.close();
  });
});

describe('acquireFileLock checks its options like every public function', () => {
  const within = <T>(p: Promise<T>, ms: number): Promise<T | 'still waiting'> =>
    Promise.race([p, new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), ms))]);

  it('a NaN timeout or staleness is InvalidArgument, not a wait that never ends', async () => {
    const path = `${await tempLog()}.lock`;
    const held = await acquireFileLock(path);
    try {
      for (const o of [{ timeoutMs: Number.NaN }, { staleMs: Number.NaN, timeoutMs: 50 }]) {
        const waiting = acquireFileLock(path, o);
        waiting.then((l) => l.release()).catch(() => undefined);
        const outcome = await within(
          waiting.then(
            () => 'acquired',
            (e: unknown) => e,
          ),
          500,
        );
        expect(outcome).toMatchObject({ code: 'InvalidArgument' });
      }
      await expect(acquireFileLock(path, { timeoutMs: '5' as never })).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
      await expect(acquireFileLock(path, { signal: {} as never })).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    } finally {
      await held.release();
    }
  });
});
