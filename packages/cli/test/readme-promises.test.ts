/**
 * Promises of the README that no other test pins down, one test each, named after the promise:
 * where the config is looked for, a `…File` field beating its environment variable, flags over
 * `defaults`, the audit log failing closed when it cannot be written, the `audit` commands
 * leaving the log they examine alone, and plain URIs among several instances of one scheme.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeyport } from '@keyport/core';
import { VaultTransitProvider } from '@keyport/vault-transit';
import { describe, expect, it } from 'vitest';
import { jsonError, localWorkspace, PASSPHRASE, requireEmulator, runCli } from './support/cli.js';

describe('README promises', () => {
  it('the config is --config, else $KEYPORT_CONFIG, else keyport.config.json/.yaml/.yml in the working directory', async () => {
    // Each config names a keystore of its own (by the same relative path); the key's URI names
    // the winner's, so the command succeeds only when it read the config it should have.
    const winner = await localWorkspace();
    expect((await runCli(['keys', 'create', 'k'], { cwd: winner.dir })).code).toBe(0);
    const loser = await localWorkspace();
    const describeK = (cwd: string, argv: string[] = [], env: Record<string, string> = {}) =>
      runCli([...argv, 'keys', 'describe', winner.uri('k')], { cwd, env });
    const winnerConfig = join(winner.dir, 'keyport.config.json');

    // --config beats $KEYPORT_CONFIG, which beats the working directory's file.
    const flag = await describeK(loser.dir, ['--config', winnerConfig], {
      KEYPORT_CONFIG: join(loser.dir, 'keyport.config.json'),
    });
    expect(flag.code, flag.stderr).toBe(0);
    const envOnly = await describeK(loser.dir, [], { KEYPORT_CONFIG: winnerConfig });
    expect(envOnly.code, envOnly.stderr).toBe(0);
    const wrong = await describeK(loser.dir, ['--config', join(loser.dir, 'keyport.config.json')], {
      KEYPORT_CONFIG: winnerConfig,
    });
    expect(wrong.code).toBe(3); // NotFound: the key URI names another keystore than the config's

    // keyport.config.yml (the short spelling) in the working directory is found.
    const yml = await mkdtemp(join(tmpdir(), 'keyport-yml-'));
    await writeFile(
      join(yml, 'keyport.config.yml'),
      `providers:\n  local: { keystore: ${winner.keystore} }\n`,
    );
    const viaYml = await runCli(['keys', 'describe', winner.uri('k')], { cwd: yml });
    expect(viaYml.code, viaYml.stderr).toBe(0);
  });

  it('explicit config wins: a passphraseFile beats KEYPORT_LOCAL_PASSPHRASE', async () => {
    const ws = await localWorkspace();
    await writeFile(join(ws.dir, 'pass.txt'), `${PASSPHRASE}\n`);
    await writeFile(
      join(ws.dir, 'keyport.config.json'),
      JSON.stringify({ providers: { local: { keystore: './keys.kp', passphraseFile: 'pass.txt' } } }),
    );
    // The variable holds a wrong passphrase: read first, it would be access denied (exit 4).
    const r = await runCli(['keys', 'create', 'k'], {
      cwd: ws.dir,
      env: { KEYPORT_LOCAL_PASSPHRASE: 'not the passphrase' },
    });
    expect(r.code, r.stderr).toBe(0);
  });

  it('-r overrides defaults.recipients; without -r the defaults are the recipients', async () => {
    const ws = await localWorkspace();
    for (const k of ['a', 'b']) expect((await runCli(['keys', 'create', k], { cwd: ws.dir })).code).toBe(0);
    await writeFile(
      join(ws.dir, 'keyport.config.json'),
      JSON.stringify({
        providers: { local: { keystore: './keys.kp' } },
        defaults: { recipients: [ws.uri('a')] },
      }),
    );
    const byDefault = await runCli(['--json', 'encrypt', '-o', 'd.enc'], { cwd: ws.dir, stdin: 'x' });
    expect(byDefault.code, byDefault.stderr).toBe(0);
    expect(JSON.parse(byDefault.stdout).recipients).toEqual([ws.uri('a')]);
    const given = await runCli(['--json', 'encrypt', '-o', 'g.enc', '-r', ws.uri('b')], {
      cwd: ws.dir,
      stdin: 'x',
    });
    expect(given.code, given.stderr).toBe(0);
    expect(JSON.parse(given.stdout).recipients).toEqual([ws.uri('b')]);
    // Not sealed for the default key as well: a refused default recipient must not open it.
    const opened = await runCli(['decrypt', 'g.enc', '-k', ws.uri('a')], { cwd: ws.dir });
    expect(opened.code).toBe(6);
  });

  it('fail-closed: an audit log that cannot be written fails the command (exit 5) and prints nothing it would have returned', async () => {
    // The log lives on a small tmpfs, then filled: its next append fails with ENOSPC.
    const ws = await localWorkspace();
    const small = join(ws.dir, 'small');
    await mkdir(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', small]);
    try {
      await writeFile(join(ws.dir, 'audit.key'), Buffer.alloc(32, 7), { mode: 0o600 });
      await writeFile(
        join(ws.dir, 'keyport.config.json'),
        JSON.stringify({
          providers: { local: { keystore: './keys.kp' } },
          audit: { log: './small/audit.jsonl', keyFile: './audit.key' },
        }),
      );
      expect((await runCli(['keys', 'create', 'k'], { cwd: ws.dir })).code).toBe(0);
      const logBefore = await readFile(join(small, 'audit.jsonl'));
      try {
        await writeFile(join(small, 'filler'), Buffer.alloc(128 * 1024));
      } catch (e) {
        expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
      }
      const r = await runCli(['--json', 'keys', 'create', 'k2'], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(5);
      // Core's AuditFailure, code Unavailable; the error names the log and what to do about it
      // (the provider is fine: "is the provider reachable?" would send the user astray).
      const error = jsonError(r.stderr);
      expect(error).toMatchObject({ code: 'Unavailable', exitCode: 5 });
      expect(error.message).toContain(JSON.stringify(join(small, 'audit.jsonl')));
      expect(error.next).toMatch(/the audit log cannot be written/);
      // Nothing it would have returned: no result, no URI of the key the provider made.
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toContain('#k2');
      // The log is as it was (the failed append cut), and still verifies.
      expect(await readFile(join(small, 'audit.jsonl'))).toEqual(logBefore);
    } finally {
      execFileSync('umount', [small]);
    }
  });

  it('the audit commands never write to the log they examine (verify, anchor, verify --anchor-signature)', async () => {
    const ws = await localWorkspace({}, { audit: { log: 'audit.jsonl' } });
    const cwd = ws.dir;
    expect((await runCli(['keys', 'create', 'signer', '--spec', 'EC_P256'], { cwd })).code).toBe(0);
    const files = async () => {
      const out: Record<string, string> = {};
      for (const name of (await readdir(cwd)).filter((n) => n.startsWith('audit.jsonl')).sort()) {
        const st = await stat(join(cwd, name));
        out[name] = `${(await readFile(join(cwd, name))).toString('base64')} ${st.mtimeMs} ${st.ino}`;
      }
      return out;
    };
    const before = await files();
    expect(Object.keys(before)).toEqual(['audit.jsonl', 'audit.jsonl.anchor', 'audit.jsonl.key']);
    const verified = await runCli(['audit', 'verify'], { cwd });
    expect(verified.code, verified.stderr).toBe(0);
    const anchored = await runCli(['audit', 'anchor', '--key', ws.uri('signer'), '-o', 'head.sig.json'], {
      cwd,
    });
    expect(anchored.code, anchored.stderr).toBe(0);
    const checked = await runCli(
      ['audit', 'verify', '--anchor-signature', 'head.sig.json', '--signing-key', ws.uri('signer')],
      { cwd },
    );
    expect(checked.code, checked.stderr).toBe(0);
    expect(await files()).toEqual(before);
  });

  it('a plain URI with several instances of its scheme and no plain entry goes to the one whose server it names, else fails naming them', async () => {
    const bao = requireEmulator('openbao');
    const ws = await localWorkspace({
      // Nothing listens here, and it comes first: a guess that picked it could not encrypt.
      'hcvault+west': { address: 'http://127.0.0.1:9', flavor: 'openbao' },
      'hcvault+east': { address: bao.KEYPORT_OPENBAO_ADDR, flavor: 'openbao' },
    });
    const env = { KEYPORT_VAULT_TOKEN: bao.KEYPORT_OPENBAO_TOKEN };
    const keys = createKeyport({
      providers: {
        hcvault: new VaultTransitProvider({
          endpoint: bao.KEYPORT_OPENBAO_ADDR,
          auth: bao.KEYPORT_OPENBAO_TOKEN,
          flavor: 'openbao',
        }),
      },
    });
    const plain = (
      await keys.createKey('hcvault', { name: `cli-claim-${Date.now().toString(36)}`, spec: 'AES_256' })
    ).uri;
    await keys.close();
    expect(plain).toMatch(/^hcvault:\/\//);
    const enc = await runCli(['--json', '--timeout', '5000', 'encrypt', '-o', 'm.enc', '-r', plain], {
      cwd: ws.dir,
      env,
      stdin: 'claimed',
    });
    expect(enc.code, enc.stderr).toBe(0);
    const dec = await runCli(['decrypt', 'm.enc', '-k', plain], { cwd: ws.dir, env });
    expect(dec.code, dec.stderr).toBe(0);
    expect(dec.stdout).toBe('claimed');

    // A server neither instance names: never a guess.
    const elsewhere = plain.replace(/^hcvault:\/\/[^/]+/, 'hcvault://127.0.0.2:8200');
    const r = await runCli(['--json', 'encrypt', '-o', 'n.enc', '-r', elsewhere], {
      cwd: ws.dir,
      env,
      stdin: 'x',
    });
    expect(r.code, r.stderr).toBe(2);
    expect(jsonError(r.stderr).message).toMatch(/several instances \((east, west|west, east)\)/);
    expect((await readdir(ws.dir)).filter((f) => f.startsWith('n.enc') || f.includes('keyport.tmp'))).toEqual(
      [],
    );
  });
});
