/**
 * Streams with `concurrency`: frames go to worker threads (one message per frame, buffers
 * transferred) or run on the calling thread when every worker is busy. What a user relies on:
 * the bytes are the format's (sequential open and ESDK-JS agree elsewhere, in parallel.test.ts),
 * a worker that dies fails the stream with a typed error and never hangs it, a consumer that
 * stops early leaves nothing that holds the process, and the next stream is served again.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CORES } from '../src/frame-pool.js';
import { openStream, sealEnvelope, sealStream } from '../src/index.js';
import { frameMessage, streamWorkersForTests } from '../src/stream-workers.js';
import { aes } from './helpers/keys.js';

const G = 64 * 1024;
const collect = async (it: AsyncIterable<Uint8Array>): Promise<Buffer> => {
  const parts: Buffer[] = [];
  for await (const p of it) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
};
async function* chunks(data: Uint8Array, size: number, after?: (i: number) => Promise<void>) {
  for (let at = 0, i = 0; at < data.length; at += size, i++) {
    yield data.subarray(at, at + size);
    await after?.(i);
  }
}
/** Waits until no frame is out at a worker (replies arrive on the event loop). */
async function settled(): Promise<boolean> {
  for (let i = 0; i < 200 && streamWorkersForTests().holding; i++) await new Promise((r) => setTimeout(r, 5));
  return !streamWorkersForTests().holding;
}
const workersExpected = CORES > 1;

describe('stream frames on worker threads', () => {
  it("a frame's message carries its own bytes, never the buffer pool a view lives in", () => {
    const prefix = Buffer.allocUnsafe(16); // a view of Node's shared pool, as a frame prefix is
    const aad = Buffer.allocUnsafe(78);
    const key = Uint8Array.from(randomBytes(32));
    const input = new ArrayBuffer(64);
    const m = frameMessage(1, true, key, prefix.subarray(4, 16), aad, input, 48);
    expect(prefix.buffer.byteLength).toBeGreaterThan(16);
    for (const bytes of [m.key, m.iv, m.aad]) expect(bytes.buffer.byteLength).toBe(bytes.byteLength);
    expect(Buffer.from(m.iv).equals(prefix.subarray(4, 16))).toBe(true);
    expect(Buffer.from(m.aad).equals(aad)).toBe(true);
    expect(m.input).toBe(input);
  });

  it('frames run on workers and here; sealed and opened either way they round-trip', async () => {
    const pt = randomBytes(40 * G + 5);
    const before = streamWorkersForTests().workerFrames;
    const msg = await collect(
      sealStream(chunks(pt, 10_000), { recipients: [aes], frameLength: G, concurrency: 2 }),
    );
    const sealedByWorkers = streamWorkersForTests().workerFrames - before;
    if (workersExpected) {
      expect(sealedByWorkers).toBeGreaterThan(0);
      expect(sealedByWorkers).toBeLessThanOrEqual(41);
    }
    expect((await collect(openStream(chunks(msg, 7_000), { trust: [aes], concurrency: 1 }))).equals(pt)).toBe(
      true,
    );
    const sequential = Buffer.from(
      await sealEnvelope(pt, { recipients: [aes], frameLength: G, concurrency: 1 }),
    );
    const mid = streamWorkersForTests().workerFrames;
    const opened = await collect(openStream(chunks(sequential, 7_000), { trust: [aes], concurrency: 2 }));
    expect(opened.equals(pt)).toBe(true);
    if (workersExpected) expect(streamWorkersForTests().workerFrames).toBeGreaterThan(mid);
    expect(await settled()).toBe(true);
  }, 60_000);

  it('a worker that dies mid-stream fails the stream as Unavailable, and the next stream is served', async () => {
    const pt = randomBytes(60 * G);
    await collect(sealStream(chunks(pt, G), { recipients: [aes], frameLength: G, concurrency: 2 }));
    const outcome = await collect(
      sealStream(
        chunks(pt, G, async (i) => {
          // Workers told to stop while this stream goes on: the next frames go to a worker
          // before its exit is known here (the source never waits on the event loop).
          if (i === 10) for (const w of streamWorkersForTests().workers) void w.terminate();
        }),
        { recipients: [aes], frameLength: G, concurrency: 2 },
      ),
    ).then(
      (msg) => msg,
      (e: { code?: string }) => e.code,
    );
    if (workersExpected) expect(outcome).toBe('Unavailable');
    else expect(Buffer.isBuffer(outcome)).toBe(true);
    const dead = streamWorkersForTests().workers;
    const msg = await collect(
      sealStream(chunks(pt, G), { recipients: [aes], frameLength: G, concurrency: 2 }),
    );
    expect((await collect(openStream(chunks(msg, G), { trust: [aes], concurrency: 2 }))).equals(pt)).toBe(
      true,
    );
    expect(streamWorkersForTests().workers.some((w) => dead.includes(w))).toBe(false);
    expect(await settled()).toBe(true);
  }, 60_000);

  it('eight streams at once share the workers: each seals and opens its own bytes', async () => {
    const inputs = Array.from({ length: 8 }, (_, i) => randomBytes(12 * G + i * 1_001));
    const sealed = await Promise.all(
      inputs.map((pt, i) =>
        collect(
          sealStream(chunks(pt, 5_000 + i * 3_000), { recipients: [aes], frameLength: G, concurrency: 2 }),
        ),
      ),
    );
    const opened = await Promise.all(
      sealed.map((msg, i) =>
        collect(openStream(chunks(msg, 4_000 + i * 2_000), { trust: [aes], concurrency: 3 })),
      ),
    );
    for (const [i, pt] of inputs.entries()) expect(opened[i]?.equals(pt), `stream ${i}`).toBe(true);
    expect(await settled()).toBe(true);
  }, 60_000);

  it('frames in flight are bounded by the cores, not by the concurrency asked for', async () => {
    const pt = randomBytes(200 * G);
    let read = 0;
    const source = chunks(pt, G, async () => {
      read++;
    });
    const sealed = sealStream(source, { recipients: [aes], frameLength: G, concurrency: 64 });
    await sealed.next(); // the header
    await sealed.next(); // the first frame's first piece
    // 2 frames in flight per thread that can run (at most one per core), plus the frame that
    // shows more input follows.
    expect(read).toBeLessThanOrEqual(2 * Math.min(64, CORES) + 2);
    await sealed.return(undefined);
    expect(await settled()).toBe(true);
  }, 60_000);

  it('a consumer that stops early leaves no frame out and nothing holding the process', async () => {
    const pt = randomBytes(50 * G);
    for (const open of [false, true]) {
      const source = open
        ? openStream(
            chunks(
              Buffer.from(await sealEnvelope(pt, { recipients: [aes], frameLength: G, concurrency: 1 })),
              G,
            ),
            { trust: [aes], concurrency: 2 },
          )
        : sealStream(chunks(pt, G), { recipients: [aes], frameLength: G, concurrency: 2 });
      let seen = 0;
      for await (const p of source) {
        seen += p.length;
        if (seen > 3 * G) break;
      }
      expect(await settled()).toBe(true);
    }
  }, 60_000);

  it('a frame that fails its tag at a worker releases nothing of it, nor anything after it', async () => {
    const pt = randomBytes(24 * G);
    const msg = Buffer.from(await sealEnvelope(pt, { recipients: [aes], frameLength: G, concurrency: 1 }));
    const frame = 4 + 12 + G + 16;
    const headerLength = msg.length - 24 * frame - 8; // the final frame has 8 more prefix bytes
    for (const k of [0, 1, 2, 7, 23]) {
      const bad = Buffer.from(msg);
      const at = headerLength + k * frame + 100;
      bad[at] = (bad[at] as number) ^ 1;
      const released: Buffer[] = [];
      const code = await (async () => {
        for await (const p of openStream(chunks(bad, 9_000), { trust: [aes], concurrency: 2 }))
          released.push(Buffer.from(p));
      })().then(
        () => 'ok',
        (e: { code?: string }) => e.code,
      );
      expect(code).toBe('Integrity');
      expect(Buffer.concat(released).equals(pt.subarray(0, k * G))).toBe(true);
    }
    expect(await settled()).toBe(true);
  }, 60_000);

  it("frames whose tags are split across chunks open wherever they run, and a tag's second half is checked", async () => {
    const pt = randomBytes(24 * G + 3);
    const msg = Buffer.from(await sealEnvelope(pt, { recipients: [aes], frameLength: G, concurrency: 1 }));
    const frame = 4 + 12 + G + 16;
    const headerLength = msg.length - 24 * frame - (4 + 4 + 12 + 4 + 3 + 16);
    // A chunk boundary in the middle of every tag (and of the final frame's).
    const cuts = [headerLength];
    for (let k = 0; k < 24; k++) cuts.push(headerLength + k * frame + 16 + G + 8);
    cuts.push(msg.length - 8, msg.length);
    async function* splitTags(m: Buffer) {
      let from = 0;
      for (const to of cuts) {
        yield m.subarray(from, to);
        from = to;
      }
    }
    // Concurrency 1 runs every frame on this thread, from the chunks as they lie; concurrency 2
    // hands frames to the worker (copied). Which frames a worker takes depends on timing, so
    // each place is proved by a run of its own rather than by counting a mixed run.
    for (const concurrency of [1, 2]) {
      const before = streamWorkersForTests().workerFrames;
      expect((await collect(openStream(splitTags(msg), { trust: [aes], concurrency }))).equals(pt)).toBe(
        true,
      );
      const byWorkers = streamWorkersForTests().workerFrames - before;
      if (concurrency === 1) expect(byWorkers).toBe(0);
      else if (workersExpected) expect(byWorkers).toBeGreaterThan(0);
      for (const k of [3, 24]) {
        const bad = Buffer.from(msg);
        const at = k === 24 ? msg.length - 2 : headerLength + k * frame + 16 + G + 12;
        bad[at] = (bad[at] as number) ^ 1;
        const code = await collect(openStream(splitTags(bad), { trust: [aes], concurrency })).then(
          () => 'ok',
          (e: { code?: string }) => e.code,
        );
        expect(code).toBe('Integrity');
      }
    }
    expect(await settled()).toBe(true);
  }, 60_000);

  it('a process streaming with workers waits for its frames, then exits on its own', () => {
    // Run from source in a child (the CLI's TypeScript hooks): workers and reply ports must keep
    // the process alive exactly while frames are out, never after.
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const dir = mkdtempSync(join(tmpdir(), 'keyport-stream-workers-'));
    try {
      const script = join(dir, 'child.mjs');
      const index = pathToFileURL(join(root, 'packages/envelope/src/index.ts')).href;
      writeFileSync(
        script,
        `import { randomBytes } from 'node:crypto';
const { openStream, rawAesRecipient, sealStream } = await import(${JSON.stringify(index)});
const aes = rawAesRecipient({ namespace: 'child', name: 'aes', key: randomBytes(32) });
const pt = randomBytes(8 * 1024 * 1024 + 3);
async function* chunks(d) { for (let at = 0; at < d.length; at += 65536) yield d.subarray(at, at + 65536); }
let n = 0;
const o = { concurrency: 2 };
for await (const p of openStream(sealStream(chunks(pt), { recipients: [aes], frameLength: 65536, ...o }), { trust: [aes], ...o })) n += p.length;
process.stdout.write('streamed ' + n);
`,
      );
      const started = Date.now();
      const r = spawnSync(
        process.execPath,
        ['--import', join(root, 'packages/cli/test/support/register-ts.mjs'), script],
        { encoding: 'utf8', timeout: 30_000 },
      );
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe(`streamed ${8 * 1024 * 1024 + 3}`);
      expect(r.status).toBe(0);
      expect(Date.now() - started).toBeLessThan(25_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
