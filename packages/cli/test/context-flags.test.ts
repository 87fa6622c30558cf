/**
 * --context, --context-subset and --context-equals are plain string maps: `__proto__`,
 * `constructor` and `toString` are ordinary keys; empty keys, duplicate keys and invalid UTF-8
 * are refused (exit 2). Two tenants share a key: a grant constrained on `__proto__=x` lets
 * tenant A open A's data and denies it B's.
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePairs } from '../src/args.js';
import { BIN, HOOKS, jsonError, localWorkspace, PASSPHRASE, runCli } from './support/cli.js';

describe('parsePairs', () => {
  it('builds a prototype-free map where __proto__, constructor and toString are ordinary keys', () => {
    const m = parsePairs(['__proto__=x', 'constructor=y', 'toString=z', 'a=b=c'], '--context');
    expect(Object.getPrototypeOf(m)).toBeNull();
    expect(Object.keys(m)).toEqual(['__proto__', 'constructor', 'toString', 'a']);
    expect(Object.getOwnPropertyDescriptor(m, '__proto__')?.value).toBe('x');
    expect(m.a).toBe('b=c');
    expect(JSON.stringify(m)).toBe('{"__proto__":"x","constructor":"y","toString":"z","a":"b=c"}');
  });

  it('refuses empty keys, missing "=", duplicates (also __proto__), and text that is not valid UTF-8', () => {
    for (const bad of [
      ['=v'],
      ['novalue'],
      ['k=1', 'k=2'],
      ['__proto__=1', '__proto__=2'],
      ['k=\uFFFD'],
      ['\uD800=v'],
      ['k=\uDC00'],
    ]) {
      expect(() => parsePairs(bad, '--context'), bad.join(' ')).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    }
    expect(() => parsePairs(['k=secret-1', 'k=secret-2'], '--context')).toThrow(/"k" twice/);
    try {
      parsePairs(['k=secret-1', 'k=secret-2'], '--context');
    } catch (e) {
      expect(String(e)).not.toContain('secret');
    }
  });
});

describe('context flags on the command line', () => {
  it('__proto__ is kept in the envelope context and checked on decrypt', async () => {
    const ws = await localWorkspace();
    await runCli(['keys', 'create', 'k'], { cwd: ws.dir });
    await writeFile(join(ws.dir, 'p'), 'tenant data');
    const enc = await runCli(
      [
        '--json',
        'encrypt',
        'p',
        '-o',
        'p.enc',
        '-r',
        ws.uri('k'),
        '--context',
        '__proto__=x',
        '--context',
        'constructor=c',
      ],
      { cwd: ws.dir },
    );
    expect(enc.code, enc.stderr).toBe(0);
    expect(JSON.parse(enc.stdout).contextKeys).toEqual(['__proto__', 'constructor']);
    const wrong = await runCli(['decrypt', 'p.enc', '-k', ws.uri('k'), '--context', '__proto__=y'], {
      cwd: ws.dir,
    });
    expect(wrong.code).toBe(6);
    const exact = await runCli(
      [
        'decrypt',
        'p.enc',
        '-k',
        ws.uri('k'),
        '--context',
        '__proto__=x',
        '--context',
        'constructor=c',
        '--require-context',
      ],
      { cwd: ws.dir },
    );
    expect(exact.code, exact.stderr).toBe(0);
    expect(exact.stdout).toBe('tenant data');
  });

  it('refuses an empty key, a duplicate key and invalid UTF-8 bytes from the terminal (exit 2)', async () => {
    const ws = await localWorkspace();
    await runCli(['keys', 'create', 'k'], { cwd: ws.dir });
    for (const ctx of [['=v'], ['a=1', 'a=2']]) {
      const r = await runCli(
        ['--json', 'encrypt', '-r', ws.uri('k'), ...ctx.flatMap((c) => ['--context', c])],
        {
          cwd: ws.dir,
          stdin: 'x',
        },
      );
      expect(r.code).toBe(2);
      expect(JSON.parse(r.stderr).error.code).toBe('InvalidArgument');
    }
    // Raw bytes 0xff 0xfe in argv (not UTF-8), passed by a shell as a terminal would.
    const r = spawnSync(
      'bash',
      [
        '-c',
        `"${process.execPath}" --import "${HOOKS}" "${BIN}" --json encrypt -r "$1" --context "k=$(printf '\\xff\\xfe')"`,
        'sh',
        ws.uri('k'),
      ],
      {
        cwd: ws.dir,
        input: 'x',
        env: { PATH: process.env.PATH, KEYPORT_CLI_FROM_SOURCE: '1', KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE },
      },
    );
    expect(r.status, r.stderr.toString()).toBe(2);
    const last = r.stderr.toString().trimEnd().split('\n').at(-1) as string;
    expect(JSON.parse(last).error.message, r.stderr.toString()).toMatch(/not valid UTF-8/);
  });
});

/** A local workspace with key `k`, file `p` and `p.enc` sealed with the `user` pair left out of the file. */
async function sealedWithUnstoredPair(extraProviders: Record<string, unknown> = {}) {
  const ws = await localWorkspace(extraProviders);
  const created = await runCli(['keys', 'create', 'k', '--provider', 'local'], { cwd: ws.dir });
  expect(created.code, created.stderr).toBe(0);
  await writeFile(join(ws.dir, 'p'), 'row 42');
  const enc = await runCli(
    [
      'encrypt',
      'p',
      '-o',
      'p.enc',
      '-r',
      ws.uri('k'),
      '--context',
      'table=orders',
      '--context',
      'user=u-secret-7',
      '--context-not-stored',
      'user',
    ],
    { cwd: ws.dir },
  );
  expect(enc.code, enc.stderr).toBe(0);
  return ws;
}

describe('--context-not-stored and --reproduced-context', () => {
  it('the pair is bound but not in the file; decrypt needs it back, with its value', async () => {
    const ws = await sealedWithUnstoredPair();
    const sealed = await readFile(join(ws.dir, 'p.enc'));
    expect(sealed.includes(Buffer.from('u-secret-7'))).toBe(false);
    expect(sealed.includes(Buffer.from('orders'))).toBe(true);
    const open = (extra: string[]) =>
      runCli(['decrypt', 'p.enc', '-k', ws.uri('k'), ...extra], { cwd: ws.dir });
    expect((await open([])).code).toBe(6);
    expect((await open(['--reproduced-context', 'user=u-other'])).code).toBe(6);
    const ok = await open(['--reproduced-context', 'user=u-secret-7', '--context', 'table=orders']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('row 42');
    // rewrap needs the pair too, and keeps it out of the new file.
    await runCli(['keys', 'create', 'k2'], { cwd: ws.dir });
    const rewrap = (extra: string[]) =>
      runCli(['rewrap', 'p.enc', '-o', 'p2.enc', '-k', ws.uri('k'), '--add', ws.uri('k2'), ...extra], {
        cwd: ws.dir,
      });
    expect((await rewrap([])).code).not.toBe(0);
    const rw = await rewrap(['--reproduced-context', 'user=u-secret-7']);
    expect(rw.code, rw.stderr).toBe(0);
    expect((await readFile(join(ws.dir, 'p2.enc'))).includes(Buffer.from('u-secret-7'))).toBe(false);
    const viaK2 = await runCli(
      ['decrypt', 'p2.enc', '-k', ws.uri('k2'), '--reproduced-context', 'user=u-secret-7'],
      { cwd: ws.dir },
    );
    expect(viaK2.code, viaK2.stderr).toBe(0);
    expect(viaK2.stdout).toBe('row 42');
    // A reproduced pair must agree with a stored one: refused before any key is used.
    expect(
      (await open(['--reproduced-context', 'user=u-secret-7', '--reproduced-context', 'table=x'])).code,
    ).toBe(6);
  });

  it('a --context-not-stored key that is not a --context key is refused (exit 2, the flag named), and no file is left', async () => {
    const ws = await localWorkspace();
    await runCli(['keys', 'create', 'k'], { cwd: ws.dir });
    await writeFile(join(ws.dir, 'p'), 'x');
    for (const notStored of ['b', '']) {
      const r = await runCli(
        [
          '--json',
          'encrypt',
          'p',
          '-o',
          'p.enc',
          '-r',
          ws.uri('k'),
          '--context',
          'a=1',
          '--context-not-stored',
          notStored,
        ],
        { cwd: ws.dir },
      );
      expect(r.code, r.stderr).toBe(2);
      expect(jsonError(r.stderr)).toMatchObject({ code: 'InvalidArgument' });
      expect(jsonError(r.stderr).message).toContain('--context-not-stored');
      await expect(readFile(join(ws.dir, 'p.enc'))).rejects.toMatchObject({ code: 'ENOENT' });
    }
  });

  it('--require-context counts the reproduced pairs as given; a stored pair not given still fails', async () => {
    const ws = await sealedWithUnstoredPair();
    const open = (extra: string[]) =>
      runCli(['--json', 'decrypt', 'p.enc', '-k', ws.uri('k'), '--require-context', ...extra], {
        cwd: ws.dir,
      });
    // The file stores exactly table=orders; user=... is the caller's own pair, proven by the key.
    const exact = await open(['--context', 'table=orders', '--reproduced-context', 'user=u-secret-7']);
    expect(exact.code, exact.stderr).toBe(0);
    expect(exact.stdout).toBe('row 42');
    // Only the reproduced pair: the stored table=orders was not given, so the check still fails.
    const missing = await open(['--reproduced-context', 'user=u-secret-7']);
    expect(missing.code, missing.stderr).toBe(6);
    expect(jsonError(missing.stderr).message).toMatch(/table/);
    expect(missing.stdout).toBe('');
    // A wrong reproduced value is still an integrity failure, nothing released.
    const wrong = await open(['--context', 'table=orders', '--reproduced-context', 'user=u-8']);
    expect(wrong.code).toBe(6);
    expect(wrong.stdout).toBe('');
  });

  // With the pairs given back (--reproduced-context) it migrates: migrate-reproduced-context.test.ts.
  it('migrate without --reproduced-context: such a file fails (exit 1, listed as failed), left as it was', async () => {
    const ws = await sealedWithUnstoredPair();
    await runCli(['keys', 'create', 'k2'], { cwd: ws.dir });
    await mkdir(join(ws.dir, 'm'));
    await copyFile(join(ws.dir, 'p.enc'), join(ws.dir, 'm', 'p.enc'));
    const before = await readFile(join(ws.dir, 'm', 'p.enc'));
    const r = await runCli(['--json', 'migrate', '--from', ws.uri('k'), '--to', ws.uri('k2'), 'm'], {
      cwd: ws.dir,
    });
    expect(r.code, r.stderr).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, total: 1, migrated: 0, failed: 1 });
    expect((await readFile(join(ws.dir, 'm', 'p.enc'))).equals(before)).toBe(true);
  });
});

describe('--discovery-account and --discovery-partition', () => {
  it('a value that is not an account id or a partition: exit 2 naming the flag, even with an existing -o', async () => {
    // An aws-kms provider is configured (never reached: nothing here calls it).
    const ws = await sealedWithUnstoredPair({
      'aws-kms': { region: 'us-east-1', endpoint: 'http://127.0.0.1:9' },
    });
    await writeFile(join(ws.dir, 'exists'), 'keep me');
    for (const account of ['12345', '1234567890123', ' 123456789012', '12345678901a', '']) {
      const r = await runCli(
        ['--json', 'decrypt', 'p.enc', '-o', 'exists', '--trust-configured', '--discovery-account', account],
        { cwd: ws.dir },
      );
      expect(r.code, `${JSON.stringify(account)}: ${r.stderr}`).toBe(2);
      expect(jsonError(r.stderr).message).toContain('--discovery-account');
    }
    expect(await readFile(join(ws.dir, 'exists'), 'utf8')).toBe('keep me');
    const partition = await runCli(
      [
        '--json',
        'decrypt',
        'p.enc',
        '--trust-configured',
        '--discovery-account',
        '123456789012',
        '--discovery-partition',
        'AWS',
      ],
      { cwd: ws.dir },
    );
    expect(partition.code, partition.stderr).toBe(2);
    expect(jsonError(partition.stderr).message).toContain('--discovery-partition');
  });
});

describe('two tenants and a grant constrained on __proto__', () => {
  it("tenant A opens its own data and is denied tenant B's", async () => {
    const ws = await localWorkspace();
    const owner = { cwd: ws.dir };
    await runCli(['keys', 'create', 'shared'], owner);
    const key = ws.uri('shared');
    const grant = await runCli(
      [
        '--json',
        'grants',
        'create',
        key,
        '--grantee',
        'tenant-a',
        '--op',
        'decrypt',
        '--context-subset',
        '__proto__=x',
      ],
      owner,
    );
    expect(grant.code, grant.stderr).toBe(0);
    expect(JSON.parse(grant.stdout).contextSubsetKeys).toEqual(['__proto__']);
    const listed = JSON.parse((await runCli(['--json', 'grants', 'list', key], owner)).stdout);
    expect(listed.grants[0].contextSubsetKeys).toEqual(['__proto__']);

    await writeFile(join(ws.dir, 'a.txt'), 'data of tenant A');
    await writeFile(join(ws.dir, 'b.txt'), 'data of tenant B');
    for (const [t, v] of [
      ['a', 'x'],
      ['b', 'y'],
    ]) {
      const r = await runCli(
        ['encrypt', `${t}.txt`, '-o', `${t}.enc`, '-r', key, '--context', `__proto__=${v}`],
        owner,
      );
      expect(r.code, r.stderr).toBe(0);
    }
    // Tenant A: the same keystore, acting as principal "tenant-a".
    await writeFile(
      join(ws.dir, 'tenant-a.json'),
      JSON.stringify({ providers: { local: { keystore: './keys.kp', principal: 'tenant-a' } } }),
    );
    const asA = (args: string[]) => runCli(['--config', 'tenant-a.json', ...args], owner);
    const own = await asA(['decrypt', 'a.enc', '-k', key, '--context', '__proto__=x']);
    expect(own.code, own.stderr).toBe(0);
    expect(own.stdout).toBe('data of tenant A');
    const other = await asA(['--json', 'decrypt', 'b.enc', '-k', key]);
    expect(other.code, other.stderr).toBe(4);
    expect(jsonError(other.stderr).code).toBe('AccessDenied');
    expect(other.stdout).toBe('');
    // Claiming A's value for B's message does not help: the context is authenticated.
    const forged = await asA(['decrypt', 'b.enc', '-k', key, '--context', '__proto__=x']);
    expect(forged.code).not.toBe(0);
    expect(forged.stdout).toBe('');
  });
});
