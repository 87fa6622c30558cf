/**
 * Any number of `keyport migrate` runs, kills and restarts over the same files: 1,000 envelopes,
 * rounds of 2 or 3 concurrent real processes — all on one journal (the lock lets one work; the
 * others exit 7) or each on its own journal (no lock between them) — SIGKILLed at random moments,
 * then every journal run to the end. Nothing may be lost, partial or double-wrapped: every file
 * opens with the new key to its original plaintext and carries exactly one EDK per key, no
 * temp file is left, no file is empty.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { kmsRecipient, openEnvelope } from '@keyport/envelope';
import { describe, expect, it } from 'vitest';
import { peekMessage } from '../src/migrate/header-peek.js';
import { BIN, HOOKS, localWorkspace, PASSPHRASE, runCli } from './support/cli.js';
import { localKeys, sealFiles, sha256 } from './support/seal.js';

const FILES = 1000;
const ROUNDS = 6;

type Outcome = number | 'killed';

/** Records written so far in all the journals (one line each). */
async function lines(dir: string, journals: Iterable<string>): Promise<number> {
  let n = 0;
  for (const j of journals) {
    const text = await readFile(join(dir, j), 'utf8').catch(() => '');
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  }
  return n;
}

function start(cwd: string, args: string[]): { done: Promise<Outcome>; kill: () => void } {
  const child = spawn(process.execPath, ['--import', HOOKS, BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1', KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
    stdio: 'ignore',
  });
  let killed = false;
  const done = new Promise<Outcome>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolve(killed ? 'killed' : (code ?? -1)));
  });
  return {
    done,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) {
        killed = true;
        child.kill('SIGKILL');
      }
    },
  };
}

describe('concurrent migrate runs with SIGKILLs and restarts', () => {
  it(`${FILES} files, ${ROUNDS} rounds of 2-3 runs (one journal or one each), random SIGKILLs: nothing lost, partial or double-wrapped`, {
    timeout: 180_000,
  }, async () => {
    const ws = await localWorkspace();
    for (const n of ['a', 'b']) expect((await runCli(['keys', 'create', n], { cwd: ws.dir })).code).toBe(0);
    const keys = await localKeys(ws.keystore);
    const a = ws.uri('a');
    const b = ws.uri('b');
    const digests = await sealFiles(keys, a, join(ws.dir, 'data'), FILES);
    const args = (journal: string) => [
      'migrate',
      '--from',
      a,
      '--to',
      b,
      '--jobs',
      '8',
      '--no-progress',
      '--journal',
      journal,
      'data',
    ];
    const journals = new Set<string>();
    const outcomes: Outcome[] = [];

    // At least ROUNDS rounds, more (up to twice as many) until ROUNDS - 1 runs were killed mid-way.
    const kills = (): number => outcomes.filter((o) => o === 'killed').length;
    for (let round = 0; round < ROUNDS || (kills() < ROUNDS - 1 && round < 2 * ROUNDS); round++) {
      const n = round % 3 === 0 ? 2 : 3;
      const shared = round % 2 === 0;
      const runs = Array.from({ length: n }, (_, i) => {
        const journal = shared ? 'shared.journal' : `own-${i}.journal`;
        journals.add(journal);
        return start(ws.dir, args(journal));
      });
      // Kill once the journals have grown by a random number of records: mid-migration.
      const startLines = await lines(ws.dir, journals);
      const killAt = startLines + 20 + Math.floor(Math.random() * 480);
      const all = Promise.all(runs.map((r) => r.done));
      let finished = false;
      void all.then(() => {
        finished = true;
      });
      while (!finished && (await lines(ws.dir, journals)) < killAt)
        await new Promise((r) => setTimeout(r, 5));
      // Every run still going is killed (a survivor holding the lock would finish every file and
      // leave later rounds nothing to interrupt); which step each is at is left to chance.
      for (const run of runs) run.kill();
      outcomes.push(...(await all));
    }
    // Every exit was a success, "locked" (7) or our SIGKILL: never a failure.
    expect(outcomes.filter((o) => o !== 'killed' && o !== 0 && o !== 7)).toEqual([]);
    expect(outcomes.filter((o) => o === 'killed').length, JSON.stringify(outcomes)).toBeGreaterThanOrEqual(
      ROUNDS - 1,
    );

    // Each journal run to the end (this also removes the temps its killed runs left).
    for (const journal of journals) {
      const r = await runCli(['--json', ...args(journal)], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ total: FILES, failed: 0, skipped: 0 });
    }

    const fromA = kmsRecipient(a);
    const toB = kmsRecipient(b);
    for (const [file, digest] of digests) {
      expect((await stat(file)).size).toBeGreaterThan(0);
      const opened = await openEnvelope(await readFile(file), { trust: [b], keys });
      expect(sha256(opened.plaintext)).toBe(digest);
      const peeked = await peekMessage(file);
      if (peeked.kind !== 'envelope') throw new Error(`${file} is no longer an envelope`);
      expect(peeked.edks.filter((e) => toB.matches(e))).toHaveLength(1);
      expect(peeked.edks.filter((e) => fromA.matches(e))).toHaveLength(1);
      expect(peeked.edks).toHaveLength(2);
    }
    for (const sub of ['even', 'odd']) {
      const names = await readdir(join(ws.dir, 'data', sub));
      expect(names.filter((x) => !x.endsWith('.enc'))).toEqual([]);
      expect(names).toHaveLength(FILES / 2);
    }
    await keys.close();
  });
});
