import { describe, expect, it } from 'vitest';
import { localWorkspace, runCli } from './support/cli.js';

describe('keys', () => {
  it('create, list, describe, rotate, disable, enable', async () => {
    const ws = await localWorkspace();
    const cwd = ws.dir;
    const created = await runCli(['--json', 'keys', 'create', 'orders', '--label', 'team=pay'], { cwd });
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout);
    expect(key).toMatchObject({
      uri: ws.uri('orders'),
      spec: 'AES_256',
      state: 'enabled',
      primaryVersion: '1',
      labels: { team: 'pay' },
    });

    const dup = await runCli(['keys', 'create', 'orders'], { cwd });
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/error AlreadyExists/);

    await runCli(['keys', 'create', ws.uri('signer'), '--spec', 'EC_P256'], { cwd });
    const list = await runCli(['--json', 'keys', 'list', 'local'], { cwd });
    expect(
      JSON.parse(list.stdout)
        .keys.map((k: { uri: string }) => k.uri)
        .sort(),
    ).toEqual([ws.uri('orders'), ws.uri('signer')]);
    const human = await runCli(['keys', 'list'], { cwd });
    expect(human.stdout).toMatch(/^URI\s+SPEC\s+USAGE\s+STATE\s+VERSION$/m);
    expect(human.stdout).not.toContain('\u001b[');

    const rotated = await runCli(['--json', 'keys', 'rotate', ws.uri('orders')], { cwd });
    expect(JSON.parse(rotated.stdout).primaryVersion).toBe('2');
    const described = await runCli(['keys', 'describe', ws.uri('orders')], { cwd });
    expect(described.stdout).toMatch(/primary version\s+2/);
    expect(described.stdout).toMatch(/version 1\s+enabled/);

    expect(
      JSON.parse((await runCli(['--json', 'keys', 'disable', ws.uri('orders')], { cwd })).stdout).state,
    ).toBe('disabled');
    expect(
      JSON.parse((await runCli(['--json', 'keys', 'enable', ws.uri('orders')], { cwd })).stdout).state,
    ).toBe('enabled');
  });

  it('schedule-deletion, cancel-deletion, destroy-version', async () => {
    const ws = await localWorkspace();
    const cwd = ws.dir;
    await runCli(['keys', 'create', 'old'], { cwd });
    await runCli(['keys', 'rotate', ws.uri('old')], { cwd });
    const destroyed = await runCli(
      ['--json', 'keys', 'destroy-version', ws.uri('old'), '--key-version', '1'],
      { cwd },
    );
    expect(destroyed.code).toBe(0);
    const versions = JSON.parse(destroyed.stdout).versions as Array<{ version: string; state: string }>;
    expect(versions.find((v) => v.version === '1')?.state).toMatch(/destroy/);

    const scheduled = await runCli(['--json', 'keys', 'schedule-deletion', ws.uri('old'), '--days', '7'], {
      cwd,
    });
    expect(JSON.parse(scheduled.stdout).state).toBe('pending_deletion');
    const inUse = await runCli(['encrypt', '-r', ws.uri('old'), '-o', 'x.enc'], { cwd, stdin: 'data' });
    expect(inUse.code).toBe(1);
    expect(inUse.stderr).toMatch(/error KeyStateConflict/);
    expect(inUse.stderr).toContain(`key:        ${ws.uri('old')}`);
    const cancelled = await runCli(['--json', 'keys', 'cancel-deletion', ws.uri('old')], { cwd });
    expect(JSON.parse(cancelled.stdout).state).not.toBe('pending_deletion');
  });

  it('a missing key exits 3 and says what to do next; --verbose adds the cause', async () => {
    const ws = await localWorkspace();
    const r = await runCli(['keys', 'describe', ws.uri('ghost')], { cwd: ws.dir });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/error NotFound/);
    expect(r.stderr).toContain(ws.uri('ghost'));
    expect(r.stderr).toMatch(/next: +check the key URI/);
    expect(r.stderr).toMatch(/run with --verbose/);
    const v = await runCli(['--verbose', 'keys', 'describe', ws.uri('ghost')], { cwd: ws.dir });
    expect(v.stderr).not.toMatch(/run with --verbose/);
  });

  it('a provider missing from the config is a usage error naming the configured ones', async () => {
    const ws = await localWorkspace();
    const r = await runCli(['keys', 'describe', 'hcvault://127.0.0.1:1/transit/keys/k'], { cwd: ws.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no "hcvault" provider in the config \(configured: local\)/);
  });
});
