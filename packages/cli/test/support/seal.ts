/** Seals test files in-process (faster than one CLI run per file). */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Keyport, type KmsProvider } from '@keyport/core';
import { sealEnvelope } from '@keyport/envelope';
import { openLocalKeystore } from '@keyport/local';
import { PASSPHRASE } from './cli.js';

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export async function localKeys(keystore: string): Promise<Keyport> {
  return new Keyport({ providers: [await openLocalKeystore({ path: keystore, passphrase: PASSPHRASE })] });
}

/** Writes `count` envelope files under `dir` (in two subfolders), returns file -> plaintext digest. */
export async function sealFiles(
  keys: Keyport | { providers: KmsProvider[] },
  recipient: string,
  dir: string,
  count: number,
): Promise<Map<string, string>> {
  const kp = keys instanceof Keyport ? keys : new Keyport(keys);
  const digests = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const sub = join(dir, i % 2 === 0 ? 'even' : 'odd');
    await mkdir(sub, { recursive: true });
    const plaintext = randomBytes(200 + (i % 7) * 300);
    const path = join(sub, `f${String(i).padStart(4, '0')}.enc`);
    await writeFile(
      path,
      await sealEnvelope(plaintext, { recipients: [recipient], keys: kp, context: { file: String(i) } }),
    );
    digests.set(path, sha256(plaintext));
  }
  return digests;
}
