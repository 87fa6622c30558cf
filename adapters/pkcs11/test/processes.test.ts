/**
 * Several real processes writing keys on one SoftHSM2 token at the same moment. Writers on one
 * host share the token's lock file, so of two creating one name exactly one succeeds and two
 * rotating one key make versions 2 and 3; writers that do not share it (as on two hosts) never
 * both succeed and leave no second key behind.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pkcs11Provider } from '../src/index.js';
import { findObjects } from '../src/objects.js';
import { P } from '../src/p11.js';
import { killChildren, runChild } from './support/spawn-child.js';
import { openProvider, signal, softhsm, uniqueName } from './support.js';

const WRITER = fileURLToPath(new URL('./support/key-writer.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'keyport-p11-procs-'));

type Outcome =
  | { ok: true; version: string; ciphertext?: string; sealError?: string }
  | { ok: false; code: string; message: string };

function runWriter(args: string[]): Promise<Outcome> {
  return runChild<Outcome>(WRITER, args, { ...process.env, ...softhsm() });
}

let round = 0;
/** Runs one writer per entry of `lockDirs` (undefined: the default directory), all released at once. */
async function together(op: 'create' | 'rotate', name: string, lockDirs: Array<string | undefined>) {
  const start = join(dir, `start-${++round}`);
  const writers = lockDirs.map((lockDir, id) =>
    runWriter([op, name, start, String(id), ...(lockDir !== undefined ? [lockDir] : [])]),
  );
  // Each child loads the sources and logs in first: released only once all are ready.
  const deadline = Date.now() + 120_000;
  const ready = () => readdirSync(dir).filter((n) => n.startsWith(`start-${round}.ready-`)).length;
  while (ready() < lockDirs.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  writeFileSync(start, '');
  return Promise.all(writers);
}

let provider: Pkcs11Provider;
beforeAll(async () => {
  provider = await openProvider({ keyCacheMs: 0 });
});
afterAll(async () => {
  killChildren();
  await provider.close();
  rmSync(dir, { recursive: true, force: true });
});

/** How many objects of each class carry `name` as their label. */
function objectsLabelled(name: string): Promise<{ data: number; secret: number }> {
  return provider.pool.run(signal(), async (session) => ({
    data: findObjects(
      provider.p11,
      session,
      [
        { type: P.CKA_LABEL, value: name },
        { type: P.CKA_CLASS, value: P.CKO_DATA },
      ],
      1000,
    ).length,
    secret: findObjects(
      provider.p11,
      session,
      [
        { type: P.CKA_LABEL, value: name },
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      ],
      1000,
    ).length,
  }));
}

async function opens(name: string, outcome: Outcome): Promise<string> {
  if (!outcome.ok || outcome.ciphertext === undefined)
    throw new Error(`nothing sealed: ${JSON.stringify(outcome)}`);
  const { plaintext } = await provider.decrypt(
    { uri: provider.uriFor(name) },
    Buffer.from(outcome.ciphertext, 'hex'),
    {},
    { signal: signal() },
  );
  return Buffer.from(plaintext).toString();
}

describe('processes on one host share the token lock', () => {
  it('two creating one name: one key, the other AlreadyExists (3 rounds)', async () => {
    for (let i = 0; i < 3; i++) {
      const name = uniqueName('race-create');
      const outcomes = await together('create', name, [undefined, undefined]);
      const won = outcomes.filter((o) => o.ok);
      expect(won, JSON.stringify(outcomes)).toHaveLength(1);
      expect(outcomes.filter((o) => !o.ok)).toMatchObject([
        { code: 'AlreadyExists', message: 'an object with this label already exists on the token' },
      ]);
      expect(await objectsLabelled(name)).toEqual({ data: 1, secret: 1 });
      expect(await opens(name, won[0] as Outcome)).toMatch(/^probe [01]$/);
    }
  });

  it('two rotating one key: versions 2 and 3, both ciphertexts open', async () => {
    for (let i = 0; i < 2; i++) {
      const name = uniqueName('race-rotate');
      await provider.createKey({ name, spec: 'AES_256' }, { signal: signal() });
      const outcomes = await together('rotate', name, [undefined, undefined]);
      expect(
        outcomes.every((o) => o.ok),
        JSON.stringify(outcomes),
      ).toBe(true);
      expect(outcomes.map((o) => (o.ok ? o.version : '')).sort()).toEqual(['2', '3']);
      for (const o of outcomes) expect(await opens(name, o)).toMatch(/^probe [01]$/);
      const info = await provider.describeKey({ uri: provider.uriFor(name) }, { signal: signal() });
      expect(info.versions?.map((v) => v.version)).toEqual(['1', '2', '3']);
      expect(await objectsLabelled(name)).toEqual({ data: 1, secret: 3 });
    }
  });
});

describe('writers that do not share the lock (as on two hosts)', () => {
  it('never both succeed, and leave one key or none (4 rounds)', async () => {
    for (let i = 0; i < 4; i++) {
      const name = uniqueName('race-hosts');
      const own = [mkdtempSync(join(dir, 'host-a-')), mkdtempSync(join(dir, 'host-b-'))];
      const outcomes = await together('create', name, own);
      const won = outcomes.filter((o) => o.ok);
      expect(won.length, JSON.stringify(outcomes)).toBeLessThanOrEqual(1);
      // A loser found the label taken before writing, or removed what it wrote.
      for (const o of outcomes) if (!o.ok) expect(o.code).toBe('AlreadyExists');
      expect(await objectsLabelled(name)).toEqual(
        won.length === 1 ? { data: 1, secret: 1 } : { data: 0, secret: 0 },
      );
      // The winner's own encryption may meet the loser's objects before they are removed (a
      // KeyStateConflict): that is the detectable window, so only a sealed probe is checked.
      const sealed = won.find((o) => o.ok && o.ciphertext !== undefined);
      if (sealed !== undefined) expect(await opens(name, sealed)).toMatch(/^probe [01]$/);
    }
  });
});
