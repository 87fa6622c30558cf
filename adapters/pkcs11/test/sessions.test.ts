/** One C_Initialize per process, the bounded session pool, re-login, abort between steps. */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { moduleRefs, PKCS11_CAPABILITIES, type Pkcs11Provider, pkcs11 } from '../src/index.js';
import { openProvider, providerOptions, signal, softhsm, uniqueName, withWrappedP11 } from './support.js';

/** Counts calls of the named pkcs11js functions on the provider's (shared) module while `fn` runs. */
async function counting(
  provider: Pkcs11Provider,
  names: readonly string[],
  fn: () => Promise<unknown>,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  await withWrappedP11(
    provider,
    names,
    (name, original) =>
      function (this: unknown, ...args: unknown[]) {
        counts[name] = (counts[name] ?? 0) + 1;
        return original.apply(this, args);
      },
    fn,
  );
  return counts;
}

describe('sessions against SoftHSM2', () => {
  let provider: Pkcs11Provider;
  let keyUri: string;
  beforeAll(async () => {
    provider = await openProvider({ maxSessions: 2 });
    keyUri = (
      await provider.createKey({ name: uniqueName('sessions'), spec: 'AES_256' }, { signal: signal() })
    ).uri;
  });
  afterAll(() => provider.close());

  it('two providers share one C_Initialize; closing one leaves the other working', async () => {
    const path = softhsm().KEYPORT_SOFTHSM_MODULE;
    expect(moduleRefs(path)).toBe(1);
    const second = await openProvider();
    expect(moduleRefs(path)).toBe(2);
    const sealed = await second.encrypt({ uri: keyUri }, randomBytes(16), {}, { signal: signal() });
    await second.close();
    await second.close(); // idempotent
    expect(moduleRefs(path)).toBe(1);
    const opened = await provider.decrypt({ uri: keyUri }, sealed.ciphertext, {}, { signal: signal() });
    expect(opened.plaintext.length).toBe(16);
  });

  it('many parallel calls share at most maxSessions sessions', async () => {
    let peak = 0;
    const calls = Array.from({ length: 12 }, async () => {
      const r = await provider.encrypt(
        { uri: keyUri },
        randomBytes(64),
        { context: { n: '1' } },
        { signal: signal() },
      );
      peak = Math.max(peak, provider.pool.size);
      return provider.decrypt({ uri: keyUri }, r.ciphertext, { context: { n: '1' } }, { signal: signal() });
    });
    const results = await Promise.all(calls);
    expect(results).toHaveLength(12);
    expect(peak).toBeLessThanOrEqual(2);
    expect(provider.pool.size).toBeLessThanOrEqual(2);
  });

  it('a caller waiting for a session is released by its AbortSignal (Aborted)', async () => {
    const blockers = [0, 1].map(() =>
      provider.pool.run(signal(), () => new Promise((r) => setTimeout(r, 150))),
    );
    const controller = new AbortController();
    const waiting = provider.describeKey({ uri: keyUri }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(waiting).rejects.toMatchObject({ code: 'Aborted' });
    await Promise.all(blockers);
    await expect(
      provider.describeKey({ uri: keyUri }, { signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({
      code: 'Aborted',
    });
  });

  it('callers beyond maxSessions are served in the order they came', async () => {
    const release: Array<() => void> = [];
    const blockers = [0, 1].map(() =>
      provider.pool.run(signal(), () => new Promise<void>((r) => release.push(r))),
    );
    const order: number[] = [];
    const waiting = Array.from({ length: 6 }, (_, i) =>
      provider.pool.run(signal(), () => {
        order.push(i);
      }),
    );
    for (const r of release) r();
    await Promise.all([...blockers, ...waiting]);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('an abort between the key lookup and its use stops the call before any *Init (Aborted)', async () => {
    const controller = new AbortController();
    const inits: string[] = [];
    await withWrappedP11(
      provider,
      ['C_FindObjectsFinal', 'C_EncryptInit'],
      (name, original) =>
        function (this: unknown, ...args: unknown[]) {
          if (name === 'C_FindObjectsFinal')
            controller.abort(); // during the lookup
          else inits.push(name);
          return original.apply(this, args);
        },
      async () => {
        provider.invalidate(provider.target({ uri: keyUri }).name); // the call must look the key up
        await expect(
          provider.encrypt({ uri: keyUri }, randomBytes(8), {}, { signal: controller.signal }),
        ).rejects.toMatchObject({ code: 'Aborted' });
      },
    );
    expect(inits).toEqual([]);
    // The session went back healthy: the next calls work.
    await Promise.all(
      [0, 1, 2].map(() => provider.encrypt({ uri: keyUri }, randomBytes(8), {}, { signal: signal() })),
    );
  });

  it('an abort after C_EncryptInit is not honoured mid-operation: the call completes and its session stays usable', async () => {
    const controller = new AbortController();
    let sealed: Awaited<ReturnType<Pkcs11Provider['encrypt']>> | undefined;
    await withWrappedP11(
      provider,
      ['C_EncryptInit'],
      (_name, original) =>
        function (this: unknown, ...args: unknown[]) {
          const result = original.apply(this, args);
          controller.abort();
          return result;
        },
      async () => {
        sealed = await provider.encrypt(
          { uri: keyUri },
          Buffer.from('kept'),
          {},
          { signal: controller.signal },
        );
      },
    );
    const opened = await provider.decrypt(
      { uri: keyUri },
      (sealed as { ciphertext: Uint8Array }).ciphertext,
      {},
      {
        signal: signal(),
      },
    );
    expect(Buffer.from(opened.plaintext).toString()).toBe('kept');
    await Promise.all(
      [0, 1, 2].map(() => provider.encrypt({ uri: keyUri }, randomBytes(8), {}, { signal: signal() })),
    );
  });

  it('logs in again when the token logged the application out', async () => {
    await provider.describeKey({ uri: keyUri }, { signal: signal() });
    await provider.pool.run(signal(), (session) => provider.p11.C_Logout(session));
    const info = await provider.describeKey({ uri: keyUri }, { signal: signal() });
    expect(info.state).toBe('enabled');
    const sealed = await provider.encrypt({ uri: keyUri }, randomBytes(8), {}, { signal: signal() });
    expect(sealed.keyVersion).toBe('1');
  });

  it('a session handed from one caller to the next costs no PKCS#11 call of its own; a cached key is not searched for', async () => {
    await provider.encrypt({ uri: keyUri }, randomBytes(8), {}, { signal: signal() }); // cache the key
    const counts = await counting(
      provider,
      ['C_GetSessionInfo', 'C_FindObjectsInit', 'C_EncryptInit', 'C_OpenSession'],
      () =>
        Promise.all(
          Array.from({ length: 24 }, () =>
            provider.encrypt({ uri: keyUri }, randomBytes(32), { context: { n: '1' } }, { signal: signal() }),
          ),
        ),
    );
    expect(counts.C_EncryptInit).toBe(24);
    expect(counts.C_GetSessionInfo).toBe(0);
    expect(counts.C_OpenSession).toBe(0);
    // At most one refresh of the cached key (keyCacheMs may run out mid-test): 4 searches.
    expect(counts.C_FindObjectsInit).toBeLessThanOrEqual(4);
  });

  it('a ciphertext under a version another provider made opens without waiting for the key cache', async () => {
    const name = uniqueName('stale-cache');
    const created = await provider.createKey({ name, spec: 'AES_256' }, { signal: signal() });
    const ref = { uri: created.uri };
    await provider.encrypt(ref, randomBytes(8), {}, { signal: signal() }); // caches version 1 only
    const other = await openProvider({ keyCacheMs: 0 });
    try {
      await other.rotateKey(ref, { signal: signal() });
      const sealed = await other.encrypt(ref, randomBytes(16), {}, { signal: signal() });
      expect(sealed.keyVersion).toBe('2');
      const opened = await provider.decrypt(ref, sealed.ciphertext, {}, { signal: signal() });
      expect(opened.keyVersion).toBe('2');
      // A version that never existed is still refused, after one fresh read.
      const forged = Buffer.from(sealed.ciphertext);
      forged[5] = '9'.charCodeAt(0);
      await expect(provider.decrypt(ref, forged, {}, { signal: signal() })).rejects.toMatchObject({
        code: 'InvalidCiphertext',
      });
    } finally {
      await other.close();
    }
  });

  it('a cached key whose version another provider destroyed is looked up again by every operation', async () => {
    // Each operation caches the key at version 1; another provider rotates and destroys version 1,
    // so the cached handle is gone (CKR_*_HANDLE_INVALID). Operations whose work runs in an async
    // function saw that as a rejection, which was not retried: NotFound until keyCacheMs ran out.
    const other = await openProvider({ keyCacheMs: 0 });
    try {
      const cases = [
        {
          spec: 'AES_256' as const,
          run: (ref: { uri: string }) =>
            provider.generateDataKey(ref, { bytes: 32, context: { n: '1' } }, { signal: signal() }),
        },
        {
          spec: 'EC_P256' as const,
          run: (ref: { uri: string }) => provider.sign(ref, randomBytes(20), {}, { signal: signal() }),
        },
      ];
      for (const { spec, run } of cases) {
        const created = await provider.createKey(
          { name: uniqueName(`stale-${spec}`), spec },
          { signal: signal() },
        );
        const ref = { uri: created.uri };
        expect((await run(ref)).keyVersion).toBe('1');
        await other.rotateKey(ref, { signal: signal() });
        await other.destroyKeyVersion({ uri: created.uri, version: '1' }, { signal: signal() });
        expect((await run(ref)).keyVersion).toBe('2');
      }
    } finally {
      await other.close();
    }
  });

  it('pkcs11(options) builds the driver synchronously and reads the PIN at the first call only', async () => {
    let reads = 0;
    const pin = process.env.KEYPORT_SOFTHSM_PIN ?? '';
    const driver = pkcs11(
      providerOptions({
        pin: {
          callback: () => {
            reads++;
            return pin;
          },
        },
      }),
    );
    try {
      expect(reads).toBe(0);
      expect(driver.capabilities).toEqual(provider.capabilities);
      for (const [spec, usages] of Object.entries(driver.capabilities.keySpecs))
        for (const usage of usages ?? [])
          expect(PKCS11_CAPABILITIES.keySpecs[spec as keyof typeof PKCS11_CAPABILITIES.keySpecs]).toContain(
            usage,
          );
      for (const a of driver.capabilities.signingAlgorithms)
        expect(PKCS11_CAPABILITIES.signingAlgorithms).toContain(a);
      for (const a of driver.capabilities.import) expect(PKCS11_CAPABILITIES.import).toContain(a);
      await driver.describeKey({ uri: keyUri }, { signal: signal() });
      await driver.describeKey({ uri: keyUri }, { signal: signal() });
      expect(reads).toBe(1);
    } finally {
      await driver.close();
    }
  });

  it('a closed provider refuses calls (Unavailable, not retryable)', async () => {
    const p = await openProvider();
    await p.close();
    await expect(p.describeKey({ uri: keyUri }, { signal: signal() })).rejects.toMatchObject({
      code: 'Unavailable',
      retryable: false,
    });
  });
});
