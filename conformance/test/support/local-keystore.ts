/** A local keystore in a temporary directory, for the suite's own tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LocalProvider, openLocalKeystore } from '@keyport/local';

export interface TempKeystore {
  open(principal?: string): Promise<LocalProvider>;
  /** The first provider opened (the owner), once open. */
  readonly owner: LocalProvider | undefined;
  missingKeyUri(): string;
  /** Moves the keystore's clock forward. */
  advance(ms: number): void;
  now(): Date;
  remove(): void;
}

export function tempKeystore(label: string): TempKeystore {
  const dir = mkdtempSync(join(tmpdir(), `keyport-conformance-${label}-`));
  const path = join(dir, 'conformance.keystore');
  let offsetMs = 0;
  let missing = 0;
  const now = (): Date => new Date(Date.now() + offsetMs);
  const state: { owner: LocalProvider | undefined } = { owner: undefined };
  return {
    get owner() {
      return state.owner;
    },
    async open(principal) {
      const provider = await openLocalKeystore({
        path,
        passphrase: 'conformance passphrase',
        clock: now,
        create: true,
        kdf: { log2N: 10 }, // test speed only; the keystore's default cost is 2^15
        ...(principal !== undefined ? { principal } : {}),
      });
      state.owner ??= provider;
      return provider;
    },
    missingKeyUri() {
      if (state.owner === undefined) throw new Error('the keystore is not open');
      missing++;
      return state.owner.keyUri(`no-such-key-${missing}`);
    },
    advance(ms) {
      offsetMs += ms;
    },
    now,
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
