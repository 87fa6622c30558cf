/** The command handlers a CLI wires: option strings in, exit code and report out. */
import { sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isObjectLocation,
  migrateObjectsCommand,
  migrateObjectsStatusCommand,
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
