/**
 * The key, grant, policy and import commands: provider text in human output, the
 * --json contract of `policy check`, and an `import --create-target` that fails after creating.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { localWorkspace, ndjson, requireEmulator, runCli } from './support/cli.js';

/** An OSC title change, a CSI screen clear and a C1 CSI: what hostile provider text would carry. */
const EVIL = '\u001b]0;owned\u0007\u001b[2J\u009b31m';
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

describe('keys and grants: provider text in human output', () => {
  it('a key description and labels with control characters are printed escaped (create, describe, list)', async () => {
    const ws = await localWorkspace();
    const cwd = ws.dir;
    const created = await runCli(
      ['keys', 'create', 'k', '--description', `d${EVIL}`, '--label', `l${EVIL}=v${EVIL}`],
      { cwd },
    );
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).not.toMatch(CONTROL);
    expect(created.stdout).toContain('d\\u001b]0;owned\\u0007');
    const described = await runCli(['keys', 'describe', ws.uri('k')], { cwd });
    expect(described.code).toBe(0);
    expect(described.stdout).not.toMatch(CONTROL);
    expect(described.stdout).toMatch(/labels +l\\u001b\]0;owned\\u0007\\u001b\[2J\\u009b31m=v\\u001b/);
    // --json keeps the text as it is (JSON escapes it)
    const asJson = JSON.parse((await runCli(['--json', 'keys', 'describe', ws.uri('k')], { cwd })).stdout);
    expect(asJson.description).toBe(`d${EVIL}`);
  });
});

const POLICY = `
version: 1
rules:
  - { id: rotation, type: max-rotation-period, severity: high, maxDays: 180 }
`;

describe('policy check --json', () => {
  it('prints one result object with "ok" on stdout, and --format decides what -o holds', async () => {
    const ws = await localWorkspace();
    const cwd = ws.dir;
    await writeFile(join(cwd, 'policy.yaml'), POLICY);
    expect((await runCli(['keys', 'create', 'a'], { cwd })).code).toBe(0);

    // a finding at or above --fail-on: exit 1, ok false (as doctor), no error object
    const failing = await runCli(['--json', 'policy', 'check', '--policy', 'policy.yaml'], { cwd });
    expect(failing.code).toBe(1);
    const doc = JSON.parse(failing.stdout);
    expect(doc.ok).toBe(false);
    expect(doc.result.findings.length).toBeGreaterThan(0);
    expect(doc.inventory.keys).toHaveLength(1);

    const passing = await runCli(
      ['--json', 'policy', 'check', '--policy', 'policy.yaml', '--fail-on', 'none'],
      { cwd },
    );
    expect(passing.code).toBe(0);
    expect(JSON.parse(passing.stdout).ok).toBe(true);

    // -o: the report in the format asked for; the result still on stdout
    const toFile = await runCli(
      ['--json', 'policy', 'check', '--policy', 'policy.yaml', '--format', 'sarif', '-o', 'r.sarif'],
      { cwd },
    );
    expect(toFile.code).toBe(1);
    expect(JSON.parse(toFile.stdout)).toMatchObject({ ok: false, output: join(cwd, 'r.sarif') });
    const sarif = JSON.parse(await readFile(join(cwd, 'r.sarif'), 'utf8'));
    expect(sarif.runs[0].results.length).toBeGreaterThan(0);
    expect(ndjson(toFile.stderr).every((e) => 'note' in e)).toBe(true);

    // the report itself on stdout (SARIF): the result goes to stderr as {"result": …}
    const toStdout = await runCli(
      ['--json', 'policy', 'check', '--policy', 'policy.yaml', '--format', 'sarif', '--fail-on', 'none'],
      { cwd },
    );
    expect(toStdout.code).toBe(0);
    expect(JSON.parse(toStdout.stdout).runs).toHaveLength(1);
    const events = ndjson(toStdout.stderr);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ result: { ok: true } });
  });
});

describe('import --create-target that fails after creating the target', () => {
  it('says the pending target key exists, and how to go on', async () => {
    const hsm = requireEmulator('softhsm');
    const ws = await localWorkspace({
      pkcs11: { module: hsm.KEYPORT_SOFTHSM_MODULE, token: hsm.KEYPORT_SOFTHSM_TOKEN },
    });
    const cwd = ws.dir;
    const env = { KEYPORT_PKCS11_PIN: hsm.KEYPORT_SOFTHSM_PIN };
    const name = `review-${Date.now().toString(36)}`;
    // A key created without export permission cannot be wrapped out: the import is refused.
    const hsmKey = await runCli(['--json', 'keys', 'create', `${name}-hsm`, '--provider', 'pkcs11'], {
      cwd,
      env,
    });
    expect(hsmKey.code, hsmKey.stderr).toBe(0);
    const hsmUri = JSON.parse(hsmKey.stdout).uri as string;
    const r = await runCli(
      ['--json', 'import', 'target', '--create-target', '-p', 'local', '--hsm-key', hsmUri],
      { cwd, env },
    );
    expect(r.code, r.stderr).toBe(1);
    const events = ndjson(r.stderr);
    expect(events.filter((e) => 'error' in e)).toHaveLength(1);
    const note = events.find((e) => 'note' in e)?.note as string | undefined;
    expect(note).toContain(ws.uri('target'));
    expect(note).toMatch(/created/);
    // it does exist, pending its material
    const described = await runCli(['--json', 'keys', 'describe', ws.uri('target')], { cwd, env });
    expect(described.code, described.stderr).toBe(0);
  });
});
