import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import type { KeyOperations } from '@keyport/core';
import { sealEnvelope } from '@keyport/envelope';
import { describe, expect, it } from 'vitest';
import { localWorkspace, runCli } from './support/cli.js';

describe('grants, audit, capabilities, doctor', () => {
  it('grants create, list, revoke and sweep', async () => {
    const ws = await localWorkspace();
    const cwd = ws.dir;
    await runCli(['keys', 'create', 'k'], { cwd });
    const g = await runCli(
      [
        '--json',
        'grants',
        'create',
        ws.uri('k'),
        '--grantee',
        'app',
        '--op',
        'encrypt',
        'decrypt',
        '--context-subset',
        'tenant=hidden-value',
        '--expires',
        '1h',
      ],
      { cwd },
    );
    expect(g.code).toBe(0);
    const grant = JSON.parse(g.stdout);
    expect(grant).toMatchObject({
      grantee: 'app',
      operations: ['encrypt', 'decrypt'],
      contextSubsetKeys: ['tenant'],
    });
    expect(g.stdout).not.toContain('hidden-value');
    const list = await runCli(['--json', 'grants', 'list', ws.uri('k')], { cwd });
    expect(JSON.parse(list.stdout).grants.map((x: { id: string }) => x.id)).toEqual([grant.id]);
    const sweep = await runCli(['--json', 'grants', 'sweep', ws.uri('k')], { cwd });
    expect(JSON.parse(sweep.stdout).revoked).toEqual([]);
    expect((await runCli(['grants', 'revoke', ws.uri('k'), grant.id], { cwd })).code).toBe(0);
    expect(
      JSON.parse((await runCli(['--json', 'grants', 'list', ws.uri('k')], { cwd })).stdout).grants,
    ).toEqual([]);
    expect(
      (await runCli(['grants', 'create', ws.uri('k'), '--grantee', 'x', '--op', 'fly'], { cwd })).code,
    ).toBe(2);
  });

  it('writes an audit log through the config, verifies it, and fails on a tampered one (exit 6)', async () => {
    const key = randomBytes(32).toString('hex');
    const ws = await localWorkspace({}, { audit: { log: 'audit.jsonl', keyFile: 'audit.key' } });
    const cwd = ws.dir;
    await writeFile(join(cwd, 'audit.key'), key, { mode: 0o600 });
    await runCli(['keys', 'create', 'k'], { cwd });
    await runCli(['encrypt', '-r', ws.uri('k'), '-o', 'm', '--context', 'tenant=acme'], { cwd, stdin: 'x' });
    expect((await runCli(['decrypt', 'm', '-o', 'p', '-k', ws.uri('k')], { cwd })).code).toBe(0);
    const log = await readFile(join(cwd, 'audit.jsonl'), 'utf8');
    expect(log).toContain('generateDataKey');
    expect(log).not.toContain('acme');
    const ok = await runCli(['--json', 'audit', 'verify', 'audit.jsonl', '--key-file', 'audit.key'], { cwd });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true });

    const lines = log.trimEnd().split('\n');
    const at = lines.findIndex((l) => l.includes('"outcome":"success"'));
    lines[at] = (lines[at] as string).replace('"outcome":"success"', '"outcome":"failure"');
    await writeFile(join(cwd, 'tampered.jsonl'), `${lines.join('\n')}\n`);
    const bad = await runCli(['audit', 'verify', 'tampered.jsonl', '--key-file', 'audit.key'], { cwd });
    expect(bad.code).toBe(6);
    expect(bad.stdout).toMatch(new RegExp(`FAILED: edited at line ${at + 1}:`));
    await writeFile(join(cwd, 'other.key'), randomBytes(32).toString('hex'), { mode: 0o600 });
    expect((await runCli(['audit', 'verify', 'audit.jsonl', '--key-file', 'other.key'], { cwd })).code).toBe(
      6,
    );
    // A missing key file is the file error it is (exit 8), not a KMS NotFound (exit 3).
    expect(
      (await runCli(['audit', 'verify', 'audit.jsonl', '--key-file', 'missing.key'], { cwd })).code,
    ).toBe(8);
  });

  it('capabilities prints the matrix of the configured providers', async () => {
    const ws = await localWorkspace({ hcvault: { address: 'http://127.0.0.1:1', flavor: 'openbao' } });
    const r = await runCli(['--json', 'capabilities'], { cwd: ws.dir });
    expect(r.code).toBe(0);
    const caps = JSON.parse(r.stdout).providers;
    expect(caps.local).toMatchObject({ grants: 'native', rotation: 'versioned' });
    expect(caps.hcvault.context).toBeDefined();
    const human = await runCli(['capabilities'], { cwd: ws.dir });
    expect(human.stdout).toMatch(/^\s+local\s+hcvault$/m);
  });

  it('doctor: the local provider passes; an unreachable provider fails with exit 5 and a next step', async () => {
    const ws = await localWorkspace();
    await runCli(['keys', 'create', 'k'], { cwd: ws.dir });
    const ok = await runCli(['--json', 'doctor', '--key', ws.uri('k')], { cwd: ws.dir });
    expect(ok.code).toBe(0);
    const checks = JSON.parse(ok.stdout).checks as Array<{ check: string; ok: boolean }>;
    expect(checks.map((c) => c.check)).toEqual([
      'configure',
      'reachable',
      `key ${ws.uri('k')}`,
      `encrypt+decrypt ${ws.uri('k')}`,
    ]);

    const down = await localWorkspace({ hcvault: { address: 'http://127.0.0.1:1' } });
    const r = await runCli(['doctor'], { cwd: down.dir, env: { KEYPORT_VAULT_TOKEN: 'dummy' } });
    expect(r.code).toBe(5);
    expect(r.stdout).toMatch(/FAIL hcvault +reachable/);
    expect(r.stdout).toMatch(/next: is the provider reachable/);
    expect(r.stdout).toMatch(/ok +local +reachable/);
  });

  it('an unreachable provider on an operation exits 5 with a clear message', async () => {
    const ws = await localWorkspace({ hcvault: { address: 'http://127.0.0.1:1' } });
    const r = await runCli(
      ['--timeout', '3000', 'encrypt', '-r', 'hcvault://127.0.0.1:1/transit/keys/k', '-o', 'x'],
      {
        cwd: ws.dir,
        stdin: 'x',
        env: { KEYPORT_VAULT_TOKEN: 'dummy' },
      },
    );
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/error (Unavailable|Timeout)/);
    expect(r.stderr).toContain('hcvault://127.0.0.1:1/transit/keys/k');
  });

  it('--timeout and defaults.timeoutMs bound each provider call of encrypt, decrypt and rewrap', async () => {
    // A Vault that accepts connections and never answers: only a deadline ends a call to it.
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const vault = { hcvault: { address: `http://127.0.0.1:${port}` } };
      const ws = await localWorkspace(vault);
      const cwd = ws.dir;
      const env = { KEYPORT_VAULT_TOKEN: 'dummy' };
      const vaultKey = `hcvault://127.0.0.1:${port}/transit/keys/k`;
      expect((await runCli(['keys', 'create', 'k', '--provider', 'local'], { cwd })).code).toBe(0);
      expect((await runCli(['encrypt', '-r', ws.uri('k'), '-o', 'local.kp'], { cwd, stdin: 'x' })).code).toBe(
        0,
      );
      // A message whose only data key is wrapped by the silent Vault's key (wrapped offline here).
      const offline = {
        encrypt: async () => ({ ciphertext: Buffer.from('vault:v1:AAAA'), keyVersion: '1' }),
      };
      const toVault = await sealEnvelope(Buffer.from('x'), {
        recipients: [vaultKey],
        keys: offline as unknown as KeyOperations,
        dataKeySource: 'local',
      });
      await writeFile(join(cwd, 'vault.kp'), toVault);
      const timedOut = async (argv: string[], o: { cwd: string; stdin?: string }) => {
        const started = performance.now();
        const r = await runCli(argv, { ...o, env });
        // Without the deadline each attempt would wait the default 30 s.
        expect(performance.now() - started, argv.join(' ')).toBeLessThan(10_000);
        expect(r.code, r.stderr).toBe(5);
        expect(r.stderr).toMatch(/error Timeout/);
      };
      await timedOut(['--timeout', '300', 'encrypt', '-r', vaultKey, '-o', 'e.kp'], { cwd, stdin: 'x' });
      await timedOut(['--timeout', '300', 'decrypt', 'vault.kp', '-k', vaultKey, '-o', 'd.txt'], { cwd });
      await timedOut(
        ['--timeout', '300', 'rewrap', 'local.kp', '-k', ws.uri('k'), '--add', vaultKey, '-o', 'r.kp'],
        {
          cwd,
        },
      );
      const withDefault = await localWorkspace(vault, { defaults: { timeoutMs: 300 } });
      await timedOut(['encrypt', '-r', vaultKey, '-o', 'e.kp'], { cwd: withDefault.dir, stdin: 'x' });
    } finally {
      silent.close();
    }
  }, 60_000);
});
