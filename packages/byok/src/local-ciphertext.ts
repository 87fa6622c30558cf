/**
 * The local keystore and @keyport/pkcs11 write AES-GCM ciphertexts in one layout,
 * `0x01 | key version u32be | IV (12) | ciphertext | tag (16)`, with core's
 * `encodeContext(context)` as AAD. Only the version in the header names a key version of the
 * side that wrote it, so moving a ciphertext from one side to the other rewrites those four
 * bytes (the pairing in the manifest gives both versions). The header is not in the AAD:
 * nothing is decrypted here, and a wrong version makes the tag check fail on the other side.
 */
import { KeyportError } from '@keyport/core';
import { CIPHERTEXT_FORMAT } from '@keyport/pkcs11';

const HEADER = 5;
const IV_AND_TAG = 12 + 16;

function withVersion(ciphertext: Uint8Array, version: number, from: string): Uint8Array {
  const bytes = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength);
  if (bytes.length < HEADER + IV_AND_TAG || bytes[0] !== CIPHERTEXT_FORMAT.AES_GCM) {
    throw new KeyportError('InvalidCiphertext', `not an AES-GCM ciphertext of ${from}`, { provider: 'byok' });
  }
  if (!Number.isInteger(version) || version < 1 || version > 0xffff_ffff) {
    throw new KeyportError('InvalidArgument', 'a key version is a positive 32-bit integer', {
      provider: 'byok',
    });
  }
  const out = Buffer.from(bytes);
  out.writeUInt32BE(version, 1);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** A local keystore ciphertext as an HSM ciphertext of HSM key version `hsmVersion`. */
export function localToHsmCiphertext(ciphertext: Uint8Array, hsmVersion: number): Uint8Array {
  return withVersion(ciphertext, hsmVersion, '@keyport/local');
}

/** An HSM AES-GCM ciphertext as a local keystore ciphertext of key version `localVersion`. */
export function hsmToLocalCiphertext(ciphertext: Uint8Array, localVersion: number): Uint8Array {
  return withVersion(ciphertext, localVersion, '@keyport/pkcs11');
}
