/**
 * The source of a frame worker (see frame-pool.ts), run with `new Worker(source, { eval: true })`.
 * It is a string, not a module file, so it loads the same from `src` under a test runner, from
 * `dist`, and from a user's bundle (no worker file to locate next to the code).
 *
 * A job names a shared control block, a ring of input slots and the shared output. The worker
 * claims only frames the main thread has already copied into the ring, runs AES-GCM over
 * one slot (AES-GCM; the same IV, AAD and slice size as aead.ts/frames.ts), writes the result straight
 * into the output, frees the slot and counts the frame done. A job whose input is itself shared
 * (\`input\`, see FrameJob.sharedInput) has no ring: every frame is read where it is. Control
 * words: see CTL in frame-pool.ts (kept in step by the pool's tests).
 */
import { BYTE_KEYS_THROW } from '@keyport/core';

export const FRAME_WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const { createCipheriv, createDecipheriv, createSecretKey } = require('node:crypto');
// Byte keys cost Node 24 and 25 two thrown errors per cipher: there the job's key becomes a
// KeyObject once, used for every frame. (Core's BYTE_KEYS_THROW, written in when this loads.)
const KEY_OBJECTS = ${BYTE_KEYS_THROW};
const NEXT = 0, COPIED = 1, DONE = 2, STOP = 3, FIRST_BAD = 4;
const SLICE = 64 * 1024;
const FRAME = Buffer.from('AWSKMSEncryptionClient Frame', 'latin1');
const FINAL = Buffer.from('AWSKMSEncryptionClient Final Frame', 'latin1');

function aad(messageId, final, seq, length) {
  const s = final ? FINAL : FRAME;
  const out = Buffer.allocUnsafe(messageId.length + s.length + 12);
  out.set(messageId, 0);
  out.set(s, messageId.length);
  let at = messageId.length + s.length;
  out.writeUInt32BE(seq, at);
  out.writeUInt32BE(Math.floor(length / 0x100000000), at + 4);
  out.writeUInt32BE(length >>> 0, at + 8);
  return out;
}

function run(job) {
  const ctl = new Int32Array(job.ctl);
  const busy = new Int32Array(job.busy);
  const ring = job.ring === undefined ? undefined : Buffer.from(job.ring);
  const input = job.input === undefined ? undefined : Buffer.from(job.input);
  const out = Buffer.from(job.out);
  const { key, messageId, count, frameLength, slotSize, slots, seal, inputShift } = job;
  const sealIv = Buffer.alloc(12);
  // The caller's shared message is decrypted from a private copy of each slice: OpenSSL's AES-NI
  // GCM reads a ciphertext block twice (GHASH, then the counter XOR), and a thread writing the
  // message between the two made plaintext its tag never covered (see readOnce in aead.ts).
  const once = Buffer.allocUnsafeSlow(SLICE);
  try {
    const cipherKey = KEY_OBJECTS ? createSecretKey(key) : key;
    // AES-128 and AES-192 for the v1 suites that use them (a key's length names its cipher).
    const cipher = 'aes-' + key.length * 8 + '-gcm';
    for (;;) {
      if (Atomics.load(ctl, STOP) !== 0) return;
      const i = Atomics.load(ctl, NEXT);
      if (i >= count) return;
      const copied = Atomics.load(ctl, COPIED);
      if (i >= copied) {
        Atomics.wait(ctl, COPIED, copied, 20);
        continue;
      }
      if (Atomics.compareExchange(ctl, NEXT, i, i + 1) !== i) continue;
      const last = i === count - 1;
      const length = last ? job.lastLength : frameLength;
      const final = last && job.lastFinal;
      const seq = i + 1;
      const slot = (i % slots) * slotSize;
      const at = job.outBase + i * job.outStride + (last ? job.lastShift : 0);
      // Where the content starts: in the caller's shared input, or in this frame's slot.
      const from = input ?? ring;
      const body = input !== undefined
        ? job.inBase + i * job.inStride + (last ? job.lastInShift : 0)
        : slot + (seal ? 0 : 16) + inputShift;
      let ok = true;
      if (seal) {
        sealIv.writeUInt32BE(seq, 8);
        const c = createCipheriv(cipher, cipherKey, sealIv, { authTagLength: 16 });
        c.setAAD(aad(messageId, final, seq, length));
        for (let p = 0; p < length; p += SLICE) {
          out.set(c.update(from.subarray(body + p, body + Math.min(length, p + SLICE))), at + p);
        }
        c.final();
        out.set(c.getAuthTag(), at + length);
      } else {
        // The IV: at the slot's start, or in the message just before the content (and the final
        // frame's 4-byte content length).
        const ivAt = input !== undefined ? body - (final ? 16 : 12) : slot;
        const d = createDecipheriv(cipher, cipherKey, from.subarray(ivAt, ivAt + 12), { authTagLength: 16 });
        d.setAAD(aad(messageId, final, seq, length));
        d.setAuthTag(from.subarray(body + length, body + length + 16));
        for (let p = 0; p < length; p += SLICE) {
          const slice = from.subarray(body + p, body + Math.min(length, p + SLICE));
          out.set(d.update(input === undefined ? slice : once.subarray(0, slice.copy(once, 0))), at + p);
        }
        try {
          d.final();
        } catch {
          ok = false;
        }
      }
      if (ring !== undefined) Atomics.store(busy, i % slots, 0);
      if (!ok) {
        for (let b = Atomics.load(ctl, FIRST_BAD); i < b; b = Atomics.load(ctl, FIRST_BAD)) {
          if (Atomics.compareExchange(ctl, FIRST_BAD, b, i) === b) break;
        }
        Atomics.store(ctl, STOP, 1);
      }
      Atomics.add(ctl, DONE, 1);
      Atomics.notify(ctl, DONE);
    }
  } finally {
    key.fill(0);
  }
}

parentPort.on('message', (job) => {
  try {
    run(job);
  } catch (error) {
    const ctl = new Int32Array(job.ctl);
    Atomics.store(ctl, STOP, 2);
    Atomics.notify(ctl, DONE);
    throw error;
  }
});
`;
