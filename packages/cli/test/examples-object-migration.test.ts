/**
 * examples/object-migration's job definitions run the CLI as they are written: each gives it a
 * config (every keyport command needs one; without it the workers stopped at once with "no config
 * file", exit 2) through the way its runner provides files, and the command and its flags are
 * accepted. The run reaches the object store (moto's S3, where the example's bucket does not
 * exist): past flags, config and providers. (That the shard variables match is checked in
 * packages/object-migrate/test/examples.test.ts.)
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BIN, type CliResult, HOOKS, jsonError, requireEmulator, spawnCli } from './support/cli.js';

const dir = fileURLToPath(new URL('../../../examples/object-migration/', import.meta.url));

/** What a worker sees of the object store and of its cloud identity, here. */
function testEnv(): Record<string, string> {
  return {
    KEYPORT_S3_ENDPOINT: requireEmulator('moto').KEYPORT_MOTO_ENDPOINT,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  };
}

/** The worker reached the object store: its flags, config and providers were accepted. */
function expectReachedTheStore(r: CliResult): void {
  expect(r.stderr).not.toContain('no config file');
  expect(r.code, r.stderr).not.toBe(2);
  // moto has no `my-bucket`: the store's NotFound (exit 3), named by the s3 provider.
  expect(r.code, r.stderr).toBe(3);
  expect(jsonError(r.stderr)).toMatchObject({ code: 'NotFound', provider: 's3' });
}

interface EnvVar {
  name: string;
  value: string;
}

describe('examples/object-migration', () => {
  it('the Kubernetes Indexed Job: its ConfigMap, mounted where KEYPORT_CONFIG points, configures the run', async () => {
    const job = parse(await readFile(join(dir, 'kubernetes-indexed-job.yaml'), 'utf8'));
    const configMap = parse(await readFile(join(dir, 'kubernetes-config.yaml'), 'utf8'));
    const pod = job.spec.template.spec;
    const container = pod.containers[0];
    const env = Object.fromEntries(container.env.map((e: EnvVar) => [e.name, e.value]));
    const configPath: string = env.KEYPORT_CONFIG;
    expect(configPath, 'the Job sets KEYPORT_CONFIG').toBeDefined();
    // The path is a key of the ConfigMap the pod mounts at its directory.
    const mount = container.volumeMounts.find(
      (m: { mountPath: string }) => m.mountPath === dirname(configPath),
    );
    const volume = pod.volumes.find((v: { name: string }) => v.name === mount.name);
    expect(configMap.kind).toBe('ConfigMap');
    expect(volume.configMap.name).toBe(configMap.metadata.name);
    const text: string = configMap.data[basename(configPath)];
    expect(text).toBeDefined();

    const work = await mkdtemp(join(tmpdir(), 'keyport-k8s-'));
    const file = join(work, basename(configPath));
    await writeFile(file, text);
    const r = await spawnCli(['--json', ...container.args], {
      cwd: work,
      env: { ...env, ...testEnv(), KEYPORT_CONFIG: file, JOB_COMPLETION_INDEX: '0' },
    });
    expectReachedTheStore(r);
  });

  it('the AWS Batch job: its command writes the config KEYPORT_CONFIG names, then runs the CLI', async () => {
    const def = JSON.parse(await readFile(join(dir, 'aws-batch-job-definition.json'), 'utf8'));
    const [shell, dashC, script = '', ...args] = def.containerProperties.command as string[];
    expect([shell, dashC]).toEqual(['sh', '-c']);
    const npx = 'npx -y @keyport/cli@0.1.0';
    expect(script).toContain(npx);
    const env = Object.fromEntries(def.containerProperties.environment.map((e: EnvVar) => [e.name, e.value]));
    expect(env.KEYPORT_CONFIG, 'the job sets KEYPORT_CONFIG').toBeDefined();

    const work = await mkdtemp(join(tmpdir(), 'keyport-batch-'));
    // The CLI from this checkout instead of the registry; the config where this test may write.
    const local = script.replace(npx, `"${process.execPath}" --import "${HOOKS}" "${BIN}" --json`);
    const r = await new Promise<CliResult>((resolve, reject) => {
      const child = spawn('sh', ['-c', local, ...args], {
        cwd: work,
        env: {
          PATH: process.env.PATH,
          KEYPORT_CLI_FROM_SOURCE: '1',
          ...env,
          ...testEnv(),
          KEYPORT_CONFIG: join(work, basename(env.KEYPORT_CONFIG)),
          AWS_BATCH_JOB_ARRAY_INDEX: '0',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.once('error', reject);
      child.once('close', (code) => {
        const stdoutBytes = Buffer.concat(out);
        resolve({
          code: code ?? -1,
          stdout: stdoutBytes.toString(),
          stdoutBytes,
          stderr: Buffer.concat(err).toString(),
        });
      });
    });
    expectReachedTheStore(r);
  });
});
