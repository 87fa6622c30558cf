/**
 * SHA-256 for the SDK (payload hashes and SigV4's HMACs), its HMAC keys handed to `node:crypto`
 * as core's `secretKey` hands them. The SDK's own (`@smithy/hash-node`) passes every HMAC key as
 * bytes, which on Node 24 and 25 costs two thrown errors per HMAC: ~10 us of each signed request
 * (Node 24.21, a transport that answers at once: the bare SDK's request 117 us of CPU, 102 us
 * with V8's stack traces off; the adapter's driver with this hash 0.93x the bare SDK). Given to
 * the clients this provider builds only where that is so, and only when the caller chose no
 * `sha256` of their own.
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { secretKey } from '@keyport/core';

type SourceData = string | ArrayBuffer | ArrayBufferView;

function bytesOf(data: SourceData, encoding: BufferEncoding = 'utf8'): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, encoding);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

/** The SDK's `ChecksumConstructor` (and older `HashConstructor`) shape. */
export class KeyObjectSha256 {
  private hash: Hash | Hmac;

  constructor(private readonly secret?: SourceData) {
    this.hash = this.start();
  }

  // As the SDK's own: a secret makes it an HMAC, none (or an empty string) a plain hash.
  private start(): Hash | Hmac {
    return this.secret ? createHmac('sha256', secretKey(bytesOf(this.secret))) : createHash('sha256');
  }

  update(data: SourceData, encoding?: 'utf8' | 'ascii' | 'latin1'): void {
    this.hash.update(bytesOf(data, encoding));
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.hash.digest());
  }

  reset(): void {
    this.hash = this.start();
  }
}
