/**
 * Rewrap against messages it must refuse: the refusal comes once the header is authenticated
 * (which takes the data key: one unwrap) and before any key is wrapped (each a billed KMS call,
 * or a private-key operation), and no wrap is left running (or rejecting unhandled, which ends a
 * Node process) after the rewrap has failed.
 */
import { randomBytes } from 'node:crypto';
import { type KeyOperations, KeyportError } from '@keyport/core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { serializeContext } from '../src/context-codec.js';
import { type EncryptedDataKey, parseHeader } from '../src/header.js';
import { openEnvelope, type Recipient, rewrapEnvelope, sealEnvelope } from '../src/index.js';
import { deriveKeys } from '../src/kdf.js';
import { resolveLimits } from '../src/limits.js';
import { SUITES } from '../src/suites.js';
import { gcmSeal } from './helpers/gcm.js';
import { aes, aesOther } from './helpers/keys.js';
import { type LocalKms, localKms } from './helpers/local-kms.js';

let kms: LocalKms;
beforeAll(async () => {
  kms = await localKms(1);
});
afterAll(async () => {
  await kms?.close();
});

/** Rejections nobody handled while a test ran (an orphaned wrap's failure lands here). */
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => {
  unhandled.push(reason);
};
beforeEach(() => {
  unhandled.length = 0;
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
});

/** The same recipient, counting its unwrap and wrap calls. */
function counted(r: Recipient): { recipient: Recipient; calls: { unwrap: number; wrap: number } } {
  const calls = { unwrap: 0, wrap: 0 };
  return {
    recipient: {
      id: r.id,
      matches: (edk) => r.matches(edk),
      wrap: (k, c, e) => {
        calls.wrap++;
        return r.wrap(k, c, e);
      },
      unwrap: (edk, c, e) => {
        calls.unwrap++;
        return r.unwrap(edk, c, e);
      },
    },
    calls,
  };
}

/** `keys` whose decrypt works and whose encrypt is denied a moment later (a decrypt-only role). */
function decryptOnly(inner: KeyOperations): { keys: KeyOperations; calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const keys = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return async (...args: unknown[]) => {
        calls[String(prop)] = (calls[String(prop)] ?? 0) + 1;
        if (prop === 'encrypt' || prop === 'generateDataKey') {
          await new Promise((resolve) => setTimeout(resolve, 5));
          throw new KeyportError('AccessDenied', 'not allowed to encrypt with this key');
        }
        return v.apply(target, args);
      };
    },
  });
  return { keys, calls };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

/** An authentic v1 (suite 0x0178, non-committing) header for `aes`; no body is needed. */
async function v1Message(): Promise<Buffer> {
  const suite = SUITES.get(0x0178);
  if (suite === undefined) throw new Error('no suite');
  const dataKey = randomBytes(32);
  const messageId = randomBytes(16);
  const context = { purpose: 'v1' };
  const edk: EncryptedDataKey = await aes.wrap(dataKey, context, {});
  const contextBytes = serializeContext(context);
  const u16 = (n: number) => Buffer.of(n >> 8, n & 0xff);
  const field = (b: Uint8Array) => Buffer.concat([u16(b.length), b]);
  const body = Buffer.concat([
    Buffer.of(1, 0x80, 0x01, 0x78),
    messageId,
    field(contextBytes),
    u16(1),
    field(Buffer.from(edk.providerId, 'utf8')),
    field(edk.providerInfo),
    field(edk.ciphertext),
    Buffer.of(2, 0, 0, 0, 0, 12, 0, 0, 0x10, 0), // framed, reserved, IV length 12, 4096-byte frames
  ]);
  const iv = randomBytes(12);
  const { tag } = gcmSeal(deriveKeys(suite, dataKey, messageId).key, iv, body, new Uint8Array(0));
  const msg = Buffer.concat([body, iv, tag]);
  expect(parseHeader(msg, resolveLimits())?.suite.id).toBe(0x0178);
  return msg;
}

describe('rewrap refuses before any wrap', () => {
  it('a signed message with a kept EDK no recipient can wrap again: no KMS call, none left running', async () => {
    // Sealed to a KMS key, `aes`, and `aesOther`, which the rewrap below neither trusts nor adds.
    const msg = await sealEnvelope(randomBytes(100), {
      recipients: [kms.uris[0] as string, aes, aesOther],
      suite: 0x0578,
      keys: kms.keys,
    });
    const raw = counted(aes);
    const { keys, calls } = decryptOnly(kms.keys);
    const err = await rewrapEnvelope(msg, { trust: [raw.recipient, kms.uris[0] as string], keys }).catch(
      (e: unknown) => e,
    );
    expect((err as KeyportError).code).toBe('InvalidArgument');
    await settle();
    // Before: the kept KMS EDK's wrap was started, then abandoned when the next EDK had no
    // recipient: a billed Encrypt after the rewrap had failed, whose denial nobody handled.
    expect(calls.encrypt).toBeUndefined();
    expect(raw.calls.wrap).toBe(0);
    expect(unhandled).toEqual([]);
  });

  it('a v1 message: refused before anything is wrapped', async () => {
    const msg = await v1Message();
    const raw = counted(aes);
    expect(await codeOf(rewrapEnvelope(msg, { trust: [raw.recipient], add: [aesOther] }))).toBe(
      'InvalidArgument',
    );
    expect(raw.calls.wrap).toBe(0);
  });

  it('a rewrap that would leave no recipient: refused before anything is wrapped', async () => {
    const msg = await sealEnvelope(randomBytes(10), { recipients: [aes] });
    const raw = counted(aes);
    expect(await codeOf(rewrapEnvelope(msg, { trust: [raw.recipient], remove: [aes] }))).toBe(
      'InvalidArgument',
    );
    expect(raw.calls.wrap).toBe(0);
  });

  it("a header changed in transit fails its tag (Integrity), never as a refusal of the caller's options", async () => {
    // aesOther's EDK renamed (aes-2 -> aes-3): decided from the unauthenticated header, "no
    // recipient can wrap it again" would blame the caller's trust for a tampered message.
    const msg = Buffer.from(
      await sealEnvelope(randomBytes(10), { recipients: [aes, aesOther], suite: 0x0578 }),
    );
    const at = msg.indexOf(Buffer.from('aes-2'));
    expect(at).toBeGreaterThan(0);
    msg[at + 4] = '3'.charCodeAt(0);
    // The header's tag fails: Integrity, as an open of the same message says.
    expect(await codeOf(rewrapEnvelope(msg, { trust: [aes, aesOther] }))).toBe('Integrity');
  });

  it('the refusals above still let a good rewrap through (signed, every kept EDK trusted)', async () => {
    const pt = randomBytes(100);
    const msg = await sealEnvelope(pt, { recipients: [aes, aesOther], suite: 0x0578 });
    const raw = counted(aes);
    const out = await rewrapEnvelope(msg, { trust: [raw.recipient, aesOther] });
    expect(raw.calls).toEqual({ unwrap: 1, wrap: 1 });
    expect(parseHeader(out, resolveLimits())?.encryptedDataKeys).toHaveLength(2);
  });

  it('a custom recipient whose wrap throws synchronously fails the rewrap, nothing left unhandled', async () => {
    const msg = await sealEnvelope(randomBytes(100), {
      recipients: [kms.uris[0] as string, aes],
      suite: 0x0578,
      keys: kms.keys,
    });
    const { keys, calls } = decryptOnly(kms.keys);
    const throwing: Recipient = {
      id: 'custom:throws',
      matches: (edk) => aes.matches(edk),
      unwrap: (edk, c, e) => aes.unwrap(edk, c, e),
      wrap: () => {
        throw new KeyportError('Unavailable', 'the HSM is gone');
      },
    };
    const err = await rewrapEnvelope(msg, { trust: [throwing, kms.uris[0] as string], keys }).catch(
      (e: unknown) => e,
    );
    expect((err as KeyportError).code).toBe('Unavailable');
    await settle();
    expect(calls.decrypt ?? 0).toBe(0);
    expect(unhandled).toEqual([]);
  });
});

/** `aes`, whose wrap returns the same EDK every time (a sender repeating one EDK in its header). */
function repeating(): Recipient {
  let edk: Promise<EncryptedDataKey> | undefined;
  return {
    id: 'custom:repeating',
    matches: (e) => aes.matches(e),
    unwrap: (e, c, env) => aes.unwrap(e, c, env),
    wrap: (k, c, env) => {
      edk ??= aes.wrap(k, c, env);
      return edk;
    },
  };
}

const edksOf = (msg: Uint8Array) =>
  parseHeader(msg, resolveLimits({ maxEncryptedDataKeys: 0xffff }))?.encryptedDataKeys ?? [];

describe('rewrap keeps each key once, and never writes more EDKs than open reads', () => {
  it('a signed message repeating one EDK 16 times: one wrap, not 16, and one EDK kept', async () => {
    const r = repeating();
    const pt = randomBytes(100);
    const msg = await sealEnvelope(pt, {
      recipients: Array.from({ length: 16 }, () => r),
      suite: 0x0578,
      dataKeySource: 'local',
    });
    expect(edksOf(msg)).toHaveLength(16);
    const raw = counted(aes);
    const out = await rewrapEnvelope(msg, { trust: [raw.recipient], add: [aesOther] });
    // Before: every copy was wrapped again, a billed call each for a KMS key.
    expect(raw.calls).toEqual({ unwrap: 1, wrap: 1 });
    expect(edksOf(out)).toHaveLength(2);
    for (const trust of [aes, aesOther])
      expect(Buffer.from((await openEnvelope(out, { trust: [trust] })).plaintext).equals(pt)).toBe(true);
  });

  it('unsigned: byte-identical copies of a kept EDK are written once', async () => {
    const r = repeating();
    const msg = await sealEnvelope(randomBytes(10), {
      recipients: [r, r, r, r],
      dataKeySource: 'local',
    });
    expect(edksOf(msg)).toHaveLength(4);
    expect(edksOf(await rewrapEnvelope(msg, { trust: [aes], add: [aesOther] }))).toHaveLength(2);
  });

  it('signed: a key both kept and added is wrapped once', async () => {
    const msg = await sealEnvelope(randomBytes(10), { recipients: [aes, aesOther], suite: 0x0578 });
    const other = counted(aesOther);
    const out = await rewrapEnvelope(msg, { trust: [aes], add: [other.recipient] });
    expect(other.calls.wrap).toBe(1);
    expect(edksOf(out).map((e) => Buffer.from(e.providerInfo).subarray(0, 5).toString())).toEqual([
      'aes-1',
      'aes-2',
    ]);
  });

  it('unsigned: adding a recipient the message already has asks it nothing and adds no EDK', async () => {
    const pt = randomBytes(10);
    const msg = await sealEnvelope(pt, { recipients: [aes, aesOther] });
    const again = counted(aesOther);
    // Before: a second aesOther EDK each time (a nightly add of the same key filled the limit).
    const out = await rewrapEnvelope(msg, { trust: [aes], add: [again.recipient] });
    expect(again.calls.wrap).toBe(0);
    expect(edksOf(out)).toHaveLength(2);
    expect(Buffer.from((await openEnvelope(out, { trust: [aesOther] })).plaintext).equals(pt)).toBe(true);
    // Named in remove and add, it wraps afresh: one new EDK in place of the old one.
    const fresh = counted(aesOther);
    const renewed = await rewrapEnvelope(msg, { trust: [aes], remove: [aesOther], add: [fresh.recipient] });
    expect(fresh.calls.wrap).toBe(1);
    expect(edksOf(renewed)).toHaveLength(2);
    expect(Buffer.from((await openEnvelope(renewed, { trust: [aesOther] })).plaintext).equals(pt)).toBe(true);
  });

  it('a recipient named twice in add is asked once (signed and unsigned)', async () => {
    for (const suite of [0x0478, 0x0578] as const) {
      const msg = await sealEnvelope(randomBytes(10), { recipients: [aes], suite });
      const other = counted(aesOther);
      const out = await rewrapEnvelope(msg, { trust: [aes], add: [other.recipient, other.recipient] });
      expect(other.calls.wrap).toBe(1);
      expect(edksOf(out)).toHaveLength(2);
    }
  });

  it('a rewrap that would write more EDKs than maxEncryptedDataKeys is refused before any wrap', async () => {
    // 16 EDKs: the default limit, which open (and this rewrap) still reads.
    const msg = await sealEnvelope(randomBytes(10), { recipients: Array.from({ length: 16 }, () => aes) });
    const other = counted(aesOther);
    // Before: a 17-EDK message was written, which every open at the default limits refuses.
    expect(await codeOf(rewrapEnvelope(msg, { trust: [aes], add: [other.recipient] }))).toBe(
      'InvalidArgument',
    );
    expect(other.calls.wrap).toBe(0);
    // With the limit raised (for the rewrap, and then for its readers) it is written.
    const out = await rewrapEnvelope(msg, { trust: [aes], add: [aesOther], maxEncryptedDataKeys: 17 });
    expect(edksOf(out)).toHaveLength(17);
    expect(await codeOf(openEnvelope(out, { trust: [aesOther] }))).toBe('InvalidCiphertext');
    expect(await codeOf(openEnvelope(out, { trust: [aesOther], maxEncryptedDataKeys: 17 }))).toBe('ok');
  });
});
