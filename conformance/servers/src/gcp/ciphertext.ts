import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

// Ciphertext of Encrypt: opaque to callers, but like the service's it names the version that
// made it, so Decrypt (which takes only the CryptoKey name) can pick the key material.
// Layout: magic "KPG1" | version id (uint32 BE) | 12-byte IV | AES-256-GCM body | 16-byte tag.
// The GCM AAD binds the crypto key name, so a ciphertext moved to another key fails.
const MAGIC = Buffer.from('KPG1');
const HEADER = MAGIC.length + 4 + 12;
const TAG = 16;

function aad(keyName: string, userAad: Buffer): Buffer {
  const name = Buffer.from(keyName, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(name.length);
  return Buffer.concat([len, name, userAad]);
}

export function seal(
  keyName: string,
  versionId: number,
  key: Buffer,
  plaintext: Buffer,
  userAad: Buffer,
): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad(keyName, userAad));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const id = Buffer.alloc(4);
  id.writeUInt32BE(versionId);
  return Buffer.concat([MAGIC, id, iv, body, cipher.getAuthTag()]);
}

/** The version a ciphertext claims, or undefined when it is not one of ours. */
export function versionOf(ciphertext: Buffer): number | undefined {
  if (ciphertext.length < HEADER + TAG || !ciphertext.subarray(0, 4).equals(MAGIC)) return undefined;
  return ciphertext.readUInt32BE(4);
}

/** Opens a ciphertext; undefined when authentication fails (wrong key, AAD or tampering). */
export function open(keyName: string, key: Buffer, ciphertext: Buffer, userAad: Buffer): Buffer | undefined {
  const iv = ciphertext.subarray(8, HEADER);
  const body = ciphertext.subarray(HEADER, ciphertext.length - TAG);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(aad(keyName, userAad));
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG));
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    return undefined;
  }
}
