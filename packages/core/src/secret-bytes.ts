/**
 * Secret bytes a provider SDK handed over, moved into memory of their own. SDKs decode short
 * base64 fields (a KMS plaintext, a data key) with `Buffer.from(text, 'base64')`, which places
 * them in Node's shared Buffer pool: the returned view's `.buffer` is a slab holding unrelated
 * data (cloned whole by `postMessage`/`structuredClone`, written whole by anything that takes
 * the ArrayBuffer), and a plaintext left there outlives every copy its owner zeroes.
 */

/**
 * A copy of `bytes` in an ArrayBuffer of exactly their length (never on V8's heap, so it is never
 * moved and left behind by the garbage collector), with `bytes` zeroed. Only for bytes the
 * caller owns: an SDK's freshly decoded response field, a decode of its own.
 */
export function takeSecretBytes(bytes: Uint8Array): Uint8Array {
  const own = new Uint8Array(new ArrayBuffer(bytes.length));
  own.set(bytes);
  bytes.fill(0);
  return own;
}
