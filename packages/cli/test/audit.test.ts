/**
 * The CLI's audit log: a key generated beside the log when none is configured, fail-closed
 * commands on a tampered log (and `onFailure: warn`), crash repair, several processes sharing
 * one log, and `audit anchor` / `audit verify --anchor-signature` with the local provider's
 * ECDSA key.
 */
import { createHash } from 'node:crypto';
import { appendFile, copyFile, link, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeContext } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { localWorkspace, runCli, spawnCli } from './support/cli.js';

const AUDIT = { audit: { log: 'audit.jsonl' } };

async function auditedWorkspace(audit: Record<string, unknown> = AUDIT.audit) {
  const ws = await localWorkspace({}, { audit });
  const cwd = ws.dir;
  expect((await runCli(['keys', 'create', 'k'], { cwd })).code).toBe(0);
  return { ...ws, cwd };
}

const verify = async (cwd: string, args: string[] = []) => {
  const r = await runCli(['--json', 'audit', 'verify', ...args], { cwd });
  return { code: r.code, stderr: r.stderr, report: JSON.parse(r.stdout || '{}') };
};

describe('keyport audit', () => {
  it('verify with a missing key file is a file error naming it (exit 8), not "check the key URI"', async () => {
    const ws = await auditedWorkspace();
    const v = await verify(ws.cwd, ['audit.jsonl', '--key-file', 'absent.key']);
    expect(v.code, v.stderr).toBe(8);
    expect(v.stderr).toContain('absent.key');
    expect(v.stderr).not.toContain('key URI');
  });

  it('verify of a missing log (exit 8) or a directory (exit 10) names it as the file error it is', async () => {
    const ws = await auditedWorkspace();
    const missing = await verify(ws.cwd, ['absent.jsonl', '--key-file', 'audit.jsonl.key']);
    expect(missing.code, missing.stderr).toBe(8);
    expect(missing.stderr).toContain('absent.jsonl');
    expect(missing.stderr).not.toContain('key URI');
    const dir = await verify(ws.cwd, ['.', '--key-file', 'audit.jsonl.key']);
    expect(dir.code, dir.stderr).toBe(10);
  });

  it('without audit.keyFile, generates <log>.key once (0600) and verifies with the config alone', async () => {
    const ws = await auditedWorkspace();
    const keyPath = join(ws.cwd, 'audit.jsonl.key');
    expect((await stat(keyPath)).mode & 0o777).toBe(0o600);
    const key = await readFile(keyPath, 'utf8');
    await runCli(['encrypt', '-r', ws.uri('k'), '-o', 'm', '--context', 'tenant=acme'], {
      cwd: ws.cwd,
      stdin: 'x',
    });
    expect(await readFile(keyPath, 'utf8')).toBe(key);
    const v = await verify(ws.cwd);
    expect(v.code).toBe(0);
    expect(v.report).toMatchObject({ ok: true });
    expect(v.report.events).toBeGreaterThanOrEqual(2);
    expect((await stat(join(ws.cwd, 'audit.jsonl.anchor'))).isFile()).toBe(true);
  });

  it('writes keyed context digests: a dictionary of likely values does not find the context', async () => {
    const ws = await auditedWorkspace();
    await runCli(['encrypt', '-r', ws.uri('k'), '-o', 'm', '--context', 'tenant=acme'], {
      cwd: ws.cwd,
      stdin: 'x',
    });
    const log = await readFile(join(ws.cwd, 'audit.jsonl'), 'utf8');
    expect(log).toContain('"contextKeys":["tenant"]');
    expect(log).not.toContain('acme');
    const digests = [...log.matchAll(/"contextDigest":"([0-9a-f]{64})"/g)].map((m) => m[1]);
    expect(digests.length).toBeGreaterThan(0);
    for (const guess of ['acme', 'globex', 'initech']) {
      const bare = createHash('sha256')
        .update(encodeContext({ tenant: guess }))
        .digest('hex');
      expect(digests).not.toContain(bare);
    }
  });

  it('fails closed: with a truncated log every audited command exits 6, and verify says why', async () => {
    const ws = await auditedWorkspace();
    await runCli(['encrypt', '-r', ws.uri('k'), '-o', 'm'], { cwd: ws.cwd, stdin: 'x' });
    const path = join(ws.cwd, 'audit.jsonl');
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    await writeFile(path, `${lines.slice(0, -1).join('\n')}\n`);
    const blocked = await runCli(['decrypt', 'm', '-o', 'p', '-k', ws.uri('k')], { cwd: ws.cwd });
    expect(blocked.code).toBe(6);
    expect(blocked.stderr).toMatch(/truncated/);
    await expect(stat(join(ws.cwd, 'p'))).rejects.toMatchObject({ code: 'ENOENT' });
    const v = await verify(ws.cwd);
    expect(v.code).toBe(6);
    expect(v.report.problem).toMatchObject({ kind: 'truncated' });
  });

  it("with audit.onFailure: 'warn', commands go on with a warning on stderr", async () => {
    const ws = await auditedWorkspace({ log: 'audit.jsonl', onFailure: 'warn' });
    await writeFile(join(ws.cwd, 'audit.jsonl.anchor'), 'garbage');
    const r = await runCli(['--json', 'keys', 'describe', ws.uri('k')], { cwd: ws.cwd });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: audit log not written/);
  });

  it('a torn last line (crash mid-append) is repaired by the next command and noted by verify', async () => {
    const ws = await auditedWorkspace();
    const path = join(ws.cwd, 'audit.jsonl');
    const torn = '{"v":1,"seq":1,"prev":"ab';
    await appendFile(path, torn);
    expect((await verify(ws.cwd)).report.problem).toMatchObject({ kind: 'torn-tail' });
    const next = await runCli(['keys', 'describe', ws.uri('k')], { cwd: ws.cwd });
    expect(next.code).toBe(0);
    expect(next.stderr).toMatch(/audit log repaired after a crash/);
    expect((await runCli(['keys', 'describe', ws.uri('k')], { cwd: ws.cwd })).code).toBe(0);
    const v = await verify(ws.cwd);
    expect(v.code).toBe(0);
    expect(v.report.notices).toMatchObject([{ type: 'audit.recovered', line: 2, tornBytes: torn.length }]);
    const human = await runCli(['audit', 'verify'], { cwd: ws.cwd });
    expect(human.stdout).toMatch(/note: line 2: recovered after a crash/);
  });

  it('several keyport processes sharing one log build one chain that verifies', async () => {
    const ws = await auditedWorkspace();
    const runs = Array.from({ length: 4 }, (_, i) =>
      spawnCli(['encrypt', '-r', ws.uri('k'), '-o', `m${i}`, '--context', `n=${i}`], {
        cwd: ws.cwd,
        stdin: `payload ${i}`,
        timeoutMs: 60_000,
      }),
    );
    for (const r of await Promise.all(runs)) expect(r, r.stderr).toMatchObject({ code: 0 });
    const v = await verify(ws.cwd);
    expect(v.code, JSON.stringify(v.report.problem)).toBe(0);
    expect(v.report.events).toBe(1 + 4); // createKey + one generateDataKey per encrypt
  }, 120_000);

  it('audit anchor signs the head with a local ECDSA key; verify checks the log extends it', async () => {
    const ws = await auditedWorkspace();
    const cwd = ws.cwd;
    expect((await runCli(['keys', 'create', 'signer', '--spec', 'EC_P256'], { cwd })).code).toBe(0);
    const signer = ws.uri('signer');
    await runCli(['encrypt', '-r', ws.uri('k'), '-o', 'm'], { cwd, stdin: 'x' });
    const snapshot = {
      log: await readFile(join(cwd, 'audit.jsonl')),
      anchor: await readFile(join(cwd, 'audit.jsonl.anchor')),
    };
    await runCli(['encrypt', '-r', ws.uri('k'), '-o', 'm2'], { cwd, stdin: 'y' });

    const signed = await runCli(['audit', 'anchor', '--key', signer, '-o', 'head.sig.json'], { cwd });
    expect(signed.code, signed.stderr).toBe(0);
    const doc = JSON.parse(await readFile(join(cwd, 'head.sig.json'), 'utf8'));
    expect(doc).toMatchObject({ v: 1, keyUri: signer, algorithm: 'ECDSA_SHA_256' });
    // `audit anchor` did not write to the log it signed.
    expect((await verify(cwd)).report.head).toEqual({ count: doc.count, head: doc.head });

    const ok = await verify(cwd, ['--anchor-signature', 'head.sig.json', '--signing-key', signer]);
    expect(ok.code).toBe(0);
    expect(ok.report.signed).toEqual({ count: doc.count, head: doc.head });

    // Later records extend the signed head: still ok.
    await runCli(['keys', 'describe', ws.uri('k')], { cwd });
    expect((await verify(cwd, ['--anchor-signature', 'head.sig.json', '--signing-key', signer])).code).toBe(
      0,
    );

    // Log and anchor rolled back together: consistent, but behind the signature.
    await copyFile(join(cwd, 'audit.jsonl'), join(cwd, 'now.jsonl'));
    await writeFile(join(cwd, 'audit.jsonl'), snapshot.log);
    await writeFile(join(cwd, 'audit.jsonl.anchor'), snapshot.anchor);
    expect((await verify(cwd)).code).toBe(0);
    const rolled = await verify(cwd, ['--anchor-signature', 'head.sig.json', '--signing-key', signer]);
    expect(rolled.code).toBe(6);
    expect(rolled.report.problem).toMatchObject({ kind: 'rolled-back' });

    // A changed count, another key, or no expected key at all.
    await writeFile(join(cwd, 'bad.sig.json'), JSON.stringify({ ...doc, count: doc.count - 1 }));
    expect(
      (
        await runCli(['audit', 'verify', '--anchor-signature', 'bad.sig.json', '--signing-key', signer], {
          cwd,
        })
      ).code,
    ).toBe(6);
    expect(
      (
        await runCli(
          ['audit', 'verify', '--anchor-signature', 'head.sig.json', '--signing-key', ws.uri('k')],
          { cwd },
        )
      ).code,
    ).toBe(6);
    expect((await runCli(['audit', 'verify', '--anchor-signature', 'head.sig.json'], { cwd })).code).toBe(2);
  });

  it('audit anchor -o naming the log or its key file (or a hard link to one) is refused, even with --force', async () => {
    const ws = await auditedWorkspace();
    const cwd = ws.cwd;
    expect((await runCli(['keys', 'create', 'signer', '--spec', 'EC_P256'], { cwd })).code).toBe(0);
    await link(join(cwd, 'audit.jsonl'), join(cwd, 'log-alias'));
    const before = {
      log: await readFile(join(cwd, 'audit.jsonl')),
      key: await readFile(join(cwd, 'audit.jsonl.key')),
    };
    for (const [out, what] of [
      ['audit.jsonl', /it is the audit log \(choose another -o\)/],
      ['audit.jsonl.key', /it is the audit log's key file/],
      ['log-alias', /it is the audit log ".*audit\.jsonl"/],
    ] as const) {
      const r = await runCli(['--json', 'audit', 'anchor', '--key', ws.uri('signer'), '-o', out, '--force'], {
        cwd,
      });
      expect(r.code, `${out}: ${r.stderr}`).toBe(12);
      expect(JSON.parse(r.stderr).error).toMatchObject({ code: 'FileExists' });
      expect(JSON.parse(r.stderr).error.message).toMatch(what);
    }
    expect(await readFile(join(cwd, 'audit.jsonl.key'))).toEqual(before.key);
    // The log has grown by the refused commands' own records, never been replaced.
    expect((await readFile(join(cwd, 'audit.jsonl'))).subarray(0, before.log.length)).toEqual(before.log);
  });

  it('audit anchor refuses to sign a log that does not verify', async () => {
    const ws = await auditedWorkspace({ log: 'audit.jsonl', anchorKey: 'placeholder' });
    await runCli(['keys', 'create', 'signer', '--spec', 'EC_P256'], { cwd: ws.cwd });
    const path = join(ws.cwd, 'audit.jsonl');
    await writeFile(
      path,
      (await readFile(path, 'utf8')).replace('"outcome":"success"', '"outcome":"failure"'),
    );
    const r = await runCli(['audit', 'anchor', '--key', ws.uri('signer')], { cwd: ws.cwd });
    expect(r.code).toBe(6);
    expect(r.stdout).toMatch(/refusing to sign/);
  });
});
