/** One C_Initialize per process, the bounded session pool, re-login, abort between steps. */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { moduleRefs, type Pkcs11Provider } from '../src/index.js';
import { openProvider, signal, softhsm, uniqueName } from './support.js';

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

  it('logs in again when the token logged the application out', async () => {
    await provider.describeKey({ uri: keyUri }, { signal: signal() });
    await provider.pool.run(signal(), (session) => provider.p11.C_Logout(session));
    const info = await provider.describeKey({ uri: keyUri }, { signal: signal() });
    expect(info.state).toBe('enabled');
    const sealed = await provider.encrypt({ uri: keyUri }, randomBytes(8), {}, { signal: signal() });
    expect(sealed.keyVersion).toBe('1');
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
