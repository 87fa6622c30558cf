/** KMS recipients through core's Keyport client and the real @keyport/local provider. */
import { randomBytes } from 'node:crypto';
import { type KeyOperations, Keyport } from '@keyport/core';
import { openLocalKeystore } from '@keyport/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHeader } from '../src/header.js';
import { DataKeyUnavailableError, openEnvelope, rewrapEnvelope, sealEnvelope } from '../src/index.js';
import { resolveLimits } from '../src/limits.js';
import { counting } from './helpers/counting.js';
import { aes, aesOther } from './helpers/keys.js';
import { type LocalKms, localKms } from './helpers/local-kms.js';

let kms: LocalKms;
beforeAll(async () => {
  kms = await localKms(3);
});
afterAll(async () => {
  await kms?.close();
});

function edksOf(msg: Uint8Array) {
  const h = parseHeader(msg, resolveLimits());
  if (h === undefined) throw new Error('no header');
  return h.encryptedDataKeys.map((e) => ({
    id: e.providerId,
    info: Buffer.from(e.providerInfo).toString('utf8'),
  }));
}

describe('KMS recipients (local provider via Keyport)', () => {
  it('seals to three keys; each one alone opens it', async () => {
    const pt = randomBytes(3000);
    const [a, b, c] = kms.uris as [string, string, string];
    const msg = await sealEnvelope(pt, { recipients: [a, b, c], keys: kms.keys, context: { app: 'x' } });
    const edks = edksOf(msg);
    expect(edks.map((e) => e.id)).toEqual(['keyport:local', 'keyport:local', 'keyport:local']);
    // Provider info is the full key URI pinned to the version that wrapped.
    for (const [i, e] of edks.entries()) expect(e.info).toMatch(new RegExp(`#k${i}$`));
    for (const e of edks) expect(e.info).toContain('?version=');
    for (const uri of [a, b, c]) {
      const out = await openEnvelope(msg, { trust: [uri], keys: kms.keys, requiredContext: { app: 'x' } });
      expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
    }
  });

  it('data key source: one recipient generates; several wrap a local key at once (auto)', async () => {
    const [a, b, c] = kms.uris as [string, string, string];
    const pt = randomBytes(10);
    const one = counting(kms.keys);
    await sealEnvelope(pt, { recipients: [a], keys: one.keys });
    expect(one.calls).toEqual({ generateDataKey: 1 });
    const three = counting(kms.keys);
    const msg = await sealEnvelope(pt, { recipients: [a, b, c], keys: three.keys });
    expect(three.calls).toEqual({ encrypt: 3 });
    for (const [i, e] of edksOf(msg).entries()) expect(e.info).toMatch(new RegExp(`#k${i}$`));
    const firstGenerates = counting(kms.keys);
    await sealEnvelope(pt, {
      recipients: [a, b, c],
      keys: firstGenerates.keys,
      dataKeySource: 'first-recipient',
    });
    expect(firstGenerates.calls).toEqual({ generateDataKey: 1, encrypt: 2 });
    await expect(
      sealEnvelope(pt, { recipients: [a], keys: kms.keys, dataKeySource: 'remote' as never }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
  });

  it('mixes KMS and raw recipients', async () => {
    const pt = randomBytes(100);
    const msg = await sealEnvelope(pt, {
      recipients: [aes, kms.uris[0] as string],
      keys: kms.keys,
      dataKeySource: 'local',
    });
    expect(edksOf(msg).map((e) => e.id)).toEqual(['keyport-test', 'keyport:local']);
    const out = await openEnvelope(msg, { trust: [kms.uris[0] as string], keys: kms.keys });
    expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
  });

  it('never uses a key only because the message names it', async () => {
    const msg = await sealEnvelope(randomBytes(10), { recipients: [kms.uris[0] as string], keys: kms.keys });
    const err = await openEnvelope(msg, { trust: [kms.uris[1] as string, aes], keys: kms.keys }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(DataKeyUnavailableError);
    expect(err.code).toBe('InvalidCiphertext');
    expect(err.attempts).toEqual([]);
    // ...unless the caller opts in to every key of a scheme.
    const out = await openEnvelope(msg, { trust: [{ anyKeyOf: 'local' }], keys: kms.keys });
    expect(out.plaintext.length).toBe(10);
  });

  it('discovery through a named instance (anyKeyOf "local+b") opens only what names that instance', async () => {
    const other = await localKms(1);
    const plain = await openLocalKeystore({ path: kms.path, passphrase: kms.passphrase });
    const named = await openLocalKeystore({ path: other.path, passphrase: other.passphrase });
    const keys = new Keyport({ providers: { local: plain, b: named }, onAuditError: () => {} });
    try {
      const inB = (other.uris[0] as string).replace('local://', 'local+b://');
      const pt = randomBytes(20);
      const toB = await sealEnvelope(pt, { recipients: [inB], keys });
      expect(edksOf(toB)[0]?.info.startsWith('local+b://')).toBe(true);
      for (const anyKeyOf of ['local+b', 'local']) {
        const out = await openEnvelope(toB, { trust: [{ anyKeyOf }], keys });
        expect(Buffer.from(out.plaintext).equals(pt), anyKeyOf).toBe(true);
      }
      const toPlain = await sealEnvelope(pt, { recipients: [kms.uris[0] as string], keys });
      const err = await openEnvelope(toPlain, { trust: [{ anyKeyOf: 'local+b' }], keys }).catch((e) => e);
      expect(err).toBeInstanceOf(DataKeyUnavailableError);
      expect(err.attempts).toEqual([]);
    } finally {
      await plain.close();
      await named.close();
      await other.close();
    }
  });

  it('falls back in trust order and lists every failed attempt', async () => {
    const pt = randomBytes(50);
    const msg = await sealEnvelope(pt, { recipients: [aes, kms.uris[2] as string], keys: kms.keys });
    // A wrong raw AES key with the same name fails; the KMS key then succeeds.
    const impostor = { ...aesOther, id: 'raw-aes:keyport-test/aes-1', matches: aes.matches };
    const out = await openEnvelope(msg, { trust: [impostor, kms.uris[2] as string], keys: kms.keys });
    expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
    const err = await openEnvelope(msg, { trust: [impostor], keys: kms.keys }).catch((e) => e);
    expect(err).toBeInstanceOf(DataKeyUnavailableError);
    expect(err.attempts).toEqual([
      { recipient: 'raw-aes:keyport-test/aes-1', providerId: 'keyport-test', code: 'InvalidCiphertext' },
    ]);
    expect(err.message).toContain('"raw-aes:keyport-test/aes-1" -> InvalidCiphertext');
  });

  it('a message survives rotation: the EDK names the version that wrapped', async () => {
    const uri = kms.uris[1] as string;
    const pt = randomBytes(64);
    const msg = await sealEnvelope(pt, { recipients: [uri], keys: kms.keys });
    await kms.keys.rotateKey(uri);
    const msg2 = await sealEnvelope(pt, { recipients: [uri], keys: kms.keys });
    expect(edksOf(msg)[0]?.info).not.toEqual(edksOf(msg2)[0]?.info);
    for (const m of [msg, msg2]) {
      expect(
        Buffer.from((await openEnvelope(m, { trust: [uri], keys: kms.keys })).plaintext).equals(pt),
      ).toBe(true);
    }
  });

  it('a KMS recipient without keys is an InvalidArgument', async () => {
    await expect(sealEnvelope(randomBytes(1), { recipients: [kms.uris[0] as string] })).rejects.toMatchObject(
      {
        code: 'InvalidArgument',
      },
    );
  });
});

describe('timeoutMs: the deadline of each KMS call', () => {
  /** Records the options argument of every KeyOperations call, then delegates. */
  function recording(inner: KeyOperations) {
    const seen: Array<{ method: string; timeoutMs: unknown }> = [];
    const keys = new Proxy(inner, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          const o = args.at(-1) as { timeoutMs?: unknown } | undefined;
          seen.push({ method: String(prop), timeoutMs: o?.timeoutMs });
          return v.apply(target, args);
        };
      },
    });
    return { keys, seen };
  }

  it('reaches every KMS call of seal, open and rewrap', async () => {
    const [a, b, c] = kms.uris as [string, string, string];
    const r = recording(kms.keys);
    const pt = randomBytes(100);
    const one = await sealEnvelope(pt, { recipients: [a], keys: r.keys, timeoutMs: 1500 });
    const two = await sealEnvelope(pt, { recipients: [a, b], keys: r.keys, timeoutMs: 1500 });
    await openEnvelope(one, { trust: [a], keys: r.keys, timeoutMs: 1500 });
    await rewrapEnvelope(two, { trust: [b], keys: r.keys, add: [c], timeoutMs: 1500 });
    expect(r.seen.map((s) => s.method)).toEqual([
      'generateDataKey',
      'encrypt',
      'encrypt',
      'decrypt',
      'decrypt',
      'encrypt',
    ]);
    for (const s of r.seen) expect(s.timeoutMs, s.method).toBe(1500);
    // Without the option nothing is added: the client's own policy decides.
    const plain = recording(kms.keys);
    await openEnvelope(one, { trust: [a], keys: plain.keys });
    expect(plain.seen).toEqual([{ method: 'decrypt', timeoutMs: undefined }]);
  });

  it('a KMS call that does not answer in time fails the open with Timeout', async () => {
    const [a] = kms.uris as [string];
    const msg = await sealEnvelope(randomBytes(10), { recipients: [a], keys: kms.keys });
    // A keystore whose decrypt never answers (it only honours its signal).
    const provider = await openLocalKeystore({ path: kms.path, passphrase: kms.passphrase });
    const hanging = new Proxy(provider, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (prop !== 'decrypt') return typeof v === 'function' ? v.bind(target) : v;
        return (...args: unknown[]) =>
          new Promise((_, reject) => {
            const { signal } = args.at(-1) as { signal: AbortSignal };
            signal.addEventListener('abort', () => reject(signal.reason), { once: true });
          });
      },
    });
    const slow = new Keyport({ providers: [hanging], onAuditError: () => {} });
    try {
      const started = performance.now();
      await expect(openEnvelope(msg, { trust: [a], keys: slow, timeoutMs: 150 })).rejects.toMatchObject({
        code: 'Timeout',
      });
      expect(performance.now() - started).toBeLessThan(5_000);
    } finally {
      await provider.close();
    }
  });

  it('an invalid timeoutMs is InvalidArgument before any work, with raw recipients too', async () => {
    const msg = await sealEnvelope(randomBytes(10), { recipients: [aes] });
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '100', null]) {
      const timeoutMs = bad as number;
      await expect(sealEnvelope(randomBytes(10), { recipients: [aes], timeoutMs })).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
      await expect(openEnvelope(msg, { trust: [aes], timeoutMs })).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
      await expect(rewrapEnvelope(msg, { trust: [aes], add: [aesOther], timeoutMs })).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    }
  });
});
