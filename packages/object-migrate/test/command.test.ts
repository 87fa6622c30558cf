/** The command handlers a CLI wires: option strings in, exit code and report out. */
import { sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isObjectLocation,
  migrateObjectsCommand,
  migrateObjectsStatusCommand,
  parseMaxRps,
  parseVerify,
} from '../src/command.js';
import { parseObjectLocation } from '../src/location.js';
import { type TestKeys, testKeys } from './helpers/keys.js';
import { endpointsFor, freshBucket } from './helpers/stores.js';

let k: TestKeys;
beforeAll(async () => {
  k = await testKeys();
});
afterAll(async () => {
  await k?.close();
});

describe('command handlers', () => {
  it('parses options strictly', () => {
    expect(isObjectLocation('gs://b/p')).toBe(true);
    expect(isObjectLocation('./data')).toBe(false);
    expect(parseVerify('sample:10')).toEqual({ sample: 10 });
    for (const bad of ['sample:0', 'sample:-1', 'sample:NaN', 'some', 'sample:1e3'])
      expect(() => parseVerify(bad), bad).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
  });

  it('--max-rps takes decimal rates down to 0.001 a second, fractions included, and nothing else', () => {
    expect(parseMaxRps(undefined)).toBeUndefined();
    for (const [text, rate] of [
      ['0.5', 0.5],
      ['0.001', 0.001],
      ['0.0010', 0.001],
      ['2.5', 2.5],
      ['200', 200],
      ['1000000', 1_000_000],
    ] as const)
      expect(parseMaxRps(text), text).toBe(rate);
    for (const bad of [
      '0',
      '0.0',
      '0.0009',
      '-1',
      '-0.5',
      '+1',
      'NaN',
      'Infinity',
      '1e3',
      '1e3x',
      '0x10',
      '.5',
      '5.',
      '05',
      ' 1',
      '1 ',
      '1,5',
      '',
      '1000000.5',
      '1000001',
    ])
      expect(() => parseMaxRps(bad), bad).toThrow(
        expect.objectContaining({ code: 'InvalidArgument', message: expect.stringContaining('--max-rps') }),
      );
  });

  it('--max-rps 0.5 runs a migration at one storage call every 2 s; --jobs takes whole numbers only', async () => {
    const uri = `${await freshBucket('moto')}/r/`;
    const e = endpointsFor('moto');
    const { store } = parseObjectLocation(uri, e);
    await store.put('r/o', await sealEnvelope(Buffer.from('v'), { recipients: [k.from], keys: k.keys }));
    const o = { from: k.from, to: k.to, s3Endpoint: e.s3Endpoint as string };
    for (const jobs of ['1.5', '0', '65', '1e1'])
      await expect(migrateObjectsCommand(uri, { ...o, jobs }, { keys: k.keys }), jobs).rejects.toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringContaining('--jobs'),
      });
    const t0 = performance.now();
    const out = await migrateObjectsCommand(uri, { ...o, maxRps: '0.5', jobs: '1' }, { keys: k.keys });
    const seconds = (performance.now() - t0) / 1000;
    expect(out.exitCode).toBe(0);
    expect(out.result).toMatchObject({ counts: { migrated: 1, failed: 0 } });
    // The listing, the read and the write: the first goes at once, each other one 2 s later.
    const calls = (out.result as { calls: Record<string, { calls: number }> }).calls.s3?.calls ?? 0;
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(seconds).toBeGreaterThan((calls - 1) * 2 - 0.1);
    // Every request waits its turn (a read is two, the journal's writes too): ~8 calls, ~16 s.
  }, 90_000);

  it('migrates two shards and reports status from the journals and the headers', async () => {
    const uri = `${await freshBucket('moto')}/p/`;
    const e = endpointsFor('moto');
    const { store } = parseObjectLocation(uri, e);
    for (let i = 0; i < 12; i++)
      await store.put(
        `p/o${i}`,
        await sealEnvelope(Buffer.from(`v${i}`), { recipients: [k.from], keys: k.keys }),
      );
    const o = {
      from: k.from,
      to: k.to,
      verify: 'all',
      maxRps: '500',
      jobs: '3',
      s3Endpoint: e.s3Endpoint as string,
    };
    await expect(migrateObjectsCommand(uri, { ...o, maxRps: 'NaN' }, { keys: k.keys })).rejects.toMatchObject(
      {
        code: 'InvalidArgument',
      },
    );
    const a = await migrateObjectsCommand(uri, { ...o, shard: '0/2' }, { keys: k.keys });
    expect(a.exitCode).toBe(0);
    const mid = await migrateObjectsStatusCommand(uri, { s3Endpoint: o.s3Endpoint });
    expect(mid.result).toMatchObject({ shards: { expected: 2, reporting: 1, missing: [1] } });
    const b = await migrateObjectsCommand(uri, { ...o, shard: '1/2' }, { keys: k.keys });
    expect(b.exitCode).toBe(0);
    const s = await migrateObjectsStatusCommand(uri, {
      s3Endpoint: o.s3Endpoint,
      headers: { from: k.from, to: k.to },
    });
    expect(s.result).toMatchObject({
      total: 12,
      done: 12,
      left: 0,
      failed: 0,
      migrated: 12,
      headers: { target: 12, source: 0 },
    });
    expect(s.lines[0]).toContain('12 done, 0 left');
  });
});
