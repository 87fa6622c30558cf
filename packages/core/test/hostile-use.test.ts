/**
 * The client used carelessly or with intent: arguments that are sparse arrays or Proxies whose
 * traps throw, drivers that resolve with the wrong shape, listings left early, driver-only calls
 * given options no other call accepts. Each case ends in a typed KeyportError (InvalidArgument at
 * the boundary, Internal for a driver's malformed answer) and the audit trail the README promises.
 */
import { describe, expect, it } from 'vitest';
import {
  AuditFailure,
  type Capabilities,
  Keyport,
  KeyportError,
  type KmsProvider,
  MemoryAuditSink,
  parseKeyRef,
  withKeyVersion,
} from '../src/index.js';
import { AES_ONLY_CAPABILITIES } from './support/capabilities.js';

const uri = 'local://k.kp#a';
const one = new Uint8Array([1]);

const caps: Capabilities = {
  ...AES_ONLY_CAPABILITIES,
  keySpecs: { AES_256: ['encrypt_decrypt'], HMAC_256: ['mac'], EC_P256: ['sign_verify'] },
  signingAlgorithms: ['ECDSA_SHA_256'],
};

/** A driver whose methods are the overrides; calls are counted by name. */
function driver(overrides: Record<string, unknown> = {}): { p: KmsProvider; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const counted: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(overrides)) {
    counted[k] =
      typeof v === 'function'
        ? (...args: unknown[]) => {
            calls.set(k, (calls.get(k) ?? 0) + 1);
            return (v as (...a: unknown[]) => unknown)(...args);
          }
        : v;
  }
  const p = {
    scheme: 'local',
    name: 'local',
    capabilities: caps,
    parseUri: parseKeyRef,
    formatUri: (ref: { uri: string; version?: string }) => withKeyVersion(ref.uri, ref.version),
    mapError: () => undefined,
    close: async () => {},
    encrypt: async () => ({ ciphertext: one, keyVersion: '1' }),
    decrypt: async () => ({ plaintext: one, keyVersion: '1' }),
    ...counted,
  } as unknown as KmsProvider;
  return { p, calls };
}

function client(overrides: Record<string, unknown> = {}, audit = new MemoryAuditSink()) {
  const { p, calls } = driver(overrides);
  const kp = new Keyport({
    providers: [p],
    audit: [audit],
    retry: { baseDelayMs: 1, maxDelayMs: 1 },
  });
  return { kp, calls, audit };
}

const throwingTraps = {
  getPrototypeOf: new Proxy(
    {},
    {
      getPrototypeOf: () => {
        throw new Error('trap');
      },
    },
  ),
  ownKeys: new Proxy(
    {},
    {
      ownKeys: () => {
        throw new Error('trap');
      },
    },
  ),
  getOwnPropertyDescriptor: new Proxy(
    { timeoutMs: 5 },
    {
      getOwnPropertyDescriptor: () => {
        throw new Error('trap');
      },
    },
  ),
  revoked: (() => {
    const r = Proxy.revocable({}, {});
    r.revoke();
    return r.proxy;
  })(),
};

describe("arguments that throw while read are InvalidArgument, never the caller's exception", () => {
  for (const [trap, hostile] of Object.entries(throwingTraps)) {
    it(`a Proxy whose ${trap} fails, as options, context, key ref, batch items or item`, async () => {
      const { kp, calls } = client();
      const refused = { code: 'InvalidArgument' };
      await expect(kp.encrypt(uri, one, hostile as never)).rejects.toMatchObject(refused);
      await expect(kp.encrypt(uri, one, { context: hostile as never })).rejects.toMatchObject(refused);
      await expect(kp.encrypt(hostile as never, one)).rejects.toMatchObject(refused);
      await expect(kp.encryptBatch(uri, [hostile as never])).rejects.toMatchObject(refused);
      await expect(kp.createKey('local', hostile as never)).rejects.toMatchObject(refused);
      expect(calls.size).toBe(0);
    });
  }

  it('a Map context whose iteration fails, and batch items whose length getter fails', async () => {
    const { kp, calls } = client();
    const map = new Proxy(new Map([['a', 'b']]), {});
    await expect(kp.encrypt(uri, one, { context: map })).rejects.toMatchObject({ code: 'InvalidArgument' });
    const items = new Proxy([{ plaintext: one }], {
      get: (t, k) => {
        if (k === 'length') throw new Error('trap');
        return Reflect.get(t, k);
      },
    });
    await expect(kp.encryptBatch(uri, items)).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining('items'),
    });
    await expect(kp.encryptBatch(uri, throwingTraps.revoked as never)).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    expect(calls.size).toBe(0);
  });
});

describe('a sparse batch', () => {
  for (const withBatch of [false, true]) {
    it(`${withBatch ? 'batch method' : 'per-item fallback'}: a hole is a missing item, refused before any call`, async () => {
      const { kp, calls, audit } = client(
        withBatch
          ? {
              encryptBatch: async (_r: unknown, items: unknown[]) =>
                items.map(() => ({ ok: true, value: { ciphertext: one, keyVersion: '1' } })),
            }
          : {},
      );
      // biome-ignore lint/suspicious/noSparseArray: the hole is the point
      const sparse = [, { plaintext: one }] as unknown as { plaintext: Uint8Array }[];
      await expect(kp.encryptBatch(uri, sparse)).rejects.toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringContaining('items[0]'),
      });
      const trailing = [{ ciphertext: one }];
      trailing.length = 3;
      await expect(kp.decryptBatch(uri, trailing as never)).rejects.toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringContaining('items[1]'),
      });
      expect(calls.size).toBe(0);
      expect(audit.events).toHaveLength(0);
    });
  }
});

describe('a driver that resolves with the wrong shape', () => {
  const cases: Array<[string, Record<string, unknown>, (kp: Keyport) => Promise<unknown>, string]> = [
    [
      'encrypt without a ciphertext',
      { encrypt: async () => ({ keyVersion: '1' }) },
      (kp) => kp.encrypt(uri, one),
      'encrypt',
    ],
    [
      'encrypt with a base64 string',
      { encrypt: async () => ({ ciphertext: 'AQ==', keyVersion: '1' }) },
      (kp) => kp.encrypt(uri, one),
      'encrypt',
    ],
    ['encrypt with nothing', { encrypt: async () => undefined }, (kp) => kp.encrypt(uri, one), 'encrypt'],
    [
      'decrypt with a number array',
      { decrypt: async () => ({ plaintext: [1], keyVersion: '1' }) },
      (kp) => kp.decrypt(uri, one),
      'decrypt',
    ],
    [
      'decrypt with a numeric key version',
      { decrypt: async () => ({ plaintext: one, keyVersion: 7 }) },
      (kp) => kp.decrypt(uri, one),
      'decrypt',
    ],
    [
      'sign without a signature',
      { sign: async () => ({ algorithm: 'ECDSA_SHA_256', keyVersion: '1' }), verify: async () => true },
      (kp) => kp.sign(uri, one),
      'sign',
    ],
    [
      'mac without a mac',
      { mac: async () => ({ keyVersion: '1' }), verifyMac: async () => true },
      (kp) => kp.mac(uri, one),
      'mac',
    ],
    [
      'generateDataKey without the wrapped key',
      { generateDataKey: async () => ({ plaintext: new Uint8Array(32), keyVersion: '1' }) },
      (kp) => kp.generateDataKey(uri),
      'generateDataKey',
    ],
  ];
  for (const [name, overrides, call, op] of cases) {
    it(`${name}: Internal, audited as a failure, not retried`, async () => {
      const { kp, calls, audit } = client(overrides);
      await expect(call(kp)).rejects.toMatchObject({ code: 'Internal', retryable: false });
      expect(calls.get(op)).toBe(1);
      expect(audit.events).toMatchObject([{ op, outcome: 'failure', errorCode: 'Internal' }]);
    });
  }

  it('a verify verdict that is merely truthy (a string, an object, 1) is never a valid signature', async () => {
    for (const verdict of ['false', { valid: false }, 1, null]) {
      const { kp } = client({
        sign: async () => ({ signature: one, algorithm: 'ECDSA_SHA_256', keyVersion: '1' }),
        verify: async () => verdict,
        mac: async () => ({ mac: one, keyVersion: '1' }),
        verifyMac: async () => verdict,
      });
      await expect(kp.verify(uri, one, one, { algorithm: 'ECDSA_SHA_256' })).rejects.toMatchObject({
        code: 'Internal',
      });
      await expect(kp.verifyMac(uri, one, one)).rejects.toMatchObject({ code: 'Internal' });
    }
    const { kp } = client({
      mac: async () => ({ mac: one, keyVersion: '1' }),
      verifyMac: async () => false,
    });
    await expect(kp.verifyMac(uri, one, one)).resolves.toBe(false);
  });

  it('a data key shorter (or longer) than asked for is refused and zeroed', async () => {
    for (const length of [1, 16, 33]) {
      const handed = new Uint8Array(length).fill(9);
      const { kp } = client({
        generateDataKey: async () => ({ plaintext: handed, wrapped: one, keyVersion: '1' }),
      });
      await expect(kp.generateDataKey(uri)).rejects.toMatchObject({ code: 'Internal' });
      expect(handed.every((b) => b === 0)).toBe(true);
    }
    const { kp } = client({
      generateDataKey: async (_r: unknown, req: { bytes?: number }) => ({
        plaintext: new Uint8Array(req.bytes ?? 32),
        wrapped: one,
        keyVersion: '1',
      }),
    });
    await expect(kp.generateDataKey(uri, { bytes: 16 })).resolves.toMatchObject({ keyVersion: '1' });
    expect((await kp.generateDataKey(uri)).plaintext).toHaveLength(32);
  });

  it('emulated data keys: a driver encrypt without a ciphertext is Internal, not a data key with no wrap', async () => {
    const { p } = driver({ encrypt: async () => ({ keyVersion: '1' }) });
    const kp = new Keyport({
      providers: [{ ...p, capabilities: { ...caps, dataKeys: 'emulated' } } as KmsProvider],
    });
    await expect(kp.generateDataKey(uri)).rejects.toMatchObject({ code: 'Internal' });
  });

  it('a batch method: a malformed item fails alone; an answer that is not a list fails the batch', async () => {
    const { kp, audit } = client({
      encryptBatch: async () => [
        { ok: true, value: { ciphertext: one, keyVersion: '1' } },
        { ok: true, value: { keyVersion: '1' } },
        null,
        { value: { ciphertext: one } },
      ],
    });
    const items = Array.from({ length: 4 }, () => ({ plaintext: one }));
    const results = await kp.encryptBatch(uri, items);
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual([
      'ok',
      'Internal',
      'Internal',
      'Internal',
    ]);
    expect(audit.events.map((e) => e.outcome)).toEqual(['success', 'failure', 'failure', 'failure']);
    const { kp: notAList } = client({ decryptBatch: async () => ({ results: [] }) });
    await expect(notAList.decryptBatch(uri, [{ ciphertext: one }])).rejects.toMatchObject({
      code: 'Internal',
    });
  });
});

describe('a listing the consumer leaves early', () => {
  function listing(onClose: () => void, seen: AbortSignal[]) {
    return {
      listKeys: async function* (o: { signal: AbortSignal }) {
        seen.push(o.signal);
        try {
          for (let i = 0; ; i++) yield { uri: `local://k.kp#k${i}` };
        } finally {
          onClose();
        }
      },
    };
  }

  it("closes the driver's iterator (its finally runs), aborts its signal and emits one audit event", async () => {
    let closed = 0;
    const seen: AbortSignal[] = [];
    const { kp, audit } = client(listing(() => closed++, seen));
    const got: string[] = [];
    for await (const k of kp.listKeys('local')) {
      got.push(k.uri);
      if (got.length === 3) break;
    }
    expect(got).toHaveLength(3);
    expect(closed).toBe(1);
    expect(seen[0]?.aborted).toBe(true);
    expect(audit.events).toMatchObject([{ op: 'listKeys', outcome: 'success' }]);
  });

  it('a throw in the loop body closes and audits too; a listing never started emits nothing', async () => {
    let closed = 0;
    const { kp, audit } = client(listing(() => closed++, []));
    await expect(
      (async () => {
        for await (const _ of kp.listKeys('local')) throw new Error('consumer');
      })(),
    ).rejects.toThrow('consumer');
    expect(closed).toBe(1);
    expect(audit.events).toHaveLength(1);
    const never = kp.listKeys('local')[Symbol.asyncIterator]();
    await never.return?.();
    expect(audit.events).toHaveLength(1);
  });

  it("fail-closed: a sink that cannot record the early-ended listing fails the consumer's loop", async () => {
    const sink = {
      write: () => {
        throw new Error('disk full');
      },
    };
    const { p } = driver(listing(() => {}, []));
    const kp = new Keyport({ providers: [p], audit: [sink] });
    const loop = async () => {
      for await (const _ of kp.listKeys('local')) break;
    };
    await expect(loop()).rejects.toBeInstanceOf(AuditFailure);
  });

  it("a driver iterator whose return() throws or never settles does not hold the consumer's break", async () => {
    for (const ret of [
      () => {
        throw new Error('return');
      },
      () => new Promise(() => {}),
      () => Promise.reject(new Error('return')),
    ]) {
      const { kp, audit } = client({
        listKeys: () => ({
          [Symbol.asyncIterator]: () => ({
            next: async () => ({ done: false, value: { uri: 'local://k.kp#k' } }),
            return: ret,
          }),
        }),
      });
      for await (const _ of kp.listKeys('local')) break;
      expect(audit.events).toHaveLength(1);
    }
  });
});

describe('driver-only calls take options as every call does', () => {
  it('instanceCall refuses unknown options, accessors and a non-string instance or name', async () => {
    const { kp } = client();
    const run = async () => 1;
    await expect(kp.instanceCall('local', 'x', run, { bogus: 1 } as never)).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining('bogus'),
    });
    let reads = 0;
    const twoFaced = {
      get signal() {
        return reads++ === 0 ? undefined : AbortSignal.abort();
      },
    };
    await expect(kp.instanceCall('local', 'x', run, twoFaced as never)).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    await expect(kp.instanceCall(42 as never, 'x', run)).rejects.toMatchObject({ code: 'InvalidArgument' });
    let names = 0;
    const shifty = { toString: () => (names++ === 0 ? 'fine' : 'not fine\n') };
    await expect(kp.instanceCall('local', shifty as never, run)).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    await expect(kp.driverCall(uri, shifty as never, run)).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(kp.instanceCall('local', 'x', run, { timeoutMs: 50 })).resolves.toBe(1);
  });
});

describe('errors never carry what went in', () => {
  it('a malformed answer names the field, never the bytes or the context', async () => {
    const secret = 'tenant-secret-value';
    const { kp } = client({ encrypt: async () => ({ ciphertext: secret, keyVersion: '1' }) });
    const e = (await kp
      .encrypt(uri, new TextEncoder().encode(secret), { context: { t: secret } })
      .catch((x: unknown) => x)) as KeyportError;
    expect(e).toBeInstanceOf(KeyportError);
    expect(JSON.stringify({ ...e, message: e.message, cause: e.cause })).not.toContain(secret);
  });
});
