/**
 * A non-framed message (content type 1; written by old ESDKs, never by keyport), built from the
 * spec with keyport's own primitives, for `aes` (helpers/keys.ts).
 */
import { randomBytes } from 'node:crypto';
import { bodyAad, SINGLE_BLOCK_STRING, sequenceIv } from '../../src/aead.js';
import { serializeContext } from '../../src/context-codec.js';
import { CONTENT_NON_FRAMED, serializeHeaderBody } from '../../src/header.js';
import { deriveKeys } from '../../src/kdf.js';
import { generateSigningKey, newSigner } from '../../src/signing.js';
import { PUBLIC_KEY_CONTEXT_KEY, SUITES } from '../../src/suites.js';
import { gcmSeal } from './gcm.js';
import { aes } from './keys.js';

/** `0x0578` adds the signing key to the context and the footer signature. */
export async function nonFramed(pt: Uint8Array, suiteId: 0x0478 | 0x0578 = 0x0478): Promise<Buffer> {
  const suite = SUITES.get(suiteId);
  if (suite === undefined) throw new Error('suite');
  const dataKey = randomBytes(32);
  const messageId = randomBytes(32);
  const signing = suiteId === 0x0578 ? generateSigningKey() : undefined;
  const context: Record<string, string> = { legacy: 'yes' };
  if (signing !== undefined) context[PUBLIC_KEY_CONTEXT_KEY] = signing.publicKeyBase64;
  const d = deriveKeys(suite, dataKey, messageId);
  const body = serializeHeaderBody({
    suite,
    messageId,
    contextBytes: serializeContext(context),
    encryptedDataKeys: [await aes.wrap(dataKey, context, {})],
    contentType: CONTENT_NON_FRAMED,
    frameLength: 0,
    suiteData: d.commitKey,
  });
  const header = Buffer.concat([body, gcmSeal(d.key, new Uint8Array(12), body, new Uint8Array(0)).tag]);
  const iv = sequenceIv(1);
  const sealed = gcmSeal(d.key, iv, bodyAad(messageId, SINGLE_BLOCK_STRING, 1, pt.length), pt);
  const len = Buffer.alloc(8);
  len.writeBigUInt64BE(BigInt(pt.length));
  const message = Buffer.concat([header, iv, len, sealed.ciphertext, sealed.tag]);
  if (signing === undefined) return message;
  const sig = newSigner().update(message).sign({ key: signing.privateKey, dsaEncoding: 'der' });
  const sigLength = Buffer.alloc(2);
  sigLength.writeUInt16BE(sig.length);
  return Buffer.concat([message, sigLength, sig]);
}
