/**
 * Which worker owns which object: `hash(key) mod count`, so any number of workers split any
 * listing the same way without talking to each other. The shard comes from `--shard i/n` or
 * from the job runner: Kubernetes Indexed Jobs set `JOB_COMPLETION_INDEX`, AWS Batch array
 * jobs set `AWS_BATCH_JOB_ARRAY_INDEX`; the count is `KEYPORT_SHARD_COUNT` (or
 * `JOB_COMPLETIONS` / `AWS_BATCH_JOB_ARRAY_SIZE` where the manifest sets them).
 */
import { createHash } from 'node:crypto';
import { KeyportError, quote } from '@keyport/core';

export interface Shard {
  readonly index: number;
  readonly count: number;
}

export const MAX_SHARDS = 10_000;

function integer(text: string | undefined, what: string): number {
  if (text === undefined || !/^(0|[1-9][0-9]{0,5})$/.test(text))
    throw new KeyportError('InvalidArgument', `${what} must be a whole number, got ${quote(text ?? '')}`);
  return Number(text);
}

export function checkShard(index: number, count: number): Shard {
  if (!Number.isSafeInteger(count) || count < 1 || count > MAX_SHARDS)
    throw new KeyportError('InvalidArgument', `the shard count must be 1..${MAX_SHARDS}`);
  if (!Number.isSafeInteger(index) || index < 0 || index >= count)
    throw new KeyportError('InvalidArgument', `the shard index must be 0..${count - 1}`);
  return { index, count };
}

/** `"i/n"`, zero-based index. */
export function parseShard(text: string): Shard {
  const m = /^([^/]*)\/([^/]*)$/.exec(typeof text === 'string' ? text : '');
  if (m === null) throw new KeyportError('InvalidArgument', `--shard takes i/n, got ${quote(text)}`);
  return checkShard(integer(m[1], 'the shard index'), integer(m[2], 'the shard count'));
}

/** The job runner's shard, or `{0, 1}` when none is set. */
export function shardFromEnv(env: NodeJS.ProcessEnv = process.env): Shard {
  const k8s = env.JOB_COMPLETION_INDEX;
  const batch = env.AWS_BATCH_JOB_ARRAY_INDEX;
  if (k8s !== undefined) {
    const count = env.KEYPORT_SHARD_COUNT ?? env.JOB_COMPLETIONS;
    return checkShard(
      integer(k8s, 'JOB_COMPLETION_INDEX'),
      integer(count, 'KEYPORT_SHARD_COUNT (or JOB_COMPLETIONS)'),
    );
  }
  if (batch !== undefined) {
    const count = env.KEYPORT_SHARD_COUNT ?? env.AWS_BATCH_JOB_ARRAY_SIZE;
    return checkShard(
      integer(batch, 'AWS_BATCH_JOB_ARRAY_INDEX'),
      integer(count, 'KEYPORT_SHARD_COUNT (or AWS_BATCH_JOB_ARRAY_SIZE)'),
    );
  }
  return { index: 0, count: 1 };
}

/** The shard that owns `key` among `count`: the first 48 bits of SHA-256(key), mod count. */
export function shardOf(key: string, count: number): number {
  return createHash('sha256').update(key, 'utf8').digest().readUIntBE(0, 6) % count;
}
