/**
 * A message whose memory changes while it is opened: a SharedArrayBuffer another thread writes
 * (the README's "pass one" for reading in place), or a receive buffer the caller reuses while a
 * KMS call is awaited. The README asks that input not change; when it does anyway, open must
 * fail or return what was authenticated — never a context or plaintext the tags did not cover.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openEnvelope, openStream, type Recipient, sealEnvelope } from '../src/index.js';
import { collect, rsa } from './helpers/keys.js';

/** `rsa`, with `during` run when its data key is unwrapped (another writer's moment). */
function unwrapping(during: () => void): Recipient {
  return {
    id: rsa.id,
    matches: (edk) => rsa.matches(edk),
    wrap: (key, context, env) => rsa.wrap(key, context, env),
    unwrap(edk, context, env) {
      during();
      return rsa.unwrap(edk, context, env);
    },
  };
}

describe('a message that changes while it is opened', () => {
  // Raw RSA binds no context into its EDK: only the header tag proves the context.
  const sealed = sealEnvelope(Buffer.alloc(4096, 'pay 100 to evil '), {
    recipients: [rsa],
    context: { tenant: 'evil' },
  });

  for (const memory of ['shared', 'ordinary'] as const) {
    for (const how of ['openEnvelope', 'openStream'] as const) {
      it(`${memory} memory, ${how}: the context checked is the one the header tag authenticates`, async () => {
        const real = await sealed;
        const message =
          memory === 'shared' ? Buffer.from(new SharedArrayBuffer(real.length)) : Buffer.alloc(real.length);
        message.set(real);
        const at = message.indexOf('evil');
        expect(at).toBeGreaterThan(0);
        // What open parses first says t-42; the real bytes are back before the tag is checked.
        message.write('t-42', at, 'latin1');
        const writer = unwrapping(() => message.write('evil', at, 'latin1'));
        const options = { trust: [writer], requiredContext: { tenant: 't-42' }, concurrency: 1 };
        const outcome =
          how === 'openEnvelope'
            ? await openEnvelope(message, options).then(
                (r) => r.context,
                (e: { code?: string }) => e.code,
              )
            : await collect(openStream([message], options)).then(
                () => 'opened',
                (e: { code?: string }) => e.code,
              );
        // Before: opened as tenant t-42 (requiredContext passed) under evil's authenticated header.
        expect(outcome).toBe('Integrity');
      });
    }
  }

  it("another thread flipping a ciphertext bit never gets plaintext past a frame's tag, on any path", () => {
    // OpenSSL's AES-NI GCM without VAES reads each ciphertext block twice (GHASH, counter XOR);
    // the child masks AVX and VAES so that code runs on any x86 CPU (ignored elsewhere).
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const dir = mkdtempSync(join(tmpdir(), 'keyport-changing-message-'));
    try {
      const script = join(dir, 'child.mjs');
      const index = pathToFileURL(join(root, 'packages/envelope/src/index.ts')).href;
      writeFileSync(
        script,
        `import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
const { openEnvelope, openStream, rawAesRecipient, sealEnvelope } = await import(${JSON.stringify(index)});
const aes = rawAesRecipient({ namespace: 'race', name: 'aes', key: randomBytes(32) });
const message = async (frameLength, frames) => {
  const pt = randomBytes(frameLength * frames);
  const sealed = await sealEnvelope(pt, { recipients: [aes], frameLength, concurrency: 1 });
  const shared = Buffer.from(new SharedArrayBuffer(sealed.length));
  shared.set(sealed);
  return [shared, pt];
};
// Small frames give many opens a second; the frame pool needs 4 MiB in 4 frames.
const [small, smallPt] = await message(64 * 1024, 4);
const [large, largePt] = await message(1024 * 1024, 4);
const stop = new Int32Array(new SharedArrayBuffer(4));
// A byte in the middle of frame 3 of each, flipped and flipped back without pause.
const flipper = new Worker(\`const { workerData: d } = require('node:worker_threads');
const a = new Uint8Array(d.small); const b = new Uint8Array(d.large); const stop = new Int32Array(d.stop);
while (Atomics.load(stop, 0) === 0) {
  a[d.a] ^= 1; b[d.b] ^= 1; for (let i = 0; i < 3; i++); a[d.a] ^= 1; b[d.b] ^= 1; for (let i = 0; i < 3; i++);
}\`, { eval: true, workerData: { small: small.buffer, large: large.buffer, stop: stop.buffer,
  a: small.length - 1.5 * 64 * 1024, b: large.length - 1.5 * 1024 * 1024 } });
await new Promise((r) => setTimeout(r, 50));
async function collect(it) { const parts = []; for await (const p of it) parts.push(Buffer.from(p)); return Buffer.concat(parts); }
const opened = (r) => r.plaintext;
const paths = {
  sequential: [smallPt, () => openEnvelope(small, { trust: [aes], concurrency: 1 }).then(opened)],
  framePool: [largePt, () => openEnvelope(large, { trust: [aes], concurrency: 2 }).then(opened)],
  stream: [smallPt, () => collect(openStream([small], { trust: [aes] }))],
  streamInFlight: [smallPt, () => collect(openStream([small], { trust: [aes], concurrency: 2 }))],
};
const out = {};
for (const [name, [pt, open]] of Object.entries(paths)) {
  const o = { refused: 0, right: 0, wrong: 0 };
  for (const until = Date.now() + 2500; Date.now() < until && o.wrong === 0; ) {
    try { if (Buffer.compare(await open(), pt) === 0) o.right++; else o.wrong++; } catch { o.refused++; }
  }
  out[name] = o;
}
Atomics.store(stop, 0, 1);
await flipper.terminate();
process.stdout.write(JSON.stringify(out));
`,
      );
      const r = spawnSync(
        process.execPath,
        ['--import', join(root, 'packages/cli/test/support/register-ts.mjs'), script],
        {
          encoding: 'utf8',
          timeout: 60_000,
          env: { ...process.env, OPENSSL_ia32cap: '~0x1000000000000000:~0x60000010020' },
        },
      );
      expect(r.stderr).toBe('');
      const outcome = JSON.parse(r.stdout) as Record<
        string,
        { refused: number; right: number; wrong: number }
      >;
      for (const [path, o] of Object.entries(outcome)) {
        expect(o.wrong, `${path}: ${JSON.stringify(o)}`).toBe(0);
        // The race was on: some opens saw the flipped bit (refused), some did not.
        expect(o.refused + o.right, path).toBeGreaterThan(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
