/**
 * Hostile streams: memory and work stay bounded whatever the sender claims or however it cuts
 * the bytes. Sources count what they hand out, so "bounded" is checked in bytes, not time.
 * `parseHeader` is wrapped (same implementation, counted) to check the header is not parsed
 * again after every tiny chunk.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { ByteWriter } from '../src/bytes.js';
import { serializeContext } from '../src/context-codec.js';
import * as headerModule from '../src/header.js';
import { CONTENT_FRAMED, CONTENT_NON_FRAMED, serializeHeaderBody } from '../src/header.js';
import { openStream, rewrapStream, sealEnvelope } from '../src/index.js';
import { deriveKeys } from '../src/kdf.js';
import { SUITES } from '../src/suites.js';
import { gcmSeal } from './helpers/gcm.js';
import { aes, aesOther, collect } from './helpers/keys.js';

vi.mock('../src/header.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/header.js')>();
  return { ...real, parseHeader: vi.fn(real.parseHeader) };
});
const parseCalls = () => vi.mocked(headerModule.parseHeader).mock.calls.length;

/** Yields `prefix`, then zero-filled chunks forever; `pulled` counts bytes handed out. */
function endless(prefix: Uint8Array, chunk = 64 * 1024) {
  const counter = { pulled: 0 };
  async function* gen() {
    counter.pulled += prefix.length;
    yield prefix;
    for (;;) {
      counter.pulled += chunk;
      yield new Uint8Array(chunk);
    }
  }
  return { source: gen(), counter };
}

/** An authentic header (valid tag and commitment) with the given content type and frame length. */
async function authenticHeader(contentType: 1 | 2, frameLength: number): Promise<Buffer> {
  const suite = SUITES.get(0x0478);
  if (suite === undefined) throw new Error('suite');
  const dataKey = randomBytes(32);
  const messageId = randomBytes(32);
  const d = deriveKeys(suite, dataKey, messageId);
  const body = serializeHeaderBody({
    suite,
    messageId,
    contextBytes: serializeContext({}),
    encryptedDataKeys: [await aes.wrap(dataKey, {}, {})],
    contentType,
    frameLength,
    suiteData: d.commitKey,
  });
  return Buffer.concat([body, gcmSeal(d.key, new Uint8Array(12), body, new Uint8Array(0)).tag]);
}

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

describe('hostile streams', () => {
  it('a 1 MiB header trickled in 16-byte chunks is parsed a logarithmic number of times', async () => {
    const w = new ByteWriter().u8(2).u16(0x0478).bytes(randomBytes(32)).u16(0);
    const edks = 12_000;
    w.u16(edks);
    for (let i = 0; i < edks; i++) w.short(Buffer.from('x')).short(randomBytes(40)).short(randomBytes(40));
    const msg = w.u8(2).u32(4096).bytes(randomBytes(32)).bytes(randomBytes(16)).finish();
    expect(msg.length).toBeGreaterThan(1_000_000);
    async function* trickle() {
      for (let i = 0; i < msg.length; i += 16) yield msg.subarray(i, i + 16);
    }
    const before = parseCalls();
    // Before the fix: one full re-parse per chunk, 65,000 of them (minutes of CPU).
    expect(await code(collect(openStream(trickle(), { trust: [aes] })))).toBe('InvalidCiphertext');
    expect(parseCalls() - before).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(msg.length)));
  });

  it('a header claiming a 4 GiB frame is refused before any body byte is buffered', async () => {
    const stub = new ByteWriter().u8(2).u16(0x0478).bytes(randomBytes(32)).u16(0).u16(1);
    stub.short(Buffer.from('keyport-test')).short(randomBytes(28)).short(randomBytes(48));
    const header = stub.u8(2).u32(0xffff_ffff).bytes(randomBytes(32)).bytes(randomBytes(16)).finish();
    const { source, counter } = endless(header);
    expect(await code(collect(openStream(source, { trust: [aes] })))).toBe('InvalidCiphertext');
    expect(counter.pulled).toBe(header.length);
  });

  it('an authentic header then endless garbage: at most one frame is buffered', async () => {
    const frameLength = 256 * 1024;
    const header = await authenticHeader(CONTENT_FRAMED, frameLength);
    const seq1 = Buffer.alloc(16);
    seq1.writeUInt32BE(1, 0); // frame 1, zero IV, then zeros as content and tag
    const { source, counter } = endless(Buffer.concat([header, seq1]));
    expect(await code(collect(openStream(source, { trust: [aes] })))).toBe('Integrity');
    expect(counter.pulled).toBeLessThanOrEqual(header.length + frameLength + 2 * 64 * 1024);
  });

  it('a final frame claiming 4 GiB of content is refused before it is buffered', async () => {
    const msg = Buffer.from(await sealEnvelope(randomBytes(10), { recipients: [aes], frameLength: 64 }));
    const finalAt = msg.length - (24 + 10 + 16);
    msg.writeUInt32BE(0xffff_ffff, finalAt + 20);
    const { source, counter } = endless(msg.subarray(0, finalAt + 24));
    expect(await code(collect(openStream(source, { trust: [aes] })))).toBe('InvalidCiphertext');
    expect(counter.pulled).toBe(finalAt + 24);
  });

  it('a non-framed body claiming 2^53 bytes is refused by open and by rewrap before buffering', async () => {
    const header = await authenticHeader(CONTENT_NON_FRAMED, 0);
    const bodyHead = Buffer.alloc(20);
    bodyHead.writeUInt32BE(0x1f_ffff, 12); // length high word: 2^53 - 1 bytes in all
    bodyHead.writeUInt32BE(0xffff_ffff, 16);
    const prefix = Buffer.concat([header, bodyHead]);
    const opened = endless(prefix);
    expect(await code(collect(openStream(opened.source, { trust: [aes] })))).toBe('InvalidCiphertext');
    expect(opened.counter.pulled).toBe(prefix.length);
    // rewrap copies the body without decrypting it; before the fix it buffered without bound.
    const rewrapped = endless(prefix);
    const err = await code(collect(rewrapStream(rewrapped.source, { trust: [aes], add: [aesOther] })));
    expect(err).toBe('InvalidCiphertext');
    expect(rewrapped.counter.pulled).toBe(prefix.length);
  });
});
