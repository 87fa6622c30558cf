/**
 * Edge cases of the ESDK specification (aws-encryption-sdk-specification: client-apis/decrypt.md,
 * framework/structures.md), checked on real ESDK output (fixtures/esdk-vectors) where the
 * fixture has what is needed, and on messages keyport seals otherwise.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ByteWriter } from '../src/bytes.js';
import { FrameSealer } from '../src/frames.js';
import { serializeHeaderBody } from '../src/header.js';
import {
  openEnvelope,
  openStream,
  rawAesRecipient,
  rewrapStream,
  sealEnvelope,
  sealStream,
} from '../src/index.js';
import { deriveKeys } from '../src/kdf.js';
import { SUITES } from '../src/suites.js';
import { gcmSeal } from './helpers/gcm.js';
import { aes, aesOther, collect } from './helpers/keys.js';
import { layoutOf } from './helpers/layout.js';
import { nonFramed } from './helpers/non-framed.js';

const dir = new URL('./fixtures/esdk-vectors/', import.meta.url);
const keys = JSON.parse(readFileSync(new URL('keys.json', dir), 'utf8')).keys as Record<
  string,
  { material: string }
>;
/** ESDK vector 6ef11baf: suite 0x0578, raw AES-256 keyring, 10 KiB plaintext in several frames. */
const signedVector = readFileSync(new URL('ciphertexts/6ef11baf-14b0-4421-a685-1fd2ff1a376e', dir));
const signedVectorPlaintext = readFileSync(new URL('plaintexts/small', dir));
const vectorAes = rawAesRecipient({
  namespace: 'aws-raw-vectors-persistent-aes-256',
  name: 'aes-256',
  key: Buffer.from(keys['aes-256']?.material ?? '', 'base64'),
});

/** Opens as a stream; what was emitted before the error, and the error (undefined if none). */
async function streamed(
  msg: Uint8Array,
  trust: Parameters<typeof openStream>[1]['trust'],
  concurrency?: number,
): Promise<{ emitted: Buffer; error: unknown }> {
  const parts: Buffer[] = [];
  try {
    const options = concurrency === undefined ? { trust } : { trust, concurrency };
    for await (const p of openStream([msg], options)) parts.push(Buffer.from(p));
    return { emitted: Buffer.concat(parts), error: undefined };
  } catch (error) {
    return { emitted: Buffer.concat(parts), error };
  }
}

/** A copy of `msg` with the last byte of its footer (the DER signature) changed. */
function badSignature(msg: Uint8Array): Buffer {
  const out = Buffer.from(msg);
  out[out.length - 1] = (out[out.length - 1] as number) ^ 0x01;
  return out;
}

describe('signed suites: the final frame waits for the signature (decrypt.md)', () => {
  it('a real ESDK 0x0578 message streams whole; with a bad signature its final frame is never released', async () => {
    const good = await streamed(signedVector, [vectorAes]);
    expect(good.error).toBeUndefined();
    expect(good.emitted.equals(signedVectorPlaintext)).toBe(true);

    const layout = layoutOf(signedVector);
    const final = layout.frames.at(-1);
    expect(layout.frames.length).toBeGreaterThan(1);
    expect(final?.contentLength).toBeGreaterThan(0);
    const bad = await streamed(badSignature(signedVector), [vectorAes]);
    expect(bad.error).toMatchObject({ code: 'InvalidCiphertext' });
    // Regular frames may be out (the spec's SHOULD); the final frame's content may not.
    const regular = signedVectorPlaintext.length - (final?.contentLength ?? 0);
    expect(bad.emitted.length).toBeLessThanOrEqual(regular);
    expect(bad.emitted.equals(signedVectorPlaintext.subarray(0, bad.emitted.length))).toBe(true);
  });

  it('a one-frame signed message with a bad signature releases nothing', async () => {
    const pt = Buffer.from('a whole message in its final frame');
    const msg = await sealEnvelope(pt, { recipients: [aes], suite: 0x0578 });
    const bad = await streamed(badSignature(msg), [aes]);
    expect(bad.error).toMatchObject({ code: 'InvalidCiphertext' });
    expect(bad.emitted.length).toBe(0);
    expect((await collect(openStream([msg], { trust: [aes] }))).equals(pt)).toBe(true);
  });

  it('with frames in flight (concurrency 2) the final frame is held too', async () => {
    const frameLength = 64 * 1024;
    const pt = Buffer.alloc(3 * frameLength + 100, 7);
    const msg = await sealEnvelope(pt, { recipients: [aes], suite: 0x0578, frameLength, concurrency: 1 });
    const bad = await streamed(badSignature(msg), [aes], 2);
    expect(bad.error).toMatchObject({ code: 'InvalidCiphertext' });
    expect(bad.emitted.length).toBeLessThanOrEqual(3 * frameLength);
    const good = await streamed(msg, [aes], 2);
    expect(good.error).toBeUndefined();
    expect(good.emitted.equals(pt)).toBe(true);
  });

  it('a signed non-framed body is held until the signature verifies', async () => {
    const pt = Buffer.from('a non-framed body, signed');
    const msg = await nonFramed(pt, 0x0578);
    expect((await collect(openStream([msg], { trust: [aes] }))).equals(pt)).toBe(true);
    const bad = await streamed(badSignature(msg), [aes]);
    expect(bad.error).toMatchObject({ code: 'InvalidCiphertext' });
    expect(bad.emitted.length).toBe(0);
  });

  it('trailing bytes after a signed message: the final frame is not released either', async () => {
    const pt = Buffer.from('one frame');
    const msg = await sealEnvelope(pt, { recipients: [aes], suite: 0x0578 });
    const bad = await streamed(Buffer.concat([msg, Buffer.of(0)]), [aes]);
    expect(bad.error).toMatchObject({ code: 'InvalidCiphertext' });
    expect(bad.emitted.length).toBe(0);
  });
});

describe('encryption context text is read byte for byte', () => {
  it('a key or value starting with U+FEFF (a byte order mark) keeps it, and the message opens', async () => {
    const context = { '\uFEFFtenant': 't-1', purpose: '\uFEFForders' };
    const msg = await sealEnvelope(Buffer.from('x'), { recipients: [aes], context });
    const out = await openEnvelope(msg, { trust: [aes] });
    expect(out.context).toEqual(context);
    // The context the sealer wrote is not the one without the marks.
    await expect(
      openEnvelope(msg, { trust: [aes], requiredContext: { purpose: 'orders' } }),
    ).rejects.toMatchObject({ code: 'InvalidCiphertext' });
  });
});

describe('a source cutting the message into 1-byte chunks', () => {
  /** Yields `msg` one byte at a time, each byte its own new view. */
  async function* bytewise(msg: Uint8Array): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < msg.length; i++) yield msg.subarray(i, i + 1);
  }

  it('rewrap buffers a frame in about its own size, not an object per chunk', async () => {
    const frameLength = 1024 * 1024;
    const pt = Buffer.alloc(frameLength, 1);
    const msg = await sealEnvelope(pt, { recipients: [aes], frameLength, concurrency: 1 });
    const before = process.memoryUsage().heapUsed;
    let grown = 0;
    const out: Uint8Array[] = [];
    for await (const piece of rewrapStream(bytewise(msg), { trust: [aes], add: [aesOther] })) {
      // Measured while rewrap still holds the frame's chunks (it consumes them after the yield).
      grown = Math.max(grown, process.memoryUsage().heapUsed - before);
      out.push(piece);
    }
    // A view object per byte is ~100 MiB for this 1 MiB frame; joined, it is the frame itself
    // plus collectable garbage of the iteration.
    expect(grown).toBeLessThan(48 * 1024 * 1024);
    const back = await openEnvelope(Buffer.concat(out), { trust: [aesOther] });
    expect(Buffer.from(back.plaintext).equals(pt)).toBe(true);
  }, 60_000);

  it('openStream holds a frame as a few pieces, not a plaintext Buffer per byte, until its tag verifies', async () => {
    // Every piece of a frame is held until the tag verifies, and the tag comes last: one 1-byte
    // Buffer per byte was ~250 MB of heap for a 1 MiB frame, gigabytes at the 64 MiB limit, and
    // a replayed authentic header followed by junk was enough (the junk fails only at the tag).
    const frameLength = 64 * 1024;
    const pt = randomBytes(2 * frameLength + 100);
    for (const suite of [0x0478, 0x0578] as const) {
      const msg = await sealEnvelope(pt, { recipients: [aes], frameLength, suite, concurrency: 1 });
      const pieces: Uint8Array[] = [];
      for await (const p of openStream(bytewise(msg), { trust: [aes] })) pieces.push(Buffer.from(p));
      expect(Buffer.concat(pieces).equals(pt)).toBe(true);
      // Small chunks are gathered (512 bytes at least) before they are decrypted.
      expect(pieces.length).toBeLessThan((3 * frameLength) / 512);
    }
  }, 60_000);

  it('sealStream gathers them: a few output pieces per frame, not one per chunk', async () => {
    const frameLength = 64 * 1024;
    const pt = randomBytes(2 * frameLength + 100);
    for (const concurrency of [1, 2]) {
      const pieces: Uint8Array[] = [];
      for await (const p of sealStream(bytewise(pt), { recipients: [aes], frameLength, concurrency }))
        pieces.push(Buffer.from(p));
      // Before: a cipher call, a view held until the frame was complete, and an output piece per byte.
      expect(pieces.length).toBeLessThan((3 * frameLength) / 512);
      const back = await openEnvelope(Buffer.concat(pieces), { trust: [aes] });
      expect(Buffer.from(back.plaintext).equals(pt)).toBe(true);
    }
  }, 60_000);

  it('sealStream cuts a frame off a million 1-byte chunks in linear time', async () => {
    // Before: a `shift` per chunk off a million-entry list, minutes for this one frame.
    const pt = randomBytes(1024 * 1024 + 1);
    const started = performance.now();
    const msg = await collect(sealStream(bytewise(pt), { recipients: [aes] }));
    expect(performance.now() - started).toBeLessThan(30_000);
    const back = await openEnvelope(msg, { trust: [aes] });
    expect(Buffer.from(back.plaintext).equals(pt)).toBe(true);
  }, 60_000);
});

/**
 * A whole 0x0478 message with an authentic header tag and commitment over the given raw fields
 * (one empty final frame when framed, frame length 16): a check removed from the parser would
 * let it open, so each refusal below is the parser's.
 */
async function authentic(fields: {
  contextBytes?: Uint8Array;
  contentType?: 1 | 2;
  frameLength?: number;
  /** The context the raw AES EDK is bound to (the parsed `contextBytes`). */
  wrapContext?: Record<string, string>;
}): Promise<Buffer> {
  const suite = SUITES.get(0x0478);
  if (suite === undefined) throw new Error('suite');
  const dataKey = randomBytes(32);
  const messageId = randomBytes(32);
  const d = deriveKeys(suite, dataKey, messageId);
  const edk = await aes.wrap(dataKey, fields.wrapContext ?? {}, {});
  const frameLength = fields.frameLength ?? 16;
  const body = serializeHeaderBody({
    suite,
    messageId,
    contextBytes: fields.contextBytes ?? new Uint8Array(0),
    encryptedDataKeys: [edk],
    contentType: fields.contentType ?? 2,
    frameLength,
    suiteData: d.commitKey,
  });
  const tag = gcmSeal(d.key, new Uint8Array(12), body, new Uint8Array(0)).tag;
  const frame = new FrameSealer(d.key, messageId, Math.max(frameLength, 1)).frame(new Uint8Array(0), true);
  return Buffer.concat([body, tag, frame]);
}

const refusal = (msg: Uint8Array) =>
  openEnvelope(msg, { trust: [aes] }).then(
    () => 'opened',
    (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
  );

/** A serialized context from raw key and value bytes, in the given order. */
function rawContext(
  pairs: ReadonlyArray<readonly [Uint8Array, Uint8Array]>,
  count = pairs.length,
): Uint8Array {
  const w = new ByteWriter().u16(count);
  for (const [k, v] of pairs) w.short(k).short(v);
  return w.finish();
}
const text = (s: string) => Buffer.from(s, 'utf8');

describe('header fields against the specification (authentic tags)', () => {
  it('the helper builds messages that open', async () => {
    expect(await refusal(await authentic({}))).toBe('opened');
    const contextBytes = rawContext([[text('a'), text('1')]]);
    expect(await refusal(await authentic({ contextBytes, wrapContext: { a: '1' } }))).toBe('opened');
  });

  it('an empty context is zero bytes: a pair count of 0 is refused (structures.md: MUST be > 0)', async () => {
    expect(await refusal(await authentic({ contextBytes: rawContext([], 0) }))).toMatch(
      /^InvalidCiphertext: .*zero pair count/,
    );
  });

  it('duplicate context keys are refused', async () => {
    const ctx = rawContext([
      [text('a'), text('1')],
      [text('a'), text('2')],
    ]);
    expect(await refusal(await authentic({ contextBytes: ctx }))).toMatch(
      /^InvalidCiphertext: duplicate key/,
    );
  });

  it('context text that is not UTF-8 (overlong, surrogate, stray continuation, truncated) is refused', async () => {
    for (const bad of [
      Buffer.of(0xc0, 0xaf),
      Buffer.of(0xed, 0xa0, 0x80),
      Buffer.of(0x80),
      Buffer.of(0xe2, 0x82),
    ]) {
      for (const ctx of [rawContext([[bad, text('v')]]), rawContext([[text('k'), bad]])]) {
        expect(await refusal(await authentic({ contextBytes: ctx }))).toMatch(
          /^InvalidCiphertext: .*not valid UTF-8/,
        );
      }
    }
  });

  it('a provider id that is not UTF-8 is refused; provider info is bytes', async () => {
    const msg = await authentic({});
    // The provider id "keyport-test" (12 bytes) follows the context length (2) and EDK count (2).
    const at = 1 + 2 + 32 + 2 + 2 + 2;
    expect(msg.subarray(at, at + 12).toString()).toBe('keyport-test');
    const bad = Buffer.from(msg);
    bad[at] = 0xff;
    expect(await refusal(bad)).toMatch(/^InvalidCiphertext: .*not valid UTF-8/);
  });

  it('content type and frame length: non-framed needs 0, framed needs more than 0', async () => {
    expect(await refusal(await authentic({ contentType: 2, frameLength: 0 }))).toMatch(/frame length 0/);
    expect(await refusal(await authentic({ contentType: 1, frameLength: 16 }))).toMatch(
      /non-framed message must have frame length 0/,
    );
  });

  it('trailing bytes after an unsigned message are refused by the stream too', async () => {
    const msg = await sealEnvelope(Buffer.from('x'), { recipients: [aes] });
    await expect(collect(openStream([msg, Buffer.of(0)], { trust: [aes] }))).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
  });
});
