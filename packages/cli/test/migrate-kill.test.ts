/**
 * Crash safety at the scale: FILES envelope files sealed under an AWS KMS key (local-kms)
 * are migrated to an OpenBao transit key by the real bin in a child process, SIGKILLed at KILLS
 * random points (chosen by journal progress, so every kill lands mid-migration) and resumed each
 * time. At the end every file opens with the new key alone, every plaintext digest is unchanged,
 * no temp file is left, and the journal shows each file replaced exactly once and never touched
 * again after that (nothing rewrapped twice).
 */
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { kmsRecipient, openEnvelope } from '@keyport/envelope';
import { describe, expect, it } from 'vitest';
import { peekMessage } from '../src/migrate/header-peek.js';
import { BIN, HOOKS, PASSPHRASE, spawnCli } from './support/cli.js';
import { awsToOpenbaoWorkspace } from './support/emulators.js';
import { sealFiles, sha256 } from './support/seal.js';

const FILES = 1000;
const KILLS = 20;

async function journalLines(path: string): Promise<number> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').length - 1;
}

/** Starts the migration and SIGKILLs it once the journal has grown past `killAtLine`. */
function runAndKill(
  cwd: string,
  env: Record<string, string>,
  args: string[],
  journal: string,
  killAtLine: number,
): Promise<'killed' | number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', HOOKS, BIN, ...args], {
      cwd,
      env: {
        PATH: process.env.PATH,
        KEYPORT_CLI_FROM_SOURCE: '1',
        KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE,
        ...env,
      },
      stdio: 'ignore',
    });
    let killed = false;
    const poll = setInterval(() => {
      journalLines(journal).then((n) => {
        if (n >= killAtLine && !killed) {
          killed = true;
          child.kill('SIGKILL');
        }
      }, reject);
    }, 5);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearInterval(poll);
      resolve(killed ? 'killed' : (code ?? -1));
    });
  });
}

describe('migrate AWS KMS (local-kms) -> OpenBao under SIGKILL', () => {
  it(`${FILES} files, killed at ${KILLS} random points, resumed each time: nothing lost, nothing done twice`, {
    timeout: 300_000, // ~30 s alone; the whole suite shares 2 cores with it
  }, async () => {
    const { ws, env, keys, awsUri, baoUri } = await awsToOpenbaoWorkspace('kill');
    const digests = await sealFiles(keys, awsUri, join(ws.dir, 'data'), FILES);
    const journal = join(ws.dir, '.keyport-migrate.journal');
    const args = [
      'migrate',
      '--from',
      awsUri,
      '--to',
      baoUri,
      '--remove-source',
      '--jobs',
      '16',
      '--no-progress',
      'data',
    ];

    // 4 journal lines per file (pending, rewrapped, verified, replaced) + the header line.
    const totalLines = 1 + FILES * 4;
    const points = Array.from(
      { length: KILLS },
      () => 2 + Math.floor(Math.random() * (totalLines - 200)),
    ).sort((x, y) => x - y);
    let kills = 0;
    for (const point of points) {
      const at = Math.max(point, (await journalLines(journal)) + 1 + Math.floor(Math.random() * 12));
      const outcome = await runAndKill(ws.dir, env, args, journal, at);
      if (outcome === 'killed') kills++;
      else expect(outcome).toBe(0);
    }
    expect(kills).toBeGreaterThanOrEqual(KILLS - 2);

    const final = await spawnCli(['--json', ...args], { cwd: ws.dir, env, timeoutMs: 60_000 });
    // The last killed run's lock is taken over, with a note; nothing else on stderr.
    expect(final.stderr).toMatch(
      /^(\{"note":"took over the journal lock of pid \d+ .*, which is no longer running"\}\n)?$/,
    );
    expect(final.code).toBe(0);
    const summary = JSON.parse(final.stdout);
    expect(summary.total).toBe(FILES);
    expect(summary.failed).toBe(0);
    expect(summary.migrated + summary.alreadyDone).toBe(FILES);

    const fromAws = kmsRecipient(awsUri);
    const toBao = kmsRecipient(baoUri);
    for (const [file, digest] of digests) {
      const bytes = await readFile(file);
      const opened = await openEnvelope(bytes, { trust: [baoUri], keys });
      expect(sha256(opened.plaintext)).toBe(digest);
      const peeked = await peekMessage(file);
      // The new key only: exactly one EDK, OpenBao's; the AWS one is gone.
      expect(peeked.kind === 'envelope' && peeked.edks.length === 1).toBe(true);
      if (peeked.kind === 'envelope') {
        expect(toBao.matches(peeked.edks[0] as never)).toBe(true);
        expect(fromAws.matches(peeked.edks[0] as never)).toBe(false);
      }
    }
    for (const sub of ['even', 'odd']) {
      const names = await readdir(join(ws.dir, 'data', sub));
      expect(names.filter((n) => !n.endsWith('.enc'))).toEqual([]);
      expect(names).toHaveLength(FILES / 2);
    }
    const entries = (await readFile(journal, 'utf8'))
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((l) => JSON.parse(l) as { f: string; s: string });
    const replaced = new Map<string, number>();
    const touchedAfterReplace = new Set<string>();
    for (const e of entries) {
      if ((replaced.get(e.f) ?? 0) > 0 && e.s !== 'replaced') touchedAfterReplace.add(e.f);
      if (e.s === 'replaced') replaced.set(e.f, (replaced.get(e.f) ?? 0) + 1);
    }
    expect(replaced.size).toBe(FILES);
    expect([...replaced.values()].every((n) => n === 1)).toBe(true);
    expect([...touchedAfterReplace]).toEqual([]);
    await keys.close();
  });
});
