import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { localWorkspace, runCli } from './support/cli.js';

const POLICY = `
version: 1
rules:
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 180 }
  - { id: owner, type: owner-label, severity: low }
`;

describe('a rule matching a provider that is not configured', () => {
  it('is said on stderr (a misspelt provider made the rule check nothing, the report compliant)', async () => {
    const ws = await localWorkspace();
    const cwd = ws.dir;
    await writeFile(
      join(cwd, 'policy.yaml'),
      `version: 1
rules:
  - { id: owner, type: owner-label, severity: low, match: { providers: [locl] } }
  - { id: owner-local, type: owner-label, severity: low, match: { providers: [local] } }
`,
    );
    expect((await runCli(['keys', 'create', 'a', '--label', 'owner=team'], { cwd })).code).toBe(0);
    const check = await runCli(['policy', 'check', '--policy', 'policy.yaml'], { cwd });
    expect(check.code, check.stderr).toBe(0);
    expect(check.stderr).toContain('rule "owner" matches provider "locl", which is not configured');
    expect(check.stderr).not.toContain('owner-local');
    const json = await runCli(['--json', 'policy', 'fix', '--policy', 'policy.yaml', '--dry-run'], { cwd });
    expect(json.stderr).toContain('"note"');
    expect(json.stderr).toContain('matches provider \\"locl\\"');
  });
});

describe('keyport keys inventory / policy check / policy fix', () => {
  it('inventories, checks with every format, gates on severity, and fixes safely', async () => {
    const ws = await localWorkspace();
    const cwd = ws.dir;
    await writeFile(join(cwd, 'policy.yaml'), POLICY);
    expect((await runCli(['keys', 'create', 'a', '--label', 'owner=team'], { cwd })).code).toBe(0);
    expect((await runCli(['keys', 'create', 'b', '--rotation-days', '90'], { cwd })).code).toBe(0);

    const inv = await runCli(['--json', 'keys', 'inventory'], { cwd });
    expect(inv.code).toBe(0);
    const doc = JSON.parse(inv.stdout);
    expect(doc.keys.map((k: { uri: string }) => k.uri).sort()).toEqual([ws.uri('a'), ws.uri('b')]);
    expect(doc.sources).toEqual([{ source: 'local', keys: 2 }]);
    const table = await runCli(['keys', 'inventory'], { cwd });
    expect(table.stdout).toMatch(/^PROVIDER\s+URI\s+ALGORITHM/m);

    // a: rotation off (high); b: no owner (low)
    const check = await runCli(['policy', 'check', '--policy', 'policy.yaml'], { cwd });
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(/high\s+violation\s+rotation/);
    expect(check.stdout).toMatch(/low\s+violation\s+owner/);
    expect(
      (await runCli(['policy', 'check', '--policy', 'policy.yaml', '--fail-on', 'critical'], { cwd })).code,
    ).toBe(0);
    expect(
      (await runCli(['policy', 'check', '--policy', 'policy.yaml', '--fail-on', 'high'], { cwd })).code,
    ).toBe(1);

    const sarif = await runCli(
      ['policy', 'check', '--policy', 'policy.yaml', '--format', 'sarif', '--fail-on', 'none'],
      { cwd },
    );
    expect(sarif.code).toBe(0);
    expect(JSON.parse(sarif.stdout).runs[0].results).toHaveLength(2);
    const html = await runCli(
      [
        'policy',
        'check',
        '--policy',
        'policy.yaml',
        '--format',
        'html',
        '-o',
        'report.html',
        '--fail-on',
        'none',
      ],
      { cwd },
    );
    expect(html.code).toBe(0);
    expect(await readFile(join(cwd, 'report.html'), 'utf8')).toMatch(/^<!doctype html>[\s\S]*<svg/);

    const dry = await runCli(['policy', 'fix', '--policy', 'policy.yaml', '--dry-run'], { cwd });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`would ${ws.uri('a')}: set automatic rotation every 180 days`);
    expect(dry.stdout).toMatch(/manual \(rule owner\)/);
    // a dry run changed nothing
    expect(
      (await runCli(['policy', 'check', '--policy', 'policy.yaml', '--fail-on', 'high'], { cwd })).code,
    ).toBe(1);

    const fixed = await runCli(['policy', 'fix', '--policy', 'policy.yaml'], { cwd });
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toContain(`fixed ${ws.uri('a')}`);
    expect(
      (await runCli(['policy', 'check', '--policy', 'policy.yaml', '--fail-on', 'high'], { cwd })).code,
    ).toBe(0);
    const after = JSON.parse((await runCli(['--json', 'keys', 'describe', ws.uri('a')], { cwd })).stdout);
    expect(after).toMatchObject({ state: 'enabled', rotation: { periodDays: 180 } });
  });

  it('takes last use from the configured audit log', async () => {
    const ws = await localWorkspace({}, { audit: { log: 'audit.jsonl' } });
    const cwd = ws.dir;
    expect((await runCli(['keys', 'create', 'used'], { cwd })).code).toBe(0);
    expect((await runCli(['keys', 'create', 'idle'], { cwd })).code).toBe(0);
    const enc = await runCli(['encrypt', '-r', ws.uri('used'), '-o', 'ct.bin'], { cwd, stdin: 'hello' });
    expect(enc.code).toBe(0);
    const inv = JSON.parse((await runCli(['--json', 'keys', 'inventory'], { cwd })).stdout);
    const byName = (n: string) => inv.keys.find((k: { uri: string }) => k.uri === ws.uri(n));
    expect(typeof byName('used').lastUsedAt).toBe('string');
    expect(byName('used').lastUsedAt).not.toBe('unknown');
    expect(byName('idle').lastUsedAt).toBeNull();
    const blind = JSON.parse((await runCli(['--json', 'keys', 'inventory', '--no-audit'], { cwd })).stdout);
    expect(blind.keys.every((k: { lastUsedAt: unknown }) => k.lastUsedAt === 'unknown')).toBe(true);
  });

  it('a bad policy file is a usage error naming the field', async () => {
    const ws = await localWorkspace();
    await writeFile(
      join(ws.dir, 'bad.yaml'),
      'version: 1\nrules:\n  - { type: max-rotation-period, severity: high, maxDays: "x" }\n',
    );
    const r = await runCli(['policy', 'check', '--policy', 'bad.yaml'], { cwd: ws.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('rules[0].maxDays');
  });
});
