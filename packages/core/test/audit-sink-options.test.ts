/**
 * JsonlAuditSink.open used as a careless caller would: no options, a misspelt option, lock limits
 * that are not numbers. Each is a typed InvalidArgument before any file is created.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JsonlAuditSink } from '../src/index.js';
import { event, KEY, tempLog } from './support/audit.js';

describe('JsonlAuditSink.open options', () => {
  it.each([
    ['no options', undefined, 'audit key'],
    ['a misspelt option (hmacKey given as key)', { key: KEY }, 'key'],
    ['an unknown option beside the key', { hmacKey: KEY, lockTimeout: 5 }, 'lockTimeout'],
    ['a misspelt lock option', { hmacKey: KEY, lock: { timeout: 5 } }, 'timeout'],
    [
      'a lock timeout that is NaN',
      { hmacKey: KEY, lock: { timeoutMs: Number.NaN } },
      'options.lock.timeoutMs',
    ],
    [
      'a lock staleness given as a string',
      { hmacKey: KEY, lock: { staleMs: '30000' } },
      'options.lock.staleMs',
    ],
    ['a lock that is not an object', { hmacKey: KEY, lock: 5 }, 'options.lock'],
  ])('%s is InvalidArgument naming it, and no log is created', async (_, options, named) => {
    const path = await tempLog();
    const error = await JsonlAuditSink.open(path, options as never).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'InvalidArgument', message: expect.stringContaining(named) });
    expect(existsSync(path)).toBe(false);
  });

  it('a log name too long for its lock, anchor and their temps is InvalidArgument before any file exists', async () => {
    const dir = dirname(await tempLog());
    const path = join(dir, 'a'.repeat(240));
    const error = await JsonlAuditSink.open(path, { hmacKey: KEY }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringMatching(/240 bytes; at most 222/),
    });
    expect(existsSync(path)).toBe(false);
  });

  it('a log name of 222 bytes (the longest) is written, anchored and reopened', async () => {
    const dir = dirname(await tempLog());
    const path = join(dir, 'é'.repeat(111));
    const sink = await JsonlAuditSink.open(path, { hmacKey: KEY });
    await sink.write(event(1));
    await sink.close();
    const again = await JsonlAuditSink.open(path, { hmacKey: KEY });
    await again.close();
    expect(existsSync(`${path}.anchor`)).toBe(true);
  });

  it('a path that is not a string is InvalidArgument', async () => {
    await expect(JsonlAuditSink.open(42 as never, { hmacKey: KEY })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });

  it('the documented options are taken', async () => {
    const sink = await JsonlAuditSink.open(await tempLog(), {
      hmacKey: KEY,
      lock: { timeoutMs: 1_000, staleMs: 5_000 },
    });
    await sink.close();
  });
});
