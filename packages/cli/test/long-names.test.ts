/**
 * File names at NAME_MAX (255 bytes of UTF-8): every name the CLI derives from one — the output
 * temp, migrate's temp, the journal's lock, take-over marker and lock temps — fits too, so a
 * file with a valid name can be encrypted, decrypted, rewrapped (-o and --in-place) and
 * migrated, and a long --journal works. Shortened names stay valid UTF-8 (no U+FFFD), unique per
 * name, and found again by the clean-up of stale files.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wellFormedText } from '../src/args.js';
import { NAME_MAX } from '../src/files/fit-name.js';
import { TEMP_MARK, tempPathFor } from '../src/files/output-file.js';
import { removeLeftoverLockTemps } from '../src/migrate/lock.js';
import { breakMarkerPathOf, lockPathOf, lockTempPrefixOf } from '../src/migrate/lock-names.js';
import { isMigrationTempOf, migrationTempFor, TEMP_SUFFIX } from '../src/migrate/plan.js';
import { jsonError, localWorkspace, runCli } from './support/cli.js';
import { localKeys, sha256 } from './support/seal.js';

const bytes = (s: string): number => Buffer.byteLength(s);

/** Valid names of 249 to 255 bytes: ASCII, 2-, 3- and 4-byte characters, and a mix that cuts badly. */
const LONG_NAMES = [
  'n'.repeat(255),
  `a${'é'.repeat(127)}`, // 255 bytes; byte 200 falls inside a character
  '中'.repeat(83), // 249 bytes
  '😀'.repeat(63), // 252 bytes (surrogate pairs in JavaScript)
  `x${'ü'.repeat(60)}${'字'.repeat(40)}`, // 241 bytes
];

let ws: Awaited<ReturnType<typeof localWorkspace>>;

beforeAll(async () => {
  ws = await localWorkspace();
  for (const n of ['a', 'b']) expect((await runCli(['keys', 'create', n], { cwd: ws.dir })).code).toBe(0);
});
afterAll(async () => {
  await rm(ws.dir, { recursive: true, force: true });
});

/** A working directory of its own, with a config naming the workspace's keystore. */
async function subdir(name: string): Promise<string> {
  const dir = join(ws.dir, name);
  await mkdir(dir);
  const config = { providers: { local: { keystore: ws.keystore } } };
  await writeFile(join(dir, 'keyport.config.json'), JSON.stringify(config));
  return dir;
}

function expectFits(name: string): void {
  expect(bytes(name)).toBeLessThanOrEqual(NAME_MAX);
  // No U+FFFD (a cut inside a character) and no lone surrogate (a cut inside an emoji).
  expect(wellFormedText(name)).toBe(true);
}

describe('derived names fit NAME_MAX', () => {
  it('output temps: valid UTF-8 within 255 bytes, distinct for names that share a long prefix', () => {
    expect(LONG_NAMES.every((n) => bytes(n) <= NAME_MAX)).toBe(true);
    for (const name of LONG_NAMES) {
      const tmp = basename(tempPathFor(join('/d', name)));
      expectFits(tmp);
      expect(tmp.endsWith(TEMP_MARK)).toBe(true);
    }
    // Two names equal in their first 240 bytes: prefixes of their own (the hash of the whole name).
    const writer = /\.[0-9a-f]{8}-\d+-\d*-[0-9a-f]{12}\.keyport\.tmp$/;
    const p1 = basename(tempPathFor(`/d/${'q'.repeat(240)}one`)).replace(writer, '');
    const p2 = basename(tempPathFor(`/d/${'q'.repeat(240)}two`)).replace(writer, '');
    expect(p1).not.toBe(p2);
    // Short names are kept whole, followed by the writer: host tag, pid, start time, random.
    expect(basename(tempPathFor('/d/out.enc'))).toMatch(
      new RegExp(`^\\.out\\.enc\\.[0-9a-f]{8}-${process.pid}-\\d*-[0-9a-f]{12}\\.keyport\\.tmp$`),
    );
  });

  it("migrate's temps and the lock's names: within 255 bytes, recognised again; short names unchanged", () => {
    for (const name of LONG_NAMES) {
      const file = join('/d', name);
      const tmp = migrationTempFor(file, '0123456789ab');
      expectFits(basename(tmp));
      expect(tmp.endsWith(TEMP_SUFFIX)).toBe(true);
      expect(isMigrationTempOf(file, tmp)).toBe(true);
      for (const p of [lockPathOf(file), breakMarkerPathOf(file)]) {
        expectFits(basename(p));
        expectFits(`${basename(lockTempPrefixOf(p))}.ffffffff-2147483647-0123456789ab.tmp`);
      }
    }
    expect(migrationTempFor('/d/x.enc', '0123456789ab')).toBe(`/d/x.enc.0123456789ab${TEMP_SUFFIX}`);
    expect(lockPathOf('/d/j')).toBe('/d/j.lock');
    expect(breakMarkerPathOf('/d/j')).toBe('/d/j.lock.break');
  });

  it('the clean-up finds the shortened lock temps of a long journal, and leaves other files', async () => {
    const dir = join(ws.dir, 'locktemps');
    await mkdir(dir);
    const journal = join(dir, 'é'.repeat(125)); // 250 bytes
    const lock = lockPathOf(journal);
    const marker = breakMarkerPathOf(journal);
    const leftovers = [lock, marker].map((p) => `${lockTempPrefixOf(p)}.0123456789ab.tmp`);
    const keep = join(dir, 'unrelated.0123456789ab.tmp');
    for (const f of [...leftovers, keep]) await writeFile(f, '');
    const removed = await removeLeftoverLockTemps(lock, Date.now() + 61_000, marker);
    expect(removed.sort()).toEqual(leftovers.sort());
    expect(await readdir(dir)).toEqual(['unrelated.0123456789ab.tmp']);
  });
});

describe('commands on files with names of up to 255 bytes', () => {
  it('encrypt, decrypt and rewrap with -o and --in-place: each works, nothing else is left', async () => {
    const dir = await subdir('crypto');
    const cli = (args: string[]) => runCli(['--json', ...args], { cwd: dir });
    for (const name of LONG_NAMES) {
      await writeFile(join(dir, 'plain'), `contents of ${name}`);
      const enc = await cli(['encrypt', '-r', ws.uri('a'), 'plain', '-o', name]);
      expect(enc.code, enc.stderr).toBe(0);
      const re = await cli(['rewrap', name, '--in-place', '-k', ws.uri('a'), '--add', ws.uri('b')]);
      expect(re.code, re.stderr).toBe(0);
      const dec = await cli(['decrypt', name, '-o', 'out', '-k', ws.uri('b')]);
      expect(dec.code, dec.stderr).toBe(0);
      expect(await readFile(join(dir, 'out'), 'utf8')).toBe(`contents of ${name}`);
      // The other way round: the long name is the output of decrypt and the input of --in-place.
      const dec2 = await cli(['decrypt', name, '-o', `${name.slice(0, -2)}_`, '-k', ws.uri('a')]);
      expect(dec2.code, dec2.stderr).toBe(0);
      const encInPlace = await cli(['encrypt', '-r', ws.uri('b'), `${name.slice(0, -2)}_`, '--in-place']);
      expect(encInPlace.code, encInPlace.stderr).toBe(0);
      const decInPlace = await cli(['decrypt', `${name.slice(0, -2)}_`, '--in-place', '-k', ws.uri('b')]);
      expect(decInPlace.code, decInPlace.stderr).toBe(0);
      expect(await readFile(join(dir, `${name.slice(0, -2)}_`), 'utf8')).toBe(`contents of ${name}`);
      expect((await readdir(dir)).sort()).toEqual(
        ['keyport.config.json', 'out', 'plain', name, `${name.slice(0, -2)}_`].sort(),
      );
      for (const f of ['out', 'plain', name, `${name.slice(0, -2)}_`]) await rm(join(dir, f));
    }
  });

  it('a name over 255 bytes is refused as the wrong path it is (exit 8), not as an I/O error', async () => {
    const dir = await subdir('toolong');
    await writeFile(join(dir, 'plain'), 'x');
    const r = await runCli(['--json', 'encrypt', '-r', ws.uri('a'), 'plain', '-o', 'é'.repeat(128)], {
      cwd: dir,
    });
    expect(r.code).toBe(8);
    expect(jsonError(r.stderr)).toMatchObject({ code: 'FileNotFound' });
    expect(jsonError(r.stderr).message).toMatch(/longer than the file system allows \(ENAMETOOLONG\)/);
    expect((await readdir(dir)).sort()).toEqual(['keyport.config.json', 'plain']);
  });

  it('migrate: long file names and a long --journal migrate; a killed run’s shortened temp is removed', async () => {
    const dir = await subdir('mig');
    await mkdir(join(dir, 'data'));
    const keys = await localKeys(ws.keystore);
    const digests = new Map<string, string>();
    for (const name of LONG_NAMES) {
      const plaintext = Buffer.from(`migrate ${name}`);
      await writeFile(
        join(dir, 'data', name),
        await sealEnvelope(plaintext, { recipients: [ws.uri('a')], keys }),
      );
      digests.set(name, sha256(plaintext));
    }
    // A 252-byte journal: `<journal>.lock` would be 257 bytes.
    const journalName = 'j'.repeat(252);
    const journal = join(dir, journalName);
    // A run killed after journalling its temp and creating it: the next run removes it.
    const victim = join(dir, 'data', LONG_NAMES[0] as string);
    const staleTmp = migrationTempFor(victim, 'fedcba987654');
    await writeFile(staleTmp, 'half a rewrap');
    const header = { journal: 'keyport-migrate/1', from: ws.uri('a'), to: ws.uri('b'), removeSource: true };
    await writeFile(
      journal,
      `${JSON.stringify(header)}\n${JSON.stringify({ f: victim, s: 'rewrapped', tmp: staleTmp })}\n`,
    );

    const run = await runCli(
      [
        '--json',
        'migrate',
        '--from',
        ws.uri('a'),
        '--to',
        ws.uri('b'),
        'data',
        '--remove-source',
        '--journal',
        journalName,
      ],
      { cwd: dir },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      total: LONG_NAMES.length,
      migrated: LONG_NAMES.length,
      failed: 0,
    });
    for (const [name, digest] of digests) {
      const opened = await openEnvelope(await readFile(join(dir, 'data', name)), {
        trust: [ws.uri('b')],
        keys,
      });
      expect(sha256(opened.plaintext)).toBe(digest);
    }
    expect((await readdir(join(dir, 'data'))).sort()).toEqual([...LONG_NAMES].sort());
    // Lock released, no lock temp or marker left: only the journal.
    expect((await readdir(dir)).sort()).toEqual(['data', journalName, 'keyport.config.json'].sort());
  });
});
