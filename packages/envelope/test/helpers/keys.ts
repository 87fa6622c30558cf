import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { rawAesRecipient, rawRsaRecipient } from '../../src/index.js';
import type { EsdkKeyring } from './esdk.js';

export const aesKey = randomBytes(32);
export const aes = rawAesRecipient({ namespace: 'keyport-test', name: 'aes-1', key: aesKey });
/** `aes` as an ESDK child's raw AES keyring; `utf8Sorting` for ESDK-JS's legacy context order. */
export const esdkAesKeyring = (utf8Sorting?: boolean): Extract<EsdkKeyring, { type: 'aes' }> => ({
  type: 'aes',
  namespace: 'keyport-test',
  name: 'aes-1',
  key: aesKey.toString('base64'),
  ...(utf8Sorting === undefined ? {} : { utf8Sorting }),
});
export const aesOther = rawAesRecipient({ namespace: 'keyport-test', name: 'aes-2', key: randomBytes(32) });

export const rsaPair = generateKeyPairSync('rsa', { modulusLength: 2048 });
export const rsaPrivatePem = rsaPair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
export const rsaPublicPem = rsaPair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
export const rsa = rawRsaRecipient({
  namespace: 'keyport-test',
  name: 'rsa-1',
  privateKey: rsaPair.privateKey,
  padding: 'oaep-sha256',
});

export async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of it) parts.push(p);
  return Buffer.concat(parts);
}

export async function* chunked(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

/** Flips the low bit of one byte in place. */
export function flip(bytes: Uint8Array, at: number): void {
  bytes[at] = (bytes[at] as number) ^ 1;
}
