/**
 * The README's promises to a careless or hostile caller: bad options are a typed
 * `InvalidArgument` (never a TypeError from deep inside, never a value silently ignored), an
 * abort is a typed `Aborted` that releases no further plaintext and never hangs on a stalled
 * source, context keys named after Object.prototype members are ordinary keys, and the cache
 * options cannot make a seal call its provider without end.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';

const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

import { readFileSync } from 'node:fs';
import { KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import {
  DataKeyCache,
  openEnvelope,
  openStream,
  type Recipient,
  rawAesRecipient,
  rawRsaRecipient,
  rewrapEnvelope,
  rewrapStream,
  sealEnvelope,
  sealStream,
} from '../src/index.js';
import { aes, aesOther, chunked, collect } from './helpers/keys.js';

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof KeyportError ? e.code : `not a KeyportError: ${String(e)}`),
  );

/** `aes`, counting its wraps and unwraps. */
function counted(r: Recipient = aes) {
  const n = { wraps: 0, unwraps: 0 };
  const recipient: Recipient = {
    id: r.id,
    matches: (edk) => r.matches(edk),
    wrap: (k, c, e) => {
      n.wraps++;
      return r.wrap(k, c, e);
    },
    unwrap: (edk, c, e) => {
      n.unwraps++;
      return r.unwrap(edk, c, e);
    },
  };
  return { recipient, n };
}

const pt = Buffer.from('careless callers');
const F = 16;
const message = () => sealEnvelope(randomBytes(5 * F), { recipients: [aes], frameLength: F });

describe('options: typed errors for every careless value', () => {
  it('options that are not an object are InvalidArgument on every entry point', async () => {
    const msg = await message();
    for (const options of [null, 'trust', 42, [aes]]) {
      const o = options as never;
      expect(await codeOf(sealEnvelope(pt, o)), String(options)).toBe('InvalidArgument');
      expect(await codeOf(openEnvelope(msg, o))).toBe('InvalidArgument');
      expect(await codeOf(collect(sealStream([pt], o)))).toBe('InvalidArgument');
      expect(await codeOf(collect(openStream([msg], o)))).toBe('InvalidArgument');
      expect(await codeOf(rewrapEnvelope(msg, o))).toBe('InvalidArgument');
    }
  });

  it('a getter that throws is InvalidArgument, and its message is not passed on', async () => {
    const msg = await message();
    const throwing = <T extends object>(base: T, name: string): T =>
      Object.defineProperty({ ...base }, name, {
        enumerable: true,
        get() {
          throw new Error('SECRET-FROM-GETTER');
        },
      });
    for (const [p, name] of [
      [sealEnvelope(pt, throwing({ recipients: [aes] }, 'frameLength')), 'frameLength'],
      [sealEnvelope(pt, throwing({ recipients: [aes] }, 'recipients')), 'recipients'],
      [openEnvelope(msg, throwing({ trust: [aes] }, 'trust')), 'trust'],
      [openEnvelope(msg, throwing({ trust: [aes] }, 'requiredContext')), 'requiredContext'],
      [collect(openStream([msg], throwing({ trust: [aes] }, 'signal'))), 'signal'],
      [rewrapEnvelope(msg, throwing({ trust: [aes], add: [aesOther] }, 'remove')), 'remove'],
    ] as const) {
      const err = await (p as Promise<unknown>).catch((e: unknown) => e);
      expect(err, name).toBeInstanceOf(KeyportError);
      expect((err as KeyportError).code).toBe('InvalidArgument');
      expect((err as Error).message).toContain(name);
      expect(JSON.stringify({ m: (err as Error).message, c: String((err as Error).cause) })).not.toContain(
        'SECRET',
      );
    }
  });

  it('an own __proto__ key in the options is refused as an unknown option, never taken as a prototype', async () => {
    const options = JSON.parse('{"__proto__": {"frameLength": 7}}') as Record<string, unknown>;
    options.recipients = [aes];
    await expect(sealEnvelope(pt, options as never)).rejects.toMatchObject({ code: 'InvalidArgument' });
    // Inherited options are read as JavaScript reads options; only own names are checked as unknown.
    const inherited = Object.assign(Object.create({ frameLength: 7, bogus: 1 }), { recipients: [aes] });
    const msg = await sealEnvelope(pt, inherited);
    expect((await openEnvelope(msg, { trust: [aes] })).frameLength).toBe(7);
  });

  it('a misspelt option is refused, not ignored: requiredContex would open without the context check', async () => {
    const msg = await sealEnvelope(pt, { recipients: [aes], context: { tenant: 'a' } });
    const typo = { trust: [aes], requiredContex: { tenant: 'b' } } as never;
    await expect(openEnvelope(msg, typo)).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining('requiredContex'),
    });
    expect(await codeOf(collect(openStream([msg], typo)))).toBe('InvalidArgument');
    expect(
      await codeOf(collect(rewrapStream([msg], { ...(typo as object), add: [aesOther] } as never))),
    ).toBe('InvalidArgument');
    await expect(sealEnvelope(pt, { recipient: [aes] } as never)).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    expect(await codeOf(collect(sealStream([pt], { recipients: [aes], framelength: 64 } as never)))).toBe(
      'InvalidArgument',
    );
  });

  it('an option the call cannot use is refused, not ignored: onHeader on openEnvelope, concurrency on rewrap', async () => {
    const msg = await sealEnvelope(pt, { recipients: [aes] });
    let called = false;
    const onHeader = () => {
      called = true;
    };
    await expect(openEnvelope(msg, { trust: [aes], onHeader } as never)).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining('onHeader'),
    });
    expect(called).toBe(false);
    await collect(openStream([msg], { trust: [aes], onHeader }));
    expect(called).toBe(true);
    for (const rewrap of [
      (o: never) => rewrapEnvelope(msg, o),
      (o: never) => collect(rewrapStream([msg], o)),
    ]) {
      for (const extra of [{ concurrency: 2 }, { onHeader }]) {
        expect(await codeOf(rewrap({ trust: [aes], add: [aesOther], ...extra } as never))).toBe(
          'InvalidArgument',
        );
      }
    }
  });

  it('a misspelt cache or recipient option is refused, not ignored: maxMessage would leave a data key reused 2^32 times', () => {
    const thrown = (make: () => unknown): unknown => {
      try {
        make();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const key = randomBytes(32);
    for (const [make, named] of [
      [() => new DataKeyCache({ maxAgeMs: 60_000, maxMessage: 1 } as never), 'maxMessage'],
      [() => new DataKeyCache({ maxAgeMs: 60_000, maxbytes: 1 } as never), 'maxbytes'],
      [() => rawAesRecipient({ namespace: 'n', name: 'k', key, wrappingKey: key } as never), 'wrappingKey'],
      [
        () => rawRsaRecipient({ namespace: 'n', name: 'k', publicKey, paddng: 'oaep-sha1' } as never),
        'paddng',
      ],
    ] as const) {
      expect(thrown(make)).toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringContaining(named),
      });
    }
    expect(new DataKeyCache({ maxAgeMs: 60_000, maxMessages: 1, maxBytes: 1, maxEntries: 1 }).size).toBe(0);
  });

  it('recipients, trust, add and remove must be arrays without holes', async () => {
    const msg = await message();
    const holes = (...items: unknown[]) => {
      const a: unknown[] = [];
      items.forEach((x, i) => {
        if (x !== undefined) a[i] = x;
      });
      a.length = items.length;
      return a as never;
    };
    for (const recipients of [
      'local:///k#a',
      holes(aes, undefined, aesOther),
      holes(undefined, aes),
      { 0: aes },
    ]) {
      expect(await codeOf(sealEnvelope(pt, { recipients: recipients as never }))).toBe('InvalidArgument');
    }
    expect(await codeOf(openEnvelope(msg, { trust: holes(undefined, aes) }))).toBe('InvalidArgument');
    expect(await codeOf(rewrapEnvelope(msg, { trust: [aes], add: holes(undefined, aesOther) }))).toBe(
      'InvalidArgument',
    );
    expect(await codeOf(rewrapEnvelope(msg, { trust: [aes], add: aesOther as never }))).toBe(
      'InvalidArgument',
    );
    expect(
      await codeOf(rewrapEnvelope(msg, { trust: [aes], add: [aesOther], remove: holes(undefined, aes) })),
    ).toBe('InvalidArgument');
  });

  it('signal, cache, keys, requireCommitment and onHeader of the wrong type are refused, not ignored', async () => {
    const msg = await message();
    for (const bad of [{ signal: {} }, { signal: 'abort' }, { cache: {} }, { keys: 'kms' }]) {
      expect(
        await codeOf(sealEnvelope(pt, { recipients: [aes], ...(bad as object) })),
        JSON.stringify(bad),
      ).toBe('InvalidArgument');
      expect(await codeOf(openEnvelope(msg, { trust: [aes], ...(bad as object) }))).toBe('InvalidArgument');
    }
    // Before: a truthy non-boolean enforced nothing, and v1 messages opened.
    for (const requireCommitment of ['yes', 1, null]) {
      expect(
        await codeOf(openEnvelope(msg, { trust: [aes], requireCommitment: requireCommitment as never })),
      ).toBe('InvalidArgument');
    }
    expect(await codeOf(collect(openStream([msg], { trust: [aes], onHeader: 'log' as never })))).toBe(
      'InvalidArgument',
    );
    // A KMS recipient given a `keys` without the needed method.
    expect(
      await codeOf(sealEnvelope(pt, { recipients: ['local:///tmp/x.keystore#k'], keys: {} as never })),
    ).toBe('InvalidArgument');
  });

  it('a source that is not iterable is InvalidArgument', async () => {
    for (const source of [null, 42, {}]) {
      expect(await codeOf(collect(sealStream(source as never, { recipients: [aes] })))).toBe(
        'InvalidArgument',
      );
      expect(await codeOf(collect(openStream(source as never, { trust: [aes] })))).toBe('InvalidArgument');
      expect(await codeOf(collect(rewrapStream(source as never, { trust: [aes], add: [aesOther] })))).toBe(
        'InvalidArgument',
      );
    }
  });

  it('every open limit and frameLength refuse NaN, Infinity, -1, 0, 1.5, "8" and null', async () => {
    const msg = await message();
    const limits = [
      'maxEncryptedDataKeys',
      'maxUnwrapAttempts',
      'maxHeaderBytes',
      'maxFrameLength',
      'maxFrames',
      'maxNonFramedBytes',
    ];
    const values = [Number.NaN, Number.POSITIVE_INFINITY, -1, 0, 1.5, '8', null];
    for (const name of limits) {
      for (const v of values) {
        expect(await codeOf(openEnvelope(msg, { trust: [aes], [name]: v })), `${name} ${String(v)}`).toBe(
          'InvalidArgument',
        );
      }
    }
    // The format's ceilings are accepted, one past them refused.
    expect(await codeOf(openEnvelope(msg, { trust: [aes], maxEncryptedDataKeys: 0xffff }))).toBe('ok');
    expect(await codeOf(openEnvelope(msg, { trust: [aes], maxFrameLength: 0xffff_ffff }))).toBe('ok');
    expect(await codeOf(openEnvelope(msg, { trust: [aes], maxFrameLength: 2 ** 32 }))).toBe(
      'InvalidArgument',
    );
    for (const frameLength of [...values.filter((v) => v !== null), 64 * 1024 * 1024 + 1]) {
      expect(await codeOf(sealEnvelope(pt, { recipients: [aes], frameLength: frameLength as number }))).toBe(
        'InvalidArgument',
      );
    }
    expect(await codeOf(sealEnvelope(pt, { recipients: [aes], frameLength: 64 * 1024 * 1024 }))).toBe('ok');
  });

  it('DataKeyCache options are positive integers; maxEntries 0.5 no longer refills without end', async () => {
    for (const bad of [
      { maxAgeMs: 0.5 },
      { maxAgeMs: 1000, maxEntries: 0.5 },
      { maxAgeMs: 1000, maxMessages: 1.5 },
      { maxAgeMs: 1000, maxBytes: 10.5 },
      { maxAgeMs: Number.POSITIVE_INFINITY },
      { maxAgeMs: '1000' },
      {},
    ]) {
      expect(() => new DataKeyCache(bad as never), JSON.stringify(bad)).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    }
    expect(() => new DataKeyCache(null as never)).toThrow(
      expect.objectContaining({ code: 'InvalidArgument' }),
    );
  });
});

describe('abort: typed, early, and nothing more released', () => {
  it('an already aborted signal stops seal and open before any key is wrapped or unwrapped', async () => {
    const msg = await message();
    for (const reason of [undefined, 'stop', new Error('why')]) {
      const signal = AbortSignal.abort(reason);
      const c = counted();
      expect(await codeOf(sealEnvelope(pt, { recipients: [c.recipient], signal }))).toBe('Aborted');
      expect(await codeOf(collect(sealStream([pt], { recipients: [c.recipient], signal })))).toBe('Aborted');
      expect(await codeOf(openEnvelope(msg, { trust: [c.recipient], signal }))).toBe('Aborted');
      const got: Uint8Array[] = [];
      const streamed = (async () => {
        for await (const p of openStream([msg], { trust: [c.recipient], signal })) got.push(p);
      })();
      expect(await codeOf(streamed)).toBe('Aborted');
      expect(got).toEqual([]);
      expect(await codeOf(rewrapEnvelope(msg, { trust: [c.recipient], add: [aesOther], signal }))).toBe(
        'Aborted',
      );
      expect(c.n).toEqual({ wraps: 0, unwraps: 0 });
    }
  });

  it('an abort between frames: Aborted, and no frame after it is released', async () => {
    const plaintext = randomBytes(5 * F);
    const msg = await sealEnvelope(plaintext, { recipients: [aes], frameLength: F });
    const controller = new AbortController();
    const got: Uint8Array[] = [];
    const err = await (async () => {
      for await (const p of openStream([msg], {
        trust: [aes],
        signal: controller.signal,
      })) {
        got.push(p);
        controller.abort('enough');
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyportError);
    expect((err as KeyportError).code).toBe('Aborted');
    expect(Buffer.concat(got).equals(plaintext.subarray(0, F))).toBe(true);
  });

  it('sealStream: an abort between the frames of one large chunk is heard at the next frame, not at the next chunk', async () => {
    // 64 KiB frames: with concurrency 2 they are sealed in flight (stream-workers.ts).
    const frame = 64 * 1024;
    for (const concurrency of [1, 2]) {
      const controller = new AbortController();
      let afterAbort = 0;
      let pieces = 0;
      const err = await (async () => {
        for await (const p of sealStream([randomBytes(16 * frame)], {
          recipients: [aes],
          frameLength: frame,
          concurrency,
          signal: controller.signal,
        })) {
          // Piece 1 is the header; abort while holding the first piece of the body.
          if (++pieces === 2) controller.abort();
          else if (pieces > 2) afterAbort += p.length;
        }
      })().catch((e: unknown) => e);
      expect((err as KeyportError).code).toBe('Aborted');
      // At most the rest of the frame being emitted: not the other 15 frames of the chunk.
      expect(afterAbort).toBeLessThan(frame + 64);
    }
  });

  it('an abort while a stalled source is awaited ends the open, the seal and the rewrap at once', async () => {
    const msg = Buffer.from(await message());
    let returned = 0;
    /** Yields `first`, then never answers again (a peer that stopped sending). */
    function stalled(first: Uint8Array): AsyncIterable<Uint8Array> {
      return {
        [Symbol.asyncIterator]() {
          let sent = false;
          return {
            next: () => {
              if (sent) return new Promise<IteratorResult<Uint8Array>>(() => undefined);
              sent = true;
              return Promise.resolve({ done: false, value: first });
            },
            return: () => {
              returned++;
              return Promise.resolve({ done: true, value: undefined });
            },
          };
        },
      };
    }
    const runs: Array<(signal: AbortSignal) => Promise<unknown>> = [
      // The header and part of the first frame, then silence.
      (signal) => collect(openStream(stalled(msg.subarray(0, msg.length - 40)), { trust: [aes], signal })),
      (signal) => collect(sealStream(stalled(pt), { recipients: [aes], signal })),
      (signal) =>
        collect(
          rewrapStream(stalled(msg.subarray(0, msg.length - 40)), { trust: [aes], add: [aesOther], signal }),
        ),
    ];
    for (const run of runs) {
      const controller = new AbortController();
      const outcome = codeOf(run(controller.signal));
      setTimeout(() => controller.abort(), 20);
      const timeout = new Promise((resolve) => setTimeout(() => resolve('hung'), 2000).unref());
      expect(await Promise.race([outcome, timeout])).toBe('Aborted');
    }
    // Each stalled source was asked to end (without waiting on its unanswered next()).
    expect(returned).toBe(3);
  });

  it('a consumer that stops early ends the source, with and without a signal', async () => {
    const msg = await message();
    for (const withSignal of [{}, { signal: new AbortController().signal }]) {
      const ended = { seal: false, open: false };
      async function* source(bytes: Uint8Array, which: 'seal' | 'open') {
        try {
          for (let i = 0; i < bytes.length; i += 7) yield bytes.subarray(i, i + 7);
          for (;;) yield new Uint8Array(7);
        } finally {
          ended[which] = true;
        }
      }
      // The header comes before the source is read: stop after the first frame instead.
      let pieces = 0;
      for await (const _ of sealStream(source(pt, 'seal'), {
        recipients: [aes],
        frameLength: F,
        ...withSignal,
      })) {
        if (++pieces === 2) break;
      }
      for await (const _ of openStream(source(msg, 'open'), { trust: [aes], ...withSignal })) break;
      expect(ended).toEqual({ seal: true, open: true });
    }
  });
});

describe('context keys named after Object.prototype members', () => {
  const context = JSON.parse(
    '{"__proto__": "p", "constructor": "c", "toString": "t", "hasOwnProperty": "h"}',
  );

  it('round-trip as own keys, whole and streamed, and satisfy requiredContext only when present', async () => {
    const msg = await sealEnvelope(pt, { recipients: [aes], context });
    const out = await openEnvelope(msg, { trust: [aes], requiredContext: context });
    expect(Object.keys(out.context).sort()).toEqual([
      '__proto__',
      'constructor',
      'hasOwnProperty',
      'toString',
    ]);
    expect(Object.hasOwn(out.context, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(out.context, '__proto__')?.value).toBe('p');
    let streamed: Record<string, string> | undefined;
    await collect(openStream([msg], { trust: [aes], onHeader: (i) => (streamed = i.context) }));
    expect(streamed).toEqual(out.context);
    // A message without them: inherited Object.prototype members never satisfy requiredContext.
    const plain = await sealEnvelope(pt, { recipients: [aes], context: { a: '1' } });
    for (const required of [
      { toString: String(Object.prototype.toString) },
      JSON.parse('{"__proto__": "p"}'),
      { constructor: String(Object) },
    ]) {
      expect(await codeOf(openEnvelope(plain, { trust: [aes], requiredContext: required }))).toBe(
        'InvalidCiphertext',
      );
    }
  });
});

describe('cache promises', () => {
  it('0x0578 messages sealed from one cache entry share a public key (the signing key is cached)', async () => {
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    const keyOf = async () => {
      const msg = await sealEnvelope(pt, { recipients: [aes], suite: 0x0578, cache });
      return (await openEnvelope(msg, { trust: [aes] })).context['aws-crypto-public-key'];
    };
    const a = await keyOf();
    expect(a).toBeTypeOf('string');
    expect(await keyOf()).toBe(a);
    expect(cache.stats.fills).toBe(1);
  });
});

describe('v1 messages', () => {
  const dir = new URL('./fixtures/esdk-vectors/', import.meta.url);
  const manifest = JSON.parse(readFileSync(new URL('manifest.json', dir), 'utf8')) as {
    tests: Record<
      string,
      { ciphertext: string; algorithmSuiteId: string; decryptKeyDescription: Record<string, string> }
    >;
  };
  const keys = JSON.parse(readFileSync(new URL('keys.json', dir), 'utf8')).keys as Record<
    string,
    { material: string }
  >;
  const v1 = Object.values(manifest.tests).find(
    (v) => v.algorithmSuiteId === '0178' && v.decryptKeyDescription['encryption-algorithm'] === 'aes',
  );

  it('requireCommitment refuses them before any unwrap; rewrap refuses them', async () => {
    if (v1 === undefined) throw new Error('the fixture has no raw AES 0x0178 vector');
    const d = v1.decryptKeyDescription;
    const c = counted(
      rawAesRecipient({
        namespace: d['provider-id'] as string,
        name: d.key as string,
        key: Buffer.from((keys[d.key as string] as { material: string }).material, 'base64'),
      }),
    );
    const msg = readFileSync(new URL(v1.ciphertext.replace('file://', ''), dir));
    expect((await openEnvelope(msg, { trust: [c.recipient] })).suiteId).toBe(0x0178);
    c.n.unwraps = 0;
    expect(await codeOf(openEnvelope(msg, { trust: [c.recipient], requireCommitment: true }))).toBe(
      'InvalidCiphertext',
    );
    expect(c.n.unwraps).toBe(0);
    expect(await codeOf(rewrapEnvelope(msg, { trust: [c.recipient], add: [aesOther] }))).toBe(
      'InvalidArgument',
    );
  });
});

describe('requireUnsigned: signed suites refused after the header', () => {
  it('refuses a 0x0578 message before any unwrap and before any plaintext, on every open path', async () => {
    const c = counted();
    const signed = await sealEnvelope(pt, { recipients: [aes], suite: 0x0578, frameLength: F });
    const unsigned = await sealEnvelope(pt, { recipients: [aes], suite: 0x0478, frameLength: F });
    expect(await codeOf(openEnvelope(signed, { trust: [c.recipient], requireUnsigned: true }))).toBe(
      'InvalidCiphertext',
    );
    const released: Uint8Array[] = [];
    const streamed = (async () => {
      for await (const p of openStream([signed], { trust: [c.recipient], requireUnsigned: true }))
        released.push(p);
    })();
    expect(await codeOf(streamed)).toBe('InvalidCiphertext');
    expect(released).toEqual([]);
    expect(c.n.unwraps).toBe(0);
    // Unsigned messages open as before; false and absent change nothing for signed ones.
    expect(
      Buffer.from((await openEnvelope(unsigned, { trust: [aes], requireUnsigned: true })).plaintext),
    ).toEqual(pt);
    expect(
      Buffer.from((await openEnvelope(signed, { trust: [aes], requireUnsigned: false })).plaintext),
    ).toEqual(pt);
    for (const requireUnsigned of ['yes', 1, null])
      expect(
        await codeOf(openEnvelope(unsigned, { trust: [aes], requireUnsigned: requireUnsigned as never })),
      ).toBe('InvalidArgument');
  });
});

describe('a message given as its base64 text', () => {
  it('is refused with a hint to decode it first, on the buffer and stream paths', async () => {
    for (const suite of [0x0478, 0x0578] as const) {
      const msg = await sealEnvelope(Buffer.from('x'), { recipients: [aes], suite });
      const text = Buffer.from(Buffer.from(msg).toString('base64'));
      const hint = /looks like the base64 text of a message/;
      await expect(openEnvelope(text, { trust: [aes] })).rejects.toMatchObject({
        code: 'InvalidCiphertext',
        message: expect.stringMatching(hint),
      });
      // Whole, and one byte at a time (the first chunk alone is only the 'A').
      for (const source of [[text], chunked(text, 1)]) {
        await expect(collect(openStream(source, { trust: [aes] }))).rejects.toMatchObject({
          message: expect.stringMatching(hint),
        });
      }
    }
    // Other junk gets no such hint.
    await expect(openEnvelope(Buffer.from('hello'), { trust: [aes] })).rejects.toMatchObject({
      message: 'unknown message format version',
    });
  });
});
