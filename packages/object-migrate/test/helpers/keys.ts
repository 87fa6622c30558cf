/** A real @keyport/local keystore with a source and a target key, shared by file with child workers. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Keyport } from '@keyport/core';
import { openLocalKeystore } from '@keyport/local';

export const PASSPHRASE = 'object-migrate tests';
export const KDF = { log2N: 10, r: 8, p: 1 } as const;

export interface TestKeys {
  readonly keys: Keyport;
  readonly from: string;
  readonly to: string;
  readonly path: string;
  close(): Promise<void>;
}

export async function testKeys(): Promise<TestKeys> {
  const dir = await mkdtemp(join(tmpdir(), 'keyport-objmig-'));
  const path = join(dir, 'keys.keystore');
  const provider = await openLocalKeystore({ path, passphrase: PASSPHRASE, create: true, kdf: KDF });
  const keys = new Keyport({ providers: [provider], onAuditError: () => {} });
  const from = (await keys.createKey('local', { name: 'source', spec: 'AES_256' })).uri;
  const to = (await keys.createKey('local', { name: 'target', spec: 'AES_256' })).uri;
  return {
    keys,
    from,
    to,
    path,
    async close() {
      await provider.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
