/**
 * The source of a stream frame worker (see stream-workers.ts), run with
 * `new Worker(source, { eval: true })`: a string, so it loads the same from `src`, `dist` and a
 * user's bundle.
 *
 * One message is one frame: the key (a copy, zeroed here once used), IV, AAD and the frame's
 * bytes in a transferred buffer (seal: the content; open: content || tag). The reply transfers
 * back that buffer (for reuse) and the output as the pieces `update` returned, each its own
 * ArrayBuffer, so nothing is copied on the way back. A frame whose tag fails returns no
 * plaintext: its pieces are zeroed here.
 */
import { BYTE_KEYS_THROW } from '@keyport/core';

export const STREAM_WORKER_SOURCE = `
'use strict';
const { workerData } = require('node:worker_threads');
const { createCipheriv, createDecipheriv, createSecretKey } = require('node:crypto');
const port = workerData.port;
// Byte keys cost Node 24 and 25 two thrown errors per cipher; a KeyObject made per frame costs
// a tenth of that. (Core's BYTE_KEYS_THROW, written in when this loads.)
const KEY_OBJECTS = ${BYTE_KEYS_THROW};

function own(piece) {
  if (piece.byteOffset === 0 && piece.byteLength === piece.buffer.byteLength) return piece.buffer;
  return Uint8Array.prototype.slice.call(piece).buffer;
}

port.on('message', (m) => {
  let pieces = [];
  let ok = true;
  try {
    const input = new Uint8Array(m.input, 0, m.length);
    const key = KEY_OBJECTS ? createSecretKey(m.key) : m.key;
    // AES-128 and AES-192 for the v1 suites that use them (a key's length names its cipher).
    const cipher = 'aes-' + m.key.length * 8 + '-gcm';
    const c = m.seal
      ? createCipheriv(cipher, key, m.iv, { authTagLength: 16 })
      : createDecipheriv(cipher, key, m.iv, { authTagLength: 16 });
    c.setAAD(m.aad);
    if (!m.seal) c.setAuthTag(new Uint8Array(m.input, m.length, 16));
    // One update for the whole frame: its output is one buffer to transfer (fewer objects for
    // the calling thread to receive and collect; measured faster than 64 KiB or 256 KiB pieces).
    if (m.length > 0) pieces.push(c.update(input));
    try {
      c.final();
      if (m.seal) pieces.push(c.getAuthTag());
    } catch {
      ok = false;
    }
  } catch {
    ok = false;
  } finally {
    m.key.fill(0);
  }
  if (!ok) {
    for (const p of pieces) p.fill(0);
    pieces = [];
  }
  const buffers = pieces.map(own);
  port.postMessage({ id: m.id, ok, pieces: buffers, input: m.input }, [m.input, ...buffers]);
});
`;
