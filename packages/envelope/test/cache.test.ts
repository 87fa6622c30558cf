/** Data-key cache: single-flight fills, per-key limits, bounded size, zeroing on eviction. */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHeader } from '../src/header.js';
import {
  DataKeyCache,
  openEnvelope,
  rawAesRecipient,
  rawEcdhRecipient,
  rawRsaRecipient,
  sealEnvelope,
  sealStream,
} from '../src/index.js';
import { resolveLimits } from '../src/limits.js';
import { openCacheKey } from '../src/open-header.js';
import type { Recipient } from '../src/recipients/recipient.js';
import { counting } from './helpers/counting.js';
import { aes, collect } from './helpers/keys.js';
import { type LocalKms, localKms } from './helpers/local-kms.js';

let kms: LocalKms;
beforeAll(async () => {
  kms = await localKms(2);
});
afterAll(async () => {
  await kms?.close();
});

const edksOf = (m: Uint8Array) =>
  Buffer.from(parseHeader(m, resolveLimits())?.encryptedDataKeys[0]?.ciphertext ?? []);

describe('data-key cache', () => {
  it('64 concurrent seals with an empty cache make one provider call', async () => {
    const { keys, calls } = counting(kms.keys);
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    const uri = kms.uris[0] as string;
    const msgs = await Promise.all(
      Array.from({ length: 64 }, () =>
        sealEnvelope(randomBytes(1024), { recipients: [uri], keys, cache, context: { t: '1' } }),
      ),
    );
    expect(calls.generateDataKey).toBe(1);
    expect(cache.stats.fills).toBe(1);
    expect(new Set(msgs.map((m) => edksOf(m).toString('hex'))).size).toBe(1);
    // Different contexts are different entries.
    await sealEnvelope(randomBytes(1), { recipients: [uri], keys, cache, context: { t: '2' } });
    expect(calls.generateDataKey).toBe(2);
    for (const m of msgs.slice(0, 3)) await openEnvelope(m, { trust: [uri], keys: kms.keys });
  });

  it('maxMessages bounds the uses of one data key; each window is one provider call', async () => {
    const { keys, calls } = counting(kms.keys);
    const cache = new DataKeyCache({ maxAgeMs: 60_000, maxMessages: 10 });
    await Promise.all(
      Array.from({ length: 95 }, () =>
        sealEnvelope(randomBytes(8), { recipients: [kms.uris[1] as string], keys, cache }),
      ),
    );
    expect(calls.generateDataKey).toBe(10);
  });

  it('maxBytes and maxAgeMs end an entry; messages larger than maxBytes bypass it', async () => {
    const cache = new DataKeyCache({ maxAgeMs: 60_000, maxBytes: 100 });
    await sealEnvelope(randomBytes(60), { recipients: [aes], cache });
    await sealEnvelope(randomBytes(40), { recipients: [aes], cache });
    expect(cache.stats.fills).toBe(1);
    await sealEnvelope(randomBytes(1), { recipients: [aes], cache });
    expect(cache.stats.fills).toBe(2);
    await sealEnvelope(randomBytes(101), { recipients: [aes], cache });
    expect(cache.stats.fills).toBe(2); // bypassed, not cached
    const short = new DataKeyCache({ maxAgeMs: 5 });
    await sealEnvelope(randomBytes(1), { recipients: [aes], cache: short });
    await new Promise((r) => setTimeout(r, 20));
    await sealEnvelope(randomBytes(1), { recipients: [aes], cache: short });
    expect(short.stats.fills).toBe(2);
  });

  it('holds at most maxEntries and zeroes evicted data keys', async () => {
    const cache = new DataKeyCache({ maxAgeMs: 60_000, maxEntries: 2 });
    const keys: Uint8Array[] = [];
    for (const t of ['a', 'b', 'c']) {
      await cache.acquire(
        t,
        0,
        async () => ({ dataKey: randomBytes(32) }),
        (m) => keys.push(m.dataKey),
      );
    }
    expect(cache.size).toBe(2);
    expect(keys[0]?.every((b) => b === 0)).toBe(true);
    expect(keys[2]?.some((b) => b !== 0)).toBe(true);
    cache.clear();
    expect(keys[2]?.every((b) => b === 0)).toBe(true);
  });

  it('a failed fill reaches every waiter, and the next call tries again', async () => {
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    let n = 0;
    const fill = async () => {
      n++;
      throw new Error('provider down');
    };
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => cache.acquire('k', 0, fill, () => 1)),
    );
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(n).toBe(1);
    await expect(cache.acquire('k', 0, fill, () => 1)).rejects.toThrow();
    expect(n).toBe(2);
  });

  it('caches data keys on open too (trust is part of the cache key)', async () => {
    const { keys, calls } = counting(kms.keys);
    const uri = kms.uris[0] as string;
    const msg = await sealEnvelope(randomBytes(10), { recipients: [uri], keys });
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    await Promise.all(Array.from({ length: 8 }, () => openEnvelope(msg, { trust: [uri], keys, cache })));
    expect(calls.decrypt).toBe(1);
    await openEnvelope(msg, { trust: [{ anyKeyOf: 'local' }], keys, cache });
    expect(calls.decrypt).toBe(2);
  });

  it('the seal cache key tells apart contexts that a naive join would merge, and Map contexts', async () => {
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    // Pairs whose concatenations agree: each must get its own entry and its own header context.
    const contexts: Array<Record<string, string> | Map<string, string>> = [
      { a: 'bc' },
      { ab: 'c' },
      { a: 'b', c: '' },
      { 'a:1': 'b' },
      new Map([['a', 'bc']]),
      new Map([['x', 'y']]),
      { long: 'v'.repeat(400) },
      { long: `${'v'.repeat(399)}w` },
    ];
    for (const context of contexts) {
      for (let i = 0; i < 2; i++) {
        const msg = await sealEnvelope(randomBytes(16), {
          recipients: [aes],
          cache,
          context: context as Record<string, string>,
        });
        const opened = await openEnvelope(msg, { trust: [aes] });
        const want = context instanceof Map ? Object.fromEntries(context) : context;
        expect(opened.context).toEqual(want);
      }
    }
    // A Map and an object with the same pairs may share an entry; every other context has its own.
    expect(cache.stats.fills).toBeGreaterThanOrEqual(contexts.length - 1);
    expect(cache.stats.hits).toBeGreaterThanOrEqual(contexts.length);
  });

  it('the open cache key tells apart headers whose fields a naive join would merge', () => {
    const header = (edks: Array<[string, string, string]>, context: string) => ({
      suite: { id: 0x0478 } as never,
      encryptedDataKeys: edks.map(([providerId, info, ct]) => ({
        providerId,
        providerInfo: Buffer.from(info),
        ciphertext: Buffer.from(ct),
      })),
      contextBytes: Buffer.from(context),
    });
    const none = new Uint8Array(0);
    const keys = [
      openCacheKey(header([['p', 'ab', 'c']], ''), [aes], none),
      // provider info and ciphertext split one byte apart
      openCacheKey(header([['p', 'a', 'bc']], ''), [aes], none),
      // an EDK's last bytes shifted into the context
      openCacheKey(header([['p', 'a', 'b']], 'c'), [aes], none),
      // the provider id's end shifted into the provider info
      openCacheKey(header([['p\0a', '', 'bc']], ''), [aes], none),
      // two EDKs against one
      openCacheKey(
        header(
          [
            ['p', 'ab', 'c'],
            ['p', '', ''],
          ],
          '',
        ),
        [aes],
        none,
      ),
      // the context's end moved into the unstored pairs
      openCacheKey(header([['p', 'ab', 'c']], ''), [aes], new Uint8Array([0x63])),
      // a trusted id's end in the next id
      openCacheKey(header([['p', 'ab', 'c']], ''), [{ id: 'x\0y' }, { id: '' }], none),
      openCacheKey(header([['p', 'ab', 'c']], ''), [{ id: 'x' }, { id: 'y\0' }], none),
    ];
    expect(new Set(keys).size).toBe(keys.length);
    // and the key is a function of its inputs
    expect(openCacheKey(header([['p', 'ab', 'c']], ''), [aes], none)).toBe(keys[0]);
  });

  it('a Map context is checked for reserved keys as an object is', async () => {
    await expect(
      sealEnvelope(randomBytes(4), {
        recipients: [aes],
        context: new Map([['aws-crypto-public-key', 'x']]) as unknown as Record<string, string>,
      }),
    ).rejects.toMatchObject({ code: 'InvalidArgument' });
  });

  it('tryAcquire uses a usable entry at once and charges nothing on a miss', async () => {
    const cache = new DataKeyCache({ maxAgeMs: 60_000, maxMessages: 2, maxBytes: 100 });
    const use = (m: { dataKey: Uint8Array }) => m.dataKey.length;
    expect(cache.tryAcquire('k', 10, use)).toBeUndefined();
    expect(cache.stats).toEqual({ fills: 0, hits: 0, evictions: 0 });
    await cache.acquire('k', 10, async () => ({ dataKey: new Uint8Array(32) }), use);
    expect(cache.tryAcquire('k', 10, use)).toBe(32); // the second message of the entry
    expect(cache.tryAcquire('k', 10, use)).toBeUndefined(); // maxMessages reached: evicted
    expect(cache.size).toBe(0);
    expect(cache.tryAcquire('other', 101, use)).toBeUndefined(); // more than maxBytes: never cached
  });

  it('evicts the least recently used entry, hits included', async () => {
    const cache = new DataKeyCache({ maxAgeMs: 60_000, maxEntries: 2 });
    const keys = new Map<string, Uint8Array>();
    const fill = (k: string) => async () => {
      const dataKey = new Uint8Array(32).fill(k.charCodeAt(0));
      keys.set(k, dataKey);
      return { dataKey };
    };
    const use = () => 0;
    await cache.acquire('a', 0, fill('a'), use);
    await cache.acquire('b', 0, fill('b'), use);
    expect(cache.tryAcquire('a', 0, use)).toBe(0); // a is now the most recent
    expect(cache.tryAcquire('a', 0, use)).toBe(0);
    await cache.acquire('c', 0, fill('c'), use); // evicts b
    expect(keys.get('b')?.every((x) => x === 0)).toBe(true);
    expect(cache.tryAcquire('a', 0, use)).toBe(0);
    expect(cache.tryAcquire('c', 0, use)).toBe(0); // c most recent, then a
    await cache.acquire('d', 0, fill('d'), use); // evicts a
    expect(keys.get('a')?.every((x) => x === 0)).toBe(true);
    expect(keys.get('c')?.every((x) => x === 'c'.charCodeAt(0))).toBe(true);
    expect(cache.size).toBe(2);
  });

  it('every cached seal draws a fresh message id', async () => {
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    const ids = new Set<string>();
    // More ids than one 4 KiB pool holds, so the pool is refilled on the way.
    for (let i = 0; i < 300; i++) {
      const msg = await sealEnvelope(randomBytes(8), { recipients: [aes], cache });
      ids.add(Buffer.from(msg.subarray(3, 35)).toString('hex'));
    }
    expect(ids.size).toBe(300);
  });

  it('streaming seal uses the cache when the plaintext length is given', async () => {
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    for (let i = 0; i < 3; i++) {
      const pt = randomBytes(100);
      const msg = await collect(sealStream([pt], { recipients: [aes], cache, plaintextLength: 100 }));
      expect(Buffer.from((await openEnvelope(msg, { trust: [aes] })).plaintext).equals(pt)).toBe(true);
    }
    expect(cache.stats.fills).toBe(1);
  });
});

/**
 * Recipients that share a name (or a sender key) but not the key or padding that opens: the cache keys
 * materials by recipient id, so each pair must have two ids, or a seal cached for one is handed
 * to the other (unopenable) and an open cached for one lets the other read the message.
 */
const rsaPair = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
const ecPair = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const sender = ecPair();
const lookalikes: Record<string, () => [Recipient, Recipient]> = {
  'raw AES, one name, two keys': () => {
    const aesKey = () => rawAesRecipient({ namespace: 'ns', name: 'k', key: randomBytes(32) });
    return [aesKey(), aesKey()];
  },
  'raw RSA, one name, two key pairs': () => {
    const rsaKey = ({ publicKey, privateKey }: ReturnType<typeof rsaPair>) =>
      rawRsaRecipient({ namespace: 'ns', name: 'k', publicKey, privateKey });
    return [rsaKey(rsaPair()), rsaKey(rsaPair())];
  },
  'raw RSA, one key pair, two OAEP hashes': () => {
    const { publicKey, privateKey } = rsaPair();
    const rsaWith = (padding: 'oaep-sha1' | 'oaep-sha256') =>
      rawRsaRecipient({ namespace: 'ns', name: 'k', publicKey, privateKey, padding });
    return [rsaWith('oaep-sha256'), rsaWith('oaep-sha1')];
  },
  'raw ECDH static, one sender, two recipients': () => {
    const staticTo = ({ publicKey }: ReturnType<typeof ecPair>) =>
      rawEcdhRecipient({
        scheme: 'static',
        senderPrivateKey: sender.privateKey,
        recipientPublicKey: publicKey,
      });
    return [staticTo(ecPair()), staticTo(ecPair())];
  },
};

describe.each(Object.keys(lookalikes))('cache identity: %s', (kind) => {
  const [first, second] = (lookalikes[kind] as () => [Recipient, Recipient])();
  const pt = randomBytes(300);

  it('the two have different ids', () => expect(first.id).not.toBe(second.id));

  it('a seal cached for one is not handed to the other', async () => {
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    await sealEnvelope(pt, { recipients: [first], cache });
    const msg = await sealEnvelope(pt, { recipients: [second], cache });
    expect(Buffer.from((await openEnvelope(msg, { trust: [second] })).plaintext).equals(pt)).toBe(true);
  });

  it('an open cached for one does not let the other read the message', async () => {
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    const msg = await sealEnvelope(pt, { recipients: [first] });
    await openEnvelope(msg, { trust: [first], cache });
    await expect(openEnvelope(msg, { trust: [second], cache })).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
  });
});
