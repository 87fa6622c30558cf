/**
 * The CLI against real emulators: AWS KMS (moto) and Vault Transit (OpenBao), started by the
 * harness (`pnpm emulators up moto openbao`). Keys, encrypt/decrypt, doctor, and a migration
 * from an AWS key to a Vault key with --remove-source.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateGrantCommand, KMSClient } from '@aws-sdk/client-kms';
import { awsKms } from '@keyport/aws-kms';
import { Keyport } from '@keyport/core';
import { openEnvelope } from '@keyport/envelope';
import { VaultTransitProvider } from '@keyport/vault-transit';
import { describe, expect, it } from 'vitest';
import { localWorkspace, requireEmulator, runCli } from './support/cli.js';
import { sealFiles, sha256 } from './support/seal.js';

async function workspace() {
  const moto = await requireEmulator('moto');
  const bao = await requireEmulator('openbao');
  const ws = await localWorkspace({
    'aws-kms': { region: 'us-east-1', endpoint: moto.KEYPORT_MOTO_ENDPOINT },
    hcvault: { address: bao.KEYPORT_OPENBAO_ADDR, flavor: 'openbao' },
  });
  const env = {
    KEYPORT_VAULT_TOKEN: bao.KEYPORT_OPENBAO_TOKEN,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: 'us-east-1',
  };
  const keys = new Keyport({
    providers: [
      awsKms({
        region: 'us-east-1',
        endpoint: moto.KEYPORT_MOTO_ENDPOINT as string,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      }),
      new VaultTransitProvider({
        endpoint: bao.KEYPORT_OPENBAO_ADDR as string,
        auth: bao.KEYPORT_OPENBAO_TOKEN as string,
        flavor: 'openbao',
      }),
    ],
  });
  return { ws, env, keys };
}

describe('CLI against moto and OpenBao', () => {
  it('grants list shows what a grant made outside keyport allows that keyport has no name for', async () => {
    const { ws, env } = await workspace();
    const cwd = ws.dir;
    const made = await runCli(
      ['--json', 'keys', 'create', `grants-${Date.now().toString(36)}`, '--provider', 'aws-kms'],
      {
        cwd,
        env,
      },
    );
    expect(made.code, made.stderr).toBe(0);
    const uri = JSON.parse(made.stdout).uri as string;
    const moto = await requireEmulator('moto');
    const sdk = new KMSClient({
      region: 'us-east-1',
      endpoint: moto.KEYPORT_MOTO_ENDPOINT as string,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    const { GrantId } = await sdk.send(
      new CreateGrantCommand({
        KeyId: uri.slice('aws-kms://'.length),
        GranteePrincipal: 'arn:aws:iam::123456789012:role/other',
        Operations: ['CreateGrant', 'Decrypt', 'ReEncryptFrom'],
      }),
    );
    sdk.destroy();
    const json = await runCli(['--json', 'grants', 'list', uri], { cwd, env });
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).grants).toEqual([
      expect.objectContaining({
        id: GrantId,
        operations: ['decrypt'],
        unmodeledOperations: ['CreateGrant', 'ReEncryptFrom'],
      }),
    ]);
    const text = await runCli(['grants', 'list', uri], { cwd, env });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('decrypt,+CreateGrant,+ReEncryptFrom');
  });

  it('creates keys, encrypts to both providers, decrypts with each; doctor passes', async () => {
    const { ws, env, keys } = await workspace();
    const cwd = ws.dir;
    const suffix = Date.now().toString(36);
    const aws = await runCli(['--json', 'keys', 'create', `cli-${suffix}`, '--provider', 'aws-kms'], {
      cwd,
      env,
    });
    expect(aws.code, aws.stderr).toBe(0);
    const awsUri = JSON.parse(aws.stdout).uri as string;
    const bao = await runCli(['--json', 'keys', 'create', `cli-${suffix}`, '--provider', 'hcvault'], {
      cwd,
      env,
    });
    expect(bao.code, bao.stderr).toBe(0);
    const baoUri = JSON.parse(bao.stdout).uri as string;

    await writeFile(join(cwd, 'p'), 'two clouds');
    const enc = await runCli(
      ['encrypt', 'p', '-o', 'm', '-r', awsUri, '-r', baoUri, '--context', 'app=cli'],
      { cwd, env },
    );
    expect(enc.code, enc.stderr).toBe(0);
    for (const k of [awsUri, baoUri]) {
      const dec = await runCli(['decrypt', 'm', '-k', k, '--context', 'app=cli'], { cwd, env });
      expect(dec.code, dec.stderr).toBe(0);
      expect(dec.stdout).toBe('two clouds');
    }
    const rotated = await runCli(['--json', 'keys', 'rotate', baoUri], { cwd, env });
    expect(JSON.parse(rotated.stdout).primaryVersion).toBe('2');
    const doctor = await runCli(['--json', 'doctor', '--key', baoUri, '--key', awsUri], { cwd, env });
    const report = JSON.parse(doctor.stdout);
    expect(report.checks.filter((c: { ok: boolean }) => !c.ok)).toEqual([]);
    expect(doctor.code).toBe(0);
    await keys.close();
  });

  it('migrates envelopes from an AWS key to a Vault key, verified, source removed', async () => {
    const { ws, env, keys } = await workspace();
    const cwd = ws.dir;
    const suffix = Date.now().toString(36);
    const awsUri = (await keys.createKey('aws-kms', { name: `mig-${suffix}`, spec: 'AES_256' })).uri;
    const baoUri = (await keys.createKey('hcvault', { name: `mig-${suffix}`, spec: 'AES_256' })).uri;
    const digests = await sealFiles(keys, awsUri, join(cwd, 'data'), 20);
    await writeFile(
      join(cwd, 'keyport.config.json'),
      JSON.stringify({
        ...JSON.parse(await readFile(join(cwd, 'keyport.config.json'), 'utf8')),
        audit: { log: 'audit.jsonl', keyFile: 'audit.key' },
      }),
    );
    await writeFile(join(cwd, 'audit.key'), randomBytes(32).toString('hex'), { mode: 0o600 });
    const r = await runCli(
      ['--json', 'migrate', '--from', awsUri, '--to', baoUri, '--remove-source', '--jobs', '10', 'data'],
      { cwd, env },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ total: 20, migrated: 20, failed: 0 });
    // Wrapping and verifying under OpenBao go through batch_input: fewer requests than files.
    expect(summary.calls.byOperation['from:decrypt']).toBe(20);
    expect(summary.calls.byOperation['to:encrypt']).toBeUndefined();
    expect(summary.calls.byOperation['to:encryptBatch']).toBeGreaterThanOrEqual(1);
    expect(summary.calls.wrapPerFile).toBeLessThan(1);
    // Each batched item is still one audit event, and the chained log verifies.
    const events = (await readFile(join(cwd, 'audit.jsonl'), 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l).event)
      .filter((e) => e !== undefined && e.keyUri === baoUri);
    // 20 files plus the probe wrap that checks --to before the first file (the probe's unwrap,
    // like the verifications, names the version that wrapped and is counted below).
    expect(events.filter((e) => e.op === 'encrypt' && e.outcome === 'success')).toHaveLength(21);
    expect(events.filter((e) => e.op === 'decrypt' && e.outcome === 'success')).toHaveLength(20);
    const verified = await runCli(['audit', 'verify', 'audit.jsonl', '--key-file', 'audit.key'], {
      cwd,
      env,
    });
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    for (const [file, digest] of digests) {
      const opened = await openEnvelope(await readFile(file), { trust: [baoUri], keys });
      expect(sha256(opened.plaintext)).toBe(digest);
      await expect(openEnvelope(await readFile(file), { trust: [awsUri], keys })).rejects.toMatchObject({
        code: 'InvalidCiphertext',
      });
    }
    await keys.close();
  });

  it('a wrong Vault token is access denied (exit 4)', async () => {
    const { ws, env, keys } = await workspace();
    const r = await runCli(['keys', 'list', 'hcvault'], {
      cwd: ws.dir,
      env: { ...env, KEYPORT_VAULT_TOKEN: 'not-the-token' },
    });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/error AccessDenied/);
    expect(r.stderr).not.toContain('not-the-token');
    await keys.close();
  });
});
