/**
 * The raw AES recipient's wrapping key: what it accepts, what it refuses, and that it keeps no
 * JavaScript copy of key bytes (in particular none in Node's shared Buffer pool).
 */
import { createSecretKey, generateKeyPairSync, getRandomValues } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openEnvelope, rawAesRecipient, sealEnvelope } from '../src/index.js';

const recipient = (key: unknown) =>
  rawAesRecipient({ namespace: 'keyport-test', name: 'wrapping', key: key as Uint8Array });
const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
};
const pt = new TextEncoder().encode('a data key wrapped and unwrapped');
const opens = async (message: Uint8Array, trust: ReturnType<typeof recipient>) =>
  Buffer.from((await openEnvelope(message, { trust: [trust] })).plaintext).equals(Buffer.from(pt));

describe('raw AES wrapping keys', () => {
  for (const size of [16, 24, 32]) {
    it(`a ${size}-byte key as bytes and as a KeyObject wrap for each other`, async () => {
      const bytes = getRandomValues(new Uint8Array(size));
      const fromBytes = recipient(bytes);
      const fromKeyObject = recipient(createSecretKey(bytes));
      const sealed = await sealEnvelope(pt, { recipients: [fromBytes] });
      expect(await opens(sealed, fromKeyObject)).toBe(true);
      const back = await sealEnvelope(pt, { recipients: [fromKeyObject] });
      expect(await opens(back, fromBytes)).toBe(true);
    });
  }

  it('refuses every other size and type with InvalidArgument', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (const bad of [
      new Uint8Array(0),
      new Uint8Array(15),
      new Uint8Array(31),
      new Uint8Array(33),
      new Uint8Array(64),
      createSecretKey(new Uint8Array(8)),
      createSecretKey(new Uint8Array(64)),
      privateKey,
      publicKey,
      'a'.repeat(32),
      32,
      null,
      undefined,
      { length: 32 },
      new ArrayBuffer(32),
    ]) {
      expect(codeOf(() => recipient(bad))).toBe('InvalidArgument');
    }
  });

  it('copies the key once: the caller may zero its bytes, and no copy lands in the Buffer pool', async () => {
    const bytes = getRandomValues(new Uint8Array(32));
    const keep = Uint8Array.from(bytes);
    const r = recipient(bytes);
    // Node hands out small allocUnsafe buffers from one shared slab (Buffer.poolSize): the one
    // in use now would hold a `Buffer.from(key)` copy made a moment ago.
    const slab = Buffer.from(Buffer.allocUnsafe(1).buffer);
    expect(slab.indexOf(Buffer.from(keep.buffer, keep.byteOffset, keep.length))).toBe(-1);
    bytes.fill(0);
    const sealed = await sealEnvelope(pt, { recipients: [r] });
    expect(await opens(sealed, recipient(keep))).toBe(true);
  });
});
