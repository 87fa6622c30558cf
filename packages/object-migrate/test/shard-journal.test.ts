/** Shard assignment, job-runner defaults, one writer per journal, status merging. */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  fileJournal,
  JOURNAL_FORMAT,
  type JournalState,
  JournalTakenError,
  journalName,
  objectJournal,
  readObjectJournals,
} from '../src/journal.js';
import { parseObjectLocation } from '../src/location.js';
import { parseShard, shardFromEnv, shardOf } from '../src/shard.js';
import { countHeaders, mergeJournals } from '../src/status.js';
import { TokenBucket } from '../src/throttle.js';
import { EMULATORS, endpointsFor, freshBucket } from './helpers/stores.js';

function state(index: number, count: number, over: Partial<JournalState> = {}): JournalState {
  return {
    format: JOURNAL_FORMAT,
    location: 's3://b/p',
    from: 'local://a',
    to: 'local://b',
    shard: { index, count },
    startedAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:10.000Z',
    listingDone: true,
    finished: false,
    counts: {
      listed: 100,
      done: 40,
      migrated: 30,
      already: 5,
      skipped: 5,
      vanished: 0,
      failed: 2,
      conflicts: 1,
      verified: 0,
    },
    rate: 4,
    calls: {},
    failures: [],
    conflicts: [],
    vanished: [],
    runs: 1,
    writer: 'w1',
    ...over,
  };
}

describe('shards', () => {
  it('parses i/n strictly', () => {
    expect(parseShard('2/4')).toEqual({ index: 2, count: 4 });
    for (const bad of [
      '4/4',
      '-1/4',
      '1/0',
      '1.5/4',
      ' 1/4',
      '1/4/5',
      'a/b',
      '01/4',
      '__proto__/2',
      'NaN/2',
      '1/99999999',
    ])
      expect(() => parseShard(bad), bad).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
  });

  it('reads Kubernetes Indexed Jobs and AWS Batch array jobs', () => {
    expect(shardFromEnv({ JOB_COMPLETION_INDEX: '3', JOB_COMPLETIONS: '8' })).toEqual({ index: 3, count: 8 });
    expect(shardFromEnv({ AWS_BATCH_JOB_ARRAY_INDEX: '1', KEYPORT_SHARD_COUNT: '2' })).toEqual({
      index: 1,
      count: 2,
    });
    expect(shardFromEnv({})).toEqual({ index: 0, count: 1 });
    expect(() => shardFromEnv({ JOB_COMPLETION_INDEX: '3' })).toThrow(/KEYPORT_SHARD_COUNT/);
    expect(() => shardFromEnv({ AWS_BATCH_JOB_ARRAY_INDEX: '5', KEYPORT_SHARD_COUNT: '5' })).toThrow(
      /0\.\.4/,
    );
  });

  it('splits keys deterministically and about evenly, every key in exactly one shard', () => {
    const per = [0, 0, 0, 0];
    for (let i = 0; i < 8000; i++) {
      const s = shardOf(`k/${i}`, 4);
      expect(shardOf(`k/${i}`, 4)).toBe(s);
      per[s] = (per[s] as number) + 1;
    }
    for (const n of per) expect(Math.abs(n - 2000)).toBeLessThan(200);
  });
});

describe('journals', () => {
  it.each(EMULATORS)(
    'a second writer of the same shard journal in a bucket is refused (%s)',
    async (emulator) => {
      const { store } = parseObjectLocation(await freshBucket(emulator), endpointsFor(emulator));
      const a = objectJournal(store, 'j/', { index: 0, count: 2 });
      const b = objectJournal(store, 'j/', { index: 0, count: 2 });
      await a.acquire();
      await b.acquire();
      await a.write(state(0, 2));
      await expect(b.write(state(0, 2, { writer: 'w2' }))).rejects.toBeInstanceOf(JournalTakenError);
      await a.write(state(0, 2, { runs: 2 }));
      // A restarted worker (after a kill) reads the current version and carries on.
      const c = objectJournal(store, 'j/', { index: 0, count: 2 });
      expect((await c.acquire())?.runs).toBe(2);
      await c.write(state(0, 2, { runs: 3 }));
      await c.write(state(0, 2, { runs: 4 }));
      await c.write(state(0, 2, { runs: 5 }));
    },
  );

  it.each(EMULATORS)(
    'status and header counts read objects as they are while they are rewritten or deleted (%s)',
    async (emulator) => {
      const { store } = parseObjectLocation(await freshBucket(emulator), endpointsFor(emulator));
      for (const i of [0, 1, 2])
        await store.put(`j/${journalName({ index: i, count: 3 })}`, Buffer.from(JSON.stringify(state(i, 3))));
      for (const i of [0, 1, 2]) await store.put(`data/${i}`, Buffer.from(`not an envelope ${i}`));
      // A worker rewrites its journal (and a migration an object) right after each first get,
      // before the body is read; another shard's journal and another object are deleted after
      // the listing named them. On GCS the first read of a rewritten object then fails as
      // changed; elsewhere it reads the version it got.
      const rewritten = new Set<string>();
      const racing: typeof store = {
        ...store,
        list: (prefix, signal) => store.list(prefix, signal),
        put: (...args) => store.put(...args),
        delete: (...args) => store.delete(...args),
        async get(key, signal) {
          if (key.endsWith('shard-2-of-3.json') || key === 'data/2') await store.delete(key);
          const read = await store.get(key, signal);
          if ((key.endsWith('shard-0-of-3.json') || key === 'data/0') && !rewritten.has(key)) {
            rewritten.add(key);
            const next =
              key === 'data/0'
                ? 'rewritten'
                : JSON.stringify(state(0, 3, { updatedAt: '2026-01-01T00:01:00.000Z', runs: 2 }));
            await store.put(key, Buffer.from(next));
          }
          return read;
        },
      };
      const journals = await readObjectJournals(racing, 'j/');
      expect(journals.map((j) => j.shard.index).sort()).toEqual([0, 1]);
      if (emulator === 'fake-gcs-server') expect(journals.find((j) => j.shard.index === 0)?.runs).toBe(2);
      expect(mergeJournals(journals).shards.missing).toEqual([2]);
      // data/2, deleted after the listing named it, is counted as vanished, not left out.
      expect(await countHeaders(racing, 'data/', 'local://ks#a', 'local://ks#b')).toEqual({
        target: 0,
        source: 0,
        both: 0,
        other: 2,
        vanished: 1,
        vanishedSeen: [{ key: 'data/2' }],
      });
    },
  );

  it('a journal file is locked; a lock left by a dead process is taken over', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'objmig-j-'));
    try {
      const a = fileJournal(dir, { index: 1, count: 2 });
      await a.acquire();
      await expect(fileJournal(dir, { index: 1, count: 2 }).acquire()).rejects.toBeInstanceOf(
        JournalTakenError,
      );
      await a.write(state(1, 2));
      await a.release();
      const { writeFile } = await import('node:fs/promises');
      const { hostname } = await import('node:os');
      await writeFile(
        join(dir, 'shard-1-of-2.json.lock'),
        JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname() }),
      );
      const b = fileJournal(dir, { index: 1, count: 2 });
      expect((await b.acquire())?.shard).toEqual({ index: 1, count: 2 });
      await b.release();
      // An empty lock (a taker killed before writing it, in earlier versions) is nobody's; a lock
      // that is not JSON, or JSON null, is refused typed, never a parse error.
      await writeFile(join(dir, 'shard-1-of-2.json.lock'), '');
      const c = fileJournal(dir, { index: 1, count: 2 });
      expect((await c.acquire())?.shard).toEqual({ index: 1, count: 2 });
      await c.release();
      for (const junk of ['not json', 'null', '{"__proto__": {"host": 1}}']) {
        await writeFile(join(dir, 'shard-1-of-2.json.lock'), junk);
        await expect(fileJournal(dir, { index: 1, count: 2 }).acquire()).rejects.toBeInstanceOf(
          JournalTakenError,
        );
      }
      expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a lock naming this very process, left by an earlier one with the same pid (a restarted container), is taken over', async () => {
    // A container's worker is often pid 1 (or another fixed pid) in every incarnation: after a
    // kill -9 and a restart in the same pod or container, its lock names a live process (this
    // one) on this host, and was refused forever although nobody held it.
    const dir = await mkdtemp(join(tmpdir(), 'objmig-j-'));
    try {
      const { writeFile } = await import('node:fs/promises');
      const { hostname } = await import('node:os');
      const lock = join(dir, 'shard-0-of-1.json.lock');
      const started = Math.round(Date.now() - process.uptime() * 1000);
      // Written by an earlier process with this pid: one started an hour before this one, and
      // one of a version that did not record when its process started.
      for (const earlier of [{ processStart: started - 3_600_000 }, {}]) {
        await writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), ...earlier }));
        const taker = fileJournal(dir, { index: 0, count: 1 });
        expect(await taker.acquire()).toBeUndefined();
        await taker.release();
      }
      // One naming this process's start is another worker thread's of this process: refused.
      await writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), processStart: started }));
      await expect(fileJournal(dir, { index: 0, count: 1 }).acquire()).rejects.toBeInstanceOf(
        JournalTakenError,
      );
      await rm(lock);
      const a = fileJournal(dir, { index: 0, count: 1 });
      expect(await a.acquire()).toBeUndefined();
      // Held by this process now: a second taker in it is refused, by this path or another
      // spelling of the same directory.
      await expect(fileJournal(dir, { index: 0, count: 1 }).acquire()).rejects.toBeInstanceOf(
        JournalTakenError,
      );
      await expect(fileJournal(`${dir}/./`, { index: 0, count: 1 }).acquire()).rejects.toBeInstanceOf(
        JournalTakenError,
      );
      await a.release();
      const b = fileJournal(dir, { index: 0, count: 1 });
      await b.acquire();
      await b.release();
      expect(await readdir(dir)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('status merges shards: done, left, failed, rate, ETA, missing shards', () => {
    const s = mergeJournals([
      state(0, 3),
      state(1, 3, {
        finished: true,
        rate: 9,
        counts: {
          listed: 50,
          done: 50,
          migrated: 50,
          already: 0,
          skipped: 0,
          vanished: 0,
          failed: 0,
          conflicts: 0,
          verified: 0,
        },
      }),
    ]);
    expect(s).toMatchObject({
      total: 150,
      done: 90,
      failed: 2,
      left: 58,
      rate: 4,
      etaSeconds: 15,
      totalKnown: false,
    });
    expect(s.shards).toEqual({ expected: 3, reporting: 2, finished: 1, missing: [2] });
  });
});

describe('token bucket', () => {
  it('holds a worker to maxRps', async () => {
    const b = new TokenBucket(50);
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) await b.take();
    const seconds = (performance.now() - t0) / 1000;
    // 50 burst + 50 at 50/s: about one second.
    expect(seconds).toBeGreaterThan(0.8);
    expect(seconds).toBeLessThan(2.5);
    expect(() => new TokenBucket(Number.NaN)).toThrow();
    expect(() => new TokenBucket(0)).toThrow();
  });
});
