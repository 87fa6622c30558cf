/**
 * Context pairs authenticated but not stored (`contextNotStored` on seal, `reproducedContext`
 * on open; the ESDK's Required Encryption Context CMM, whose messages interop-esdk-languages and
 * the published vectors cover): the header binds them, every path needs them back, a stored
 * pair cannot be contradicted, and a cache cannot hand out a key for the wrong reproduction.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DataKeyCache,
  openEnvelope,
  openStream,
  rewrapEnvelope,
  sealEnvelope,
  sealStream,
} from '../src/index.js';
import { aes, chunked, collect, rsa } from './helpers/keys.js';
import { storedPair } from './helpers/layout.js';

const full = { tenant: 't-1', user: 'u-secret-value', purpose: 'orders' };
const reproducedContext = { user: 'u-secret-value' };
const pt = randomBytes(3000);
const seal = (extra: Record<string, unknown> = {}) =>
  sealEnvelope(pt, {
    recipients: [aes, rsa],
    context: full,
    contextNotStored: ['user'],
    frameLength: 1024,
    ...extra,
  });
const opened = async (p: Promise<{ plaintext: Uint8Array }>) => Buffer.from((await p).plaintext);

describe.each([0x0478, 0x0578] as const)('suite %i', (suite) => {
  it('the pair is bound, not stored: opens only with it reproduced, on every recipient and path', async () => {
    const msg = await seal({ suite });
    expect(Buffer.from(msg).includes(Buffer.from('u-secret-value'))).toBe(false);
    expect(Buffer.from(msg).includes(storedPair('tenant', 't-1'))).toBe(true);
    for (const r of [aes, rsa]) {
      const out = await openEnvelope(msg, { trust: [r], reproducedContext });
      expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
      expect({ ...out.context }).toMatchObject(full);
      let info: unknown;
      const streamed = await collect(
        openStream(chunked(msg, 100), { trust: [r], reproducedContext, onHeader: (i) => (info = i) }),
      );
      expect(streamed.equals(pt)).toBe(true);
      expect(info).toMatchObject({ context: full });
    }
    // Raw AES binds the context to its EDK: the unwrap fails. Raw RSA does not: the header's tag,
    // which covers the unstored pair, is what refuses it.
    await expect(openEnvelope(msg, { trust: [aes] })).rejects.toMatchObject({
      name: 'DataKeyUnavailableError',
    });
    await expect(openEnvelope(msg, { trust: [rsa] })).rejects.toMatchObject({ code: 'Integrity' });
    await expect(
      openEnvelope(msg, { trust: [rsa], reproducedContext: { user: 'u-other' } }),
    ).rejects.toMatchObject({ code: 'Integrity' });
    // A pair the sealer never bound, reproduced anyway, fails the same way.
    await expect(
      openEnvelope(msg, { trust: [rsa], reproducedContext: { ...reproducedContext, extra: 'x' } }),
    ).rejects.toMatchObject({ code: 'Integrity' });
  });

  it('streams: sealStream writes the same message shape, openStream needs the pair', async () => {
    const parts: Uint8Array[] = [];
    for await (const p of sealStream(chunked(pt, 700), {
      recipients: [rsa],
      context: full,
      contextNotStored: ['user', 'tenant'],
      suite,
      frameLength: 1024,
    }))
      parts.push(p);
    const msg = Buffer.concat(parts);
    // The pair as a header stores it: three bytes alone turn up in random ciphertext now and then.
    expect(msg.includes(storedPair('tenant', 't-1'))).toBe(false);
    const both = { user: full.user, tenant: full.tenant };
    expect(
      (await collect(openStream(chunked(msg, 333), { trust: [rsa], reproducedContext: both }))).equals(pt),
    ).toBe(true);
    await expect(
      collect(openStream(chunked(msg, 333), { trust: [rsa], reproducedContext })),
    ).rejects.toMatchObject({
      code: 'Integrity',
    });
  });

  it('rewrap keeps the pair bound and unstored (it needs it reproduced)', async () => {
    const msg = await sealEnvelope(pt, {
      recipients: [aes],
      context: full,
      contextNotStored: ['user'],
      suite,
    });
    await expect(rewrapEnvelope(msg, { trust: [aes], add: [rsa] })).rejects.toMatchObject({
      name: 'DataKeyUnavailableError',
    });
    const rewrapped = await rewrapEnvelope(msg, { trust: [aes], add: [rsa], reproducedContext });
    expect(Buffer.from(rewrapped).includes(Buffer.from('u-secret-value'))).toBe(false);
    for (const r of [aes, rsa]) {
      expect((await opened(openEnvelope(rewrapped, { trust: [r], reproducedContext }))).equals(pt)).toBe(
        true,
      );
    }
    await expect(openEnvelope(rewrapped, { trust: [rsa] })).rejects.toMatchObject({ code: 'Integrity' });
  });
});

describe('reproducedContext and contextNotStored, checked', () => {
  it('a reproduced pair that contradicts a stored one is refused before any key is unwrapped', async () => {
    const msg = await seal();
    let unwraps = 0;
    const counting = {
      ...rsa,
      unwrap: (...a: Parameters<typeof rsa.unwrap>) => {
        unwraps++;
        return rsa.unwrap(...a);
      },
    };
    const err = await openEnvelope(msg, {
      trust: [counting],
      reproducedContext: { ...reproducedContext, tenant: 't-2' },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'InvalidCiphertext' });
    expect(String((err as Error).message)).not.toContain('t-1');
    expect(unwraps).toBe(0);
  });

  it('reserved keys, non-contexts and malformed key lists are InvalidArgument', async () => {
    const msg = await seal();
    for (const bad of [{ 'aws-crypto-public-key': 'A' }, 'user=u', 42, [['user', 'u']], { user: 7 }]) {
      await expect(
        openEnvelope(msg, { trust: [rsa], reproducedContext: bad as never }),
        JSON.stringify(bad),
      ).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
    for (const bad of ['user', ['missing'], [7], [undefined], { 0: 'user', length: 1 }]) {
      await expect(seal({ contextNotStored: bad }), JSON.stringify(bad)).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    }
    // Nothing named: the whole context is stored, as without the option.
    const plain = await seal({ contextNotStored: [] });
    expect(Buffer.from(plain).includes(Buffer.from('u-secret-value'))).toBe(true);
    expect((await opened(openEnvelope(plain, { trust: [rsa] }))).equals(pt)).toBe(true);
  });

  it('"__proto__" is an ordinary key to leave out and to reproduce, and a Map works as a context', async () => {
    const context = JSON.parse('{"__proto__": "p", "a": "1"}') as Record<string, string>;
    const msg = await sealEnvelope(pt, { recipients: [rsa], context, contextNotStored: ['__proto__'] });
    const reproduced = JSON.parse('{"__proto__": "p"}') as Record<string, string>;
    const out = await openEnvelope(msg, { trust: [rsa], reproducedContext: reproduced });
    expect(Object.hasOwn(out.context, '__proto__')).toBe(true);
    await expect(openEnvelope(msg, { trust: [rsa] })).rejects.toMatchObject({ code: 'Integrity' });
    const fromMap = await sealEnvelope(pt, {
      recipients: [rsa],
      context: new Map([
        ['k', 'v'],
        ['a', '1'],
      ]) as never,
      contextNotStored: ['k'],
    });
    await expect(
      openEnvelope(fromMap, { trust: [rsa], reproducedContext: new Map([['k', 'v']]) as never }),
    ).resolves.toMatchObject({ context: { k: 'v', a: '1' } });
  });

  it('a data-key cache never serves an open whose reproduced pairs differ', async () => {
    const msg = await seal();
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    expect((await opened(openEnvelope(msg, { trust: [rsa], reproducedContext, cache }))).equals(pt)).toBe(
      true,
    );
    await expect(
      openEnvelope(msg, { trust: [rsa], reproducedContext: { user: 'u-other' }, cache }),
    ).rejects.toMatchObject({ code: 'Integrity' });
    await expect(openEnvelope(msg, { trust: [rsa], cache })).rejects.toMatchObject({ code: 'Integrity' });
  });

  it('sealing through a cache with and without contextNotStored writes each header as asked', async () => {
    const cache = new DataKeyCache({ maxAgeMs: 60_000 });
    const opts = { recipients: [rsa], context: full, cache, plaintextLength: pt.length };
    const hidden = await sealEnvelope(pt, { ...opts, contextNotStored: ['user'] });
    const shown = await sealEnvelope(pt, opts);
    expect(Buffer.from(hidden).includes(Buffer.from('u-secret-value'))).toBe(false);
    expect(Buffer.from(shown).includes(Buffer.from('u-secret-value'))).toBe(true);
    expect((await opened(openEnvelope(hidden, { trust: [rsa], reproducedContext }))).equals(pt)).toBe(true);
    expect((await opened(openEnvelope(shown, { trust: [rsa] }))).equals(pt)).toBe(true);
  });
});
