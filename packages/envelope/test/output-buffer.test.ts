/**
 * `output`: sealEnvelope and openEnvelope write into memory the caller reuses. The result is a
 * view of `output` when it fits and new memory otherwise; bad `output` is refused before any
 * work; a failed open leaves no plaintext in `output`; streams refuse the option.
 */
import { randomBytes } from 'node:crypto';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { openEnvelope, openStream, type Recipient, sealEnvelope, sealStream } from '../src/index.js';
import { PARALLEL_MIN_BYTES } from '../src/parallel.js';
import { aes, collect, flip } from './helpers/keys.js';
import { nonFramed } from './helpers/non-framed.js';

const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: { code?: string; message?: string }) => e,
  );
const SENTINEL = 0xa5;
const sentinel = (n: number) => Buffer.alloc(n, SENTINEL);
const untouched = (b: Uint8Array) => b.every((x) => x === SENTINEL);

/** A raw AES recipient that counts its calls (to see that a refused call did no work). */
function counted(): { recipient: Recipient; calls: () => number } {
  let calls = 0;
  const recipient: Recipient = {
    id: aes.id,
    wrap: (k, c, e) => {
      calls++;
      return aes.wrap(k, c, e);
    },
    matches: (edk) => aes.matches(edk),
    unwrap: (edk, c, e) => {
      calls++;
      return aes.unwrap(edk, c, e);
    },
  };
  return { recipient, calls: () => calls };
}

describe('sealEnvelope output', () => {
  for (const suite of [0x0478, 0x0578] as const) {
    for (const [what, size, frameLength] of [
      ['empty', 0, 4096],
      ['one partial frame', 1000, 4096],
      ['frames and a partial final frame', 3 * 4096 + 17, 4096],
      ['an exact multiple of the frame length', 2 * 4096, 4096],
    ] as const) {
      it(`suite ${suite.toString(16)}, ${what}: the message is a view of output and opens`, async () => {
        const pt = randomBytes(size);
        const output = Buffer.alloc(size + 64 * 1024);
        const msg = await sealEnvelope(pt, { recipients: [aes], suite, frameLength, output });
        expect(msg.buffer).toBe(output.buffer);
        expect(msg.byteOffset).toBe(output.byteOffset);
        const fresh = await sealEnvelope(pt, { recipients: [aes], suite, frameLength });
        if (suite === 0x0478) expect(msg.length).toBe(fresh.length);
        const opened = await openEnvelope(msg, { trust: [aes] });
        expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
        // A view: writing output changes the message.
        output[0] = (output[0] as number) ^ 0xff;
        expect(msg[0]).toBe(output[0]);
      });
    }
  }

  it('reused across calls: each result is valid until output is written again', async () => {
    const output = Buffer.alloc(64 * 1024);
    for (let i = 0; i < 5; i++) {
      const pt = randomBytes(1000 + i * 997);
      const msg = await sealEnvelope(pt, { recipients: [aes], output });
      expect(msg.buffer).toBe(output.buffer);
      const opened = await openEnvelope(msg, { trust: [aes] });
      expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
    }
  });

  it('a plain Uint8Array and a view into the middle of a larger buffer work as output', async () => {
    const pt = randomBytes(5000);
    const plain = new Uint8Array(8192);
    const m1 = await sealEnvelope(pt, { recipients: [aes], output: plain });
    expect(m1.buffer).toBe(plain.buffer);
    const big = sentinel(3 * 8192);
    const middle = big.subarray(8192, 2 * 8192);
    const m2 = await sealEnvelope(pt, { recipients: [aes], output: middle });
    expect(m2.byteOffset).toBe(middle.byteOffset);
    expect(untouched(big.subarray(0, 8192))).toBe(true);
    expect(untouched(big.subarray(8192 + m2.length))).toBe(true);
    for (const m of [m1, m2]) {
      expect(Buffer.from((await openEnvelope(m, { trust: [aes] })).plaintext).equals(pt)).toBe(true);
    }
  });

  it('too small: a new buffer, output untouched', async () => {
    const pt = randomBytes(5000);
    for (const output of [sentinel(0), sentinel(100), sentinel(5000)]) {
      const msg = await sealEnvelope(pt, { recipients: [aes], output });
      expect(msg.buffer).not.toBe(output.buffer);
      expect(untouched(output)).toBe(true);
      expect(Buffer.from((await openEnvelope(msg, { trust: [aes] })).plaintext).equals(pt)).toBe(true);
    }
  });

  it('signed suite: room for the largest signature is needed, the message is its exact length', async () => {
    const pt = randomBytes(3000);
    const probe = await sealEnvelope(pt, { recipients: [aes], suite: 0x0578 });
    // The footer is u16 length || DER signature (at most 104 bytes): an output of the length one
    // message had fits another only when room for the largest footer is left.
    const tight = sentinel(probe.length);
    const msg = await sealEnvelope(pt, { recipients: [aes], suite: 0x0578, output: tight });
    const roomy = sentinel(probe.length + 106);
    const inRoomy = await sealEnvelope(pt, { recipients: [aes], suite: 0x0578, output: roomy });
    expect(inRoomy.buffer).toBe(roomy.buffer);
    for (const m of [msg, inRoomy]) {
      expect(Buffer.from((await openEnvelope(m, { trust: [aes] })).plaintext).equals(pt)).toBe(true);
    }
  });

  it('output overlapping the plaintext is refused before any recipient is called', async () => {
    const { recipient, calls } = counted();
    const whole = randomBytes(30_000);
    const pt = whole.subarray(0, 10_000);
    for (const output of [whole, whole.subarray(9_999), whole.subarray(5_000, 6_000), pt]) {
      const e = await errorOf(sealEnvelope(pt, { recipients: [recipient], output }));
      expect(e?.code).toBe('InvalidArgument');
      expect(e?.message).toMatch(/output must not overlap the plaintext/);
    }
    expect(calls()).toBe(0);
    // Adjacent is not overlapping.
    const msg = await sealEnvelope(pt, { recipients: [recipient], output: whole.subarray(10_000) });
    expect(msg.buffer).toBe(whole.buffer);
    expect(Buffer.from((await openEnvelope(msg, { trust: [aes] })).plaintext).equals(pt)).toBe(true);
  });

  it('output that is not a Uint8Array is refused, naming the option', async () => {
    const { recipient, calls } = counted();
    const bad: unknown[] = [
      new ArrayBuffer(100_000),
      new DataView(new ArrayBuffer(100_000)),
      new Uint16Array(50_000),
      new Uint8ClampedArray(100_000),
      'buffer',
      100_000,
      null,
      {},
    ];
    for (const output of bad) {
      const e = await errorOf(
        sealEnvelope(randomBytes(10), { recipients: [recipient], output } as unknown as Parameters<
          typeof sealEnvelope
        >[1]),
      );
      expect(e?.code).toBe('InvalidArgument');
      expect(e?.message).toMatch(/output must be a Uint8Array/);
    }
    expect(calls()).toBe(0);
  });

  it('a large plaintext: into a SharedArrayBuffer in parallel, into other memory on the calling thread', async () => {
    const size = PARALLEL_MIN_BYTES + 123_457;
    const pt = randomBytes(size);
    const shared = Buffer.from(new SharedArrayBuffer(size + 1024 * 1024));
    const plain = Buffer.alloc(size + 1024 * 1024);
    for (const output of [shared, plain]) {
      for (const concurrency of [1, 2, 4]) {
        const msg = await sealEnvelope(pt, {
          recipients: [aes],
          frameLength: 256 * 1024,
          output,
          concurrency,
        });
        expect(msg.buffer).toBe(output.buffer);
        const opened = await openEnvelope(msg, { trust: [aes], concurrency: 1 });
        expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
      }
    }
  });
});

describe('openEnvelope output', () => {
  const cases = [
    ['empty', 0, 4096, 0x0478],
    ['one partial frame', 1000, 4096, 0x0478],
    ['frames and a partial final frame', 3 * 4096 + 17, 4096, 0x0478],
    ['an exact multiple of the frame length', 2 * 4096, 4096, 0x0478],
    ['signed, several frames', 3 * 4096 + 17, 4096, 0x0578],
  ] as const;
  for (const [what, size, frameLength, suite] of cases) {
    it(`${what}: an output of exactly the plaintext's length takes it`, async () => {
      const pt = randomBytes(size);
      const msg = await sealEnvelope(pt, { recipients: [aes], frameLength, suite });
      const output = sentinel(size);
      const opened = await openEnvelope(msg, { trust: [aes], output });
      expect(opened.plaintext.buffer).toBe(output.buffer);
      expect(opened.plaintext.byteOffset).toBe(output.byteOffset);
      expect(opened.plaintext.length).toBe(size);
      expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
      if (size > 0) {
        // One byte short: new memory, output untouched.
        const short = sentinel(size - 1);
        const again = await openEnvelope(msg, { trust: [aes], output: short });
        expect(again.plaintext.buffer).not.toBe(short.buffer);
        expect(untouched(short)).toBe(true);
        expect(Buffer.from(again.plaintext).equals(pt)).toBe(true);
      }
    });
  }

  it('a non-framed message opens into output', async () => {
    const pt = randomBytes(3000);
    const msg = await nonFramed(pt);
    const output = sentinel(4000);
    const opened = await openEnvelope(msg, { trust: [aes], output });
    expect(opened.plaintext.buffer).toBe(output.buffer);
    expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
    expect(untouched(output.subarray(3000))).toBe(true);
    flip(msg, msg.length - 1);
    const e = await errorOf(openEnvelope(msg, { trust: [aes], output: sentinel(3000) }));
    expect(e?.code).toBe('Integrity');
  });

  for (const [path, size, options] of [
    ['calling thread', 5 * 4096 + 3, { frameLength: 4096 }],
    ['frame pool', PARALLEL_MIN_BYTES + 4097, { frameLength: 256 * 1024 }],
  ] as const) {
    it(`${path}: a bad tag in the last frame leaves nothing of the plaintext in output`, async () => {
      const pt = randomBytes(size);
      const msg = Buffer.from(await sealEnvelope(pt, { recipients: [aes], ...options }));
      flip(msg, msg.length - 1);
      const outputs = [sentinel(size + 100), Buffer.from(new SharedArrayBuffer(size + 100)).fill(SENTINEL)];
      for (const output of outputs) {
        const e = await errorOf(openEnvelope(msg, { trust: [aes], output, concurrency: 4 }));
        expect(e?.code).toBe('Integrity');
        // The plaintext's bytes zeroed, the rest of output as it was.
        expect(output.subarray(0, size).every((x) => x === 0)).toBe(true);
        expect(untouched(output.subarray(size))).toBe(true);
      }
    });
  }

  it('a bad signature (signed suite) leaves nothing in output', async () => {
    const pt = randomBytes(5 * 4096);
    const msg = Buffer.from(await sealEnvelope(pt, { recipients: [aes], suite: 0x0578, frameLength: 4096 }));
    flip(msg, msg.length - 3);
    const output = sentinel(pt.length);
    const e = await errorOf(openEnvelope(msg, { trust: [aes], output }));
    expect(e?.code).toBe('InvalidCiphertext');
    expect(output.every((x) => x === 0)).toBe(true);
  });

  it('a broken structure (truncated, reordered) gets the same error with or without output', async () => {
    const pt = randomBytes(4 * 4096 + 5);
    const msg = Buffer.from(await sealEnvelope(pt, { recipients: [aes], frameLength: 4096 }));
    const truncated = msg.subarray(0, msg.length - 40);
    const bumped = Buffer.from(msg);
    // The second frame's sequence number (header, then frame 1 of 4 + 12 + 4096 + 16 bytes).
    const header = msg.length - (4 * (4 + 12 + 4096 + 16) + (4 + 4 + 12 + 4 + 5 + 16));
    bumped.writeUInt32BE(7, header + 4 + 12 + 4096 + 16);
    for (const bad of [truncated, bumped]) {
      const without = await errorOf(openEnvelope(bad, { trust: [aes] }));
      const output = sentinel(pt.length);
      const withOutput = await errorOf(openEnvelope(bad, { trust: [aes], output }));
      expect(without?.code).toBe('InvalidCiphertext');
      expect(withOutput?.code).toBe(without?.code);
      expect(withOutput?.message).toBe(without?.message);
      // The broken structure is found before any frame is decrypted: output is not written.
      expect(untouched(output)).toBe(true);
    }
  });

  it('output overlapping the message is refused before any recipient is called', async () => {
    const { recipient, calls } = counted();
    const pt = randomBytes(1000);
    const msg = await sealEnvelope(pt, { recipients: [aes] });
    const room = Buffer.alloc(msg.length + 2000);
    room.set(msg, 1000);
    const inRoom = room.subarray(1000, 1000 + msg.length);
    for (const output of [room, room.subarray(0, 1001), room.subarray(1000 + msg.length - 1), inRoom]) {
      const e = await errorOf(openEnvelope(inRoom, { trust: [recipient], output }));
      expect(e?.code).toBe('InvalidArgument');
      expect(e?.message).toMatch(/output must not overlap the message/);
    }
    expect(calls()).toBe(0);
    const opened = await openEnvelope(inRoom, { trust: [recipient], output: room.subarray(0, 1000) });
    expect(opened.plaintext.buffer).toBe(room.buffer);
    expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
  });

  it('a large message into a SharedArrayBuffer or other memory, at every concurrency', async () => {
    const size = PARALLEL_MIN_BYTES + 77_777;
    const pt = randomBytes(size);
    const msg = await sealEnvelope(pt, { recipients: [aes], frameLength: 256 * 1024 });
    for (const output of [Buffer.from(new SharedArrayBuffer(size)), Buffer.alloc(size)]) {
      for (const concurrency of [1, 2, 4]) {
        output.fill(0);
        const opened = await openEnvelope(msg, { trust: [aes], output, concurrency });
        expect(opened.plaintext.buffer).toBe(output.buffer);
        expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
      }
    }
  });
});

describe('streams', () => {
  it('refuse output (a stream hands its chunks to the consumer)', async () => {
    const output = Buffer.alloc(1 << 16);
    const e1 = await errorOf(
      collect(
        sealStream([randomBytes(10)], { recipients: [aes], output } as unknown as Parameters<
          typeof sealStream
        >[1]),
      ),
    );
    expect(e1?.code).toBe('InvalidArgument');
    expect(e1?.message).toMatch(/unknown option "output"/);
    const msg = await sealEnvelope(randomBytes(10), { recipients: [aes] });
    const e2 = await errorOf(
      collect(openStream([msg], { trust: [aes], output } as unknown as Parameters<typeof openStream>[1])),
    );
    expect(e2?.code).toBe('InvalidArgument');
    expect(e2?.message).toMatch(/unknown option "output"/);
  });
});

/** Two SharedArrayBuffer objects over `sab`'s memory, as a thread receives it posted twice. */
function receivedTwice(sab: SharedArrayBuffer): [SharedArrayBuffer, SharedArrayBuffer] {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(sab);
  port1.postMessage(sab);
  const a = receiveMessageOnPort(port2)?.message as SharedArrayBuffer;
  const b = receiveMessageOnPort(port2)?.message as SharedArrayBuffer;
  port1.close();
  return [a, b];
}

describe('output over a SharedArrayBuffer object of its own for the same memory', () => {
  it('seal: output overlapping the plaintext is refused, not sealed over it', async () => {
    const { recipient, calls } = counted();
    const [a, b] = receivedTwice(new SharedArrayBuffer(64 * 1024));
    expect(a).not.toBe(b);
    const pt = randomBytes(10_000);
    const input = new Uint8Array(a, 0, pt.length);
    input.set(pt);
    for (const output of [new Uint8Array(b), new Uint8Array(b, 9_999), new Uint8Array(b, 0, 1)]) {
      const e = await errorOf(sealEnvelope(input, { recipients: [recipient], frameLength: 4096, output }));
      expect(e?.code).toBe('InvalidArgument');
      expect(e?.message).toMatch(/output must not overlap the plaintext/);
      // The check leaves both views as they were.
      expect(Buffer.from(input).equals(pt)).toBe(true);
    }
    expect(calls()).toBe(0);
    // Past the plaintext is fine, and the message holds the plaintext given.
    const msg = await sealEnvelope(input, { recipients: [aes], output: new Uint8Array(b, pt.length) });
    expect(Buffer.from((await openEnvelope(Buffer.from(msg), { trust: [aes] })).plaintext).equals(pt)).toBe(
      true,
    );
  });

  it('open: output overlapping the message is refused, the message left intact', async () => {
    const { recipient, calls } = counted();
    const size = PARALLEL_MIN_BYTES + 77_777;
    const pt = randomBytes(size);
    const msg = await sealEnvelope(pt, { recipients: [aes], frameLength: 256 * 1024 });
    const [a, b] = receivedTwice(new SharedArrayBuffer(2 * msg.length));
    const inShared = new Uint8Array(a, 0, msg.length);
    inShared.set(msg);
    for (const concurrency of [1, 4]) {
      const e = await errorOf(
        openEnvelope(inShared, { trust: [recipient], output: new Uint8Array(b, 100), concurrency }),
      );
      expect(e?.code).toBe('InvalidArgument');
      expect(e?.message).toMatch(/output must not overlap the message/);
      expect(Buffer.from(inShared).equals(msg)).toBe(true);
    }
    expect(calls()).toBe(0);
    const opened = await openEnvelope(inShared, { trust: [aes], output: new Uint8Array(b, msg.length) });
    expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
  });

  it('two SharedArrayBuffers of separate memory at the same offsets are not refused', async () => {
    const pt = randomBytes(5_000);
    const input = new Uint8Array(new SharedArrayBuffer(pt.length));
    input.set(pt);
    const output = new Uint8Array(new SharedArrayBuffer(64 * 1024)).fill(SENTINEL);
    const msg = await sealEnvelope(input, { recipients: [aes], output });
    expect(msg.buffer).toBe(output.buffer);
    expect(Buffer.from(input).equals(pt)).toBe(true);
    expect(Buffer.from((await openEnvelope(msg, { trust: [aes] })).plaintext).equals(pt)).toBe(true);
  });
});
