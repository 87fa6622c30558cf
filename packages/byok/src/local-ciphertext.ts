/**
 * The local keystore and @keyport/pkcs11 write AES-GCM ciphertexts in one layout, core's keyport
 * frame (`frame(AES_256_GCM, key version) | IV (12) | ciphertext | tag (16)`), with core's
 * `encodeContext(context)` as AAD. Only the version in the frame names a key version of the
 * side that wrote it, so moving a ciphertext from one side to the other re-frames it (the
 * pairing in the manifest gives both versions). The frame is not in the AAD: nothing is
 * decrypted here, and a wrong version makes the tag check fail on the other side. Ciphertexts
 * of either side's first format (before the frame) are read too, and come out framed.
 */
import {
  type CiphertextFrame,
  FRAME_MECHANISMS,
  KeyportError,
  type LegacyDialect,
  readAnyFrame,
  writeFrame,
} from '@keyport/core';

/** An AES-GCM frame of `dialect`'s driver, or InvalidCiphertext naming `from`. */
export function aesGcmFrame(ciphertext: Uint8Array, dialect: LegacyDialect, from: string): CiphertextFrame {
  let frame: CiphertextFrame | undefined;
  try {
    frame = readAnyFrame(ciphertext, dialect);
  } catch {
    frame = undefined;
  }
  if (frame?.mechanism !== FRAME_MECHANISMS.AES_256_GCM) {
    throw new KeyportError('InvalidCiphertext', `not an AES-GCM ciphertext of ${from}`, { provider: 'byok' });
  }
  return frame;
}

/** A positive 32-bit key version, as both sides number them. */
export function integerVersion(version: number): string {
  if (!Number.isInteger(version) || version < 1 || version > 0xffff_ffff) {
    throw new KeyportError('InvalidArgument', 'a key version is a positive 32-bit integer', {
      provider: 'byok',
    });
  }
  return String(version);
}

function withVersion(
  ciphertext: Uint8Array,
  version: number,
  dialect: LegacyDialect,
  from: string,
): Uint8Array {
  const frame = aesGcmFrame(ciphertext, dialect, from);
  return writeFrame(FRAME_MECHANISMS.AES_256_GCM, integerVersion(version), frame.body);
}

/** A local keystore ciphertext as an HSM ciphertext of HSM key version `hsmVersion`. */
export function localToHsmCiphertext(ciphertext: Uint8Array, hsmVersion: number): Uint8Array {
  return withVersion(ciphertext, hsmVersion, 'local', '@keyport/local');
}

/** An HSM AES-GCM ciphertext as a local keystore ciphertext of key version `localVersion`. */
export function hsmToLocalCiphertext(ciphertext: Uint8Array, localVersion: number): Uint8Array {
  return withVersion(ciphertext, localVersion, 'pkcs11', '@keyport/pkcs11');
}
