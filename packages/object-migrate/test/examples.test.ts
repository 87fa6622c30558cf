/** The job-runner examples are consistent with how shards are read. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { shardFromEnv } from '../src/shard.js';

const dir = fileURLToPath(new URL('../../../examples/object-migration/', import.meta.url));

describe('examples/object-migration', () => {
  it('the Kubernetes Indexed Job sets KEYPORT_SHARD_COUNT to its completions', () => {
    const job = parse(readFileSync(`${dir}kubernetes-indexed-job.yaml`, 'utf8'));
    expect(job.kind).toBe('Job');
    expect(job.spec.completionMode).toBe('Indexed');
    const env = Object.fromEntries(
      job.spec.template.spec.containers[0].env.map((e: { name: string; value: string }) => [e.name, e.value]),
    );
    expect(Number(env.KEYPORT_SHARD_COUNT)).toBe(job.spec.completions);
    // What each pod computes: index from Kubernetes, count from the manifest.
    for (let i = 0; i < job.spec.completions; i++)
      expect(shardFromEnv({ ...env, JOB_COMPLETION_INDEX: String(i) })).toEqual({
        index: i,
        count: job.spec.completions,
      });
  });

  it('the AWS Batch array size matches KEYPORT_SHARD_COUNT in the job definition', () => {
    const def = JSON.parse(readFileSync(`${dir}aws-batch-job-definition.json`, 'utf8'));
    const submit = JSON.parse(readFileSync(`${dir}aws-batch-submit-job.json`, 'utf8'));
    expect(submit.jobDefinition).toBe(def.jobDefinitionName);
    const env = Object.fromEntries(
      def.containerProperties.environment.map((e: { name: string; value: string }) => [e.name, e.value]),
    );
    expect(Number(env.KEYPORT_SHARD_COUNT)).toBe(submit.arrayProperties.size);
    expect(shardFromEnv({ ...env, AWS_BATCH_JOB_ARRAY_INDEX: '7' })).toEqual({ index: 7, count: 8 });
  });
});
