/**
 * One AES-GCM ciphertext, two framings. Transit's aes256-gcm96 ciphertext is
 * `vault:v<N>:` + base64(nonce (12) | ciphertext | tag (16)) with the request's
 * `associated_data` as AAD; @keyport/pkcs11's is core's keyport frame (`frame(AES_256_GCM,
 * version) | IV (12) | ciphertext | tag (16)`) with core's `encodeContext(context)` as AAD — and @keyport/vault-transit sends
 * exactly those context bytes as `associated_data`. So, for a key imported from the HSM, a
 * transit ciphertext re-framed here decrypts inside the HSM (C_Decrypt, CKM_AES_GCM) with the
 * same context, and the other way round. Only the framing changes; nothing is decrypted here.
 */
import { FRAME_MECHANISMS, KeyportError, writeFrame } from '@keyport/core';
import { aesGcmFrame, integerVersion } from './local-ciphertext.js';

const TRANSIT = /^vault:v([1-9][0-9]*):([A-Za-z0-9+/]*={0,2})$/;
const NONCE_AND_TAG = 12 + 16;

const invalid = (why: string) => new KeyportError('InvalidCiphertext', why, { provider: 'byok' });

/** `vault:vN:...` (the transit key version N) as an HSM ciphertext of HSM key version `hsmVersion`. */
export function transitToHsmCiphertext(transit: string, hsmVersion: number): Uint8Array {
  const m = TRANSIT.exec(transit);
  if (m === null) throw invalid('not a transit ciphertext (vault:v<N>:<base64>)');
  const body = Buffer.from(m[2] as string, 'base64');
  if (body.length < NONCE_AND_TAG) throw invalid('the transit ciphertext is too short for AES-GCM');
  return writeFrame(FRAME_MECHANISMS.AES_256_GCM, integerVersion(hsmVersion), body);
}

/** An HSM AES-GCM ciphertext as `vault:v<transitVersion>:...`. */
export function hsmToTransitCiphertext(ciphertext: Uint8Array, transitVersion: number): string {
  const { body } = aesGcmFrame(ciphertext, 'pkcs11', '@keyport/pkcs11');
  // Checked like the HSM version: NaN, 0 or 1.5 would make `vault:vNaN:…`, which transit refuses.
  return `vault:v${integerVersion(transitVersion)}:${Buffer.from(body).toString('base64')}`;
}

/** The transit key version a `vault:vN:` ciphertext names. */
export function transitCiphertextVersion(transit: string): number {
  const m = TRANSIT.exec(transit);
  if (m === null) throw invalid('not a transit ciphertext (vault:v<N>:<base64>)');
  const version = Number(m[1]);
  // Key versions are 32-bit on both sides; a longer number is not a version transit wrote.
  if (version > 0xffff_ffff) throw invalid('the transit key version is out of range');
  return version;
}
