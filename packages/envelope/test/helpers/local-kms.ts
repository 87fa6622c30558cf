/** A real @keyport/local keystore behind core's Keyport client, in a temp dir. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyport } from '@keyport/core';
import { openLocalKeystore } from '@keyport/local';

export interface LocalKms {
  readonly keys: Keyport;
  readonly uris: string[];
  /** The keystore file and its passphrase (to open it again). */
  readonly path: string;
  readonly passphrase: string;
  close(): Promise<void>;
}

export async function localKms(keyCount: number): Promise<LocalKms> {
  const dir = await mkdtemp(join(tmpdir(), 'keyport-envelope-'));
  const path = join(dir, 'keys.keystore');
  const passphrase = 'envelope tests';
  const provider = await openLocalKeystore({
    path,
    passphrase,
    create: true,
    kdf: { log2N: 10, r: 8, p: 1 },
  });
  const keys = new Keyport({ providers: [provider], onAuditError: () => {} });
  const uris: string[] = [];
  for (let i = 0; i < keyCount; i++) {
    uris.push((await keys.createKey('local', { name: `k${i}`, spec: 'AES_256' })).uri);
  }
  return {
    keys,
    uris,
    path,
    passphrase,
    async close() {
      await provider.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
