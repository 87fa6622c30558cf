/**
 * The directory fsyncs of a migration are coalesced per directory: every caller is covered by a
 * sync that began after it asked (so after its rename), and concurrent callers share one.
 */
import { describe, expect, it } from 'vitest';
import { coalescedDirSync } from '../src/migrate/dir-sync.js';

function recordingSync() {
  const started: Array<{ dir: string; at: number; finish: () => void }> = [];
  let clock = 0;
  const sync = (dir: string): Promise<void> =>
    new Promise((resolve) => {
      started.push({ dir, at: clock++, finish: resolve });
    });
  return { started, sync, tick: () => clock++ };
}

const settled = () => new Promise((r) => setImmediate(r));

describe('coalescedDirSync', () => {
  it('shares one sync among callers that asked before it started', async () => {
    const r = recordingSync();
    const syncDir = coalescedDirSync(r.sync);
    const calls = [syncDir('/d'), syncDir('/d'), syncDir('/d')];
    await settled();
    expect(r.started.map((s) => s.dir)).toEqual(['/d']);
    r.started[0]?.finish();
    await Promise.all(calls);
  });

  it('a caller arriving while a sync runs waits for the next one, which starts after the first ends', async () => {
    const r = recordingSync();
    const syncDir = coalescedDirSync(r.sync);
    let firstDone = false;
    const first = syncDir('/d').then(() => {
      firstDone = true;
    });
    await settled();
    expect(r.started).toHaveLength(1);
    let lateDone = false;
    const late = [syncDir('/d'), syncDir('/d')].map((p) =>
      p.then(() => {
        lateDone = true;
      }),
    );
    await settled();
    // The running sync may have begun before the late callers' renames: it does not count for them.
    expect(r.started).toHaveLength(1);
    r.started[0]?.finish();
    await first;
    await settled();
    expect(firstDone).toBe(true);
    expect(lateDone).toBe(false);
    expect(r.started).toHaveLength(2);
    r.started[1]?.finish();
    await Promise.all(late);
    expect(lateDone).toBe(true);
  });

  it('keeps directories apart, and a failed sync does not block the next', async () => {
    const failing = coalescedDirSync(async (dir) => {
      if (dir === '/bad') throw new Error('EIO');
    });
    await expect(failing('/bad')).rejects.toThrow('EIO');
    await expect(failing('/bad')).rejects.toThrow('EIO');
    await expect(failing('/good')).resolves.toBeUndefined();
    const r = recordingSync();
    const syncDir = coalescedDirSync(r.sync);
    const a = syncDir('/a');
    const b = syncDir('/b');
    await settled();
    expect(r.started.map((s) => s.dir).sort()).toEqual(['/a', '/b']);
    for (const s of r.started) s.finish();
    await Promise.all([a, b]);
  });
});
