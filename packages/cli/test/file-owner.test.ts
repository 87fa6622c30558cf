/**
 * A migrated file, and a file replaced by encrypt / decrypt / rewrap (--in-place, -o --force),
 * keeps its owner, group and permission bits: not the umask's narrowing, not the ownership of
 * whoever runs keyport (root, say). Setuid, setgid and sticky bits are dropped. A file whose
 * owner the running user cannot keep fails and stays exactly as it was. Needs root (to chown).
 */
import { execFileSync } from 'node:child_process';
import { chmod, chown, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { localWorkspace, runCli, spawnCli } from './support/cli.js';
import { localKeys, sealFiles } from './support/seal.js';

const isRoot = process.geteuid?.() === 0;

async function setup(count: number) {
  const ws = await localWorkspace();
  for (const n of ['a', 'b']) expect((await runCli(['keys', 'create', n], { cwd: ws.dir })).code).toBe(0);
  const files = [
    ...(await sealFiles(await localKeys(ws.keystore), ws.uri('a'), join(ws.dir, 'data'), count)).keys(),
  ];
  return { ws, files };
}

describe.runIf(isRoot)('owner and mode of migrated files', () => {
  it('run as root: owner, group and mode are kept (0666 too, whatever the umask); setuid is dropped', async () => {
    const { ws, files } = await setup(3);
    const [f0, f1, f2] = files as [string, string, string];
    await chown(f0, 65534, 65534);
    await chmod(f0, 0o640);
    await chmod(f1, 0o666);
    await chown(f2, 1, 2);
    await chmod(f2, 0o4750);
    const r = await runCli(
      ['--json', 'migrate', '--from', ws.uri('a'), '--to', ws.uri('b'), 'data', '--remove-source'],
      {
        cwd: ws.dir,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ migrated: 3, failed: 0 });
    const [s0, s1, s2] = await Promise.all(files.map((f) => stat(f)));
    expect([s0?.uid, s0?.gid, (s0?.mode ?? 0) & 0o7777]).toEqual([65534, 65534, 0o640]);
    expect([s1?.uid, s1?.gid, (s1?.mode ?? 0) & 0o7777]).toEqual([0, 0, 0o666]);
    expect([s2?.uid, s2?.gid, (s2?.mode ?? 0) & 0o7777]).toEqual([1, 2, 0o750]);
  });

  it('run as another user: a file it cannot keep the owner of fails, untouched; its own files migrate', async () => {
    const { ws, files } = await setup(2);
    const [rootsFile] = files as [string, string];
    execFileSync('chown', ['-R', '65534:65534', ws.dir]);
    // Readable by anyone, in a directory the other user may write: the rename would succeed.
    await chown(rootsFile, 0, 0);
    await chmod(rootsFile, 0o644);
    const before = await readFile(rootsFile);
    const r = await spawnCli(['--json', 'migrate', '--from', ws.uri('a'), '--to', ws.uri('b'), 'data'], {
      cwd: ws.dir,
      uid: 65534,
      gid: 65534,
    });
    expect(r.code, r.stderr).toBe(1);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ migrated: 1, failed: 1 });
    expect(summary.failures).toEqual([
      expect.objectContaining({
        file: rootsFile,
        code: 'FilePermission',
        message: expect.stringMatching(/owner/),
      }),
    ]);
    const st = await stat(rootsFile);
    expect([st.uid, st.gid]).toEqual([0, 0]);
    expect(await readFile(rootsFile)).toEqual(before);
  });
});

describe.runIf(isRoot)('owner of a file replaced by encrypt / decrypt / rewrap', () => {
  it('--in-place and --force as root keep the owner and group; as another user, refused and untouched', async () => {
    const ws = await localWorkspace();
    expect((await runCli(['keys', 'create', 'k'], { cwd: ws.dir })).code).toBe(0);
    const app = join(ws.dir, 'app.txt');
    await writeFile(app, 'the application reads this');
    await chown(app, 65534, 65534);
    await chmod(app, 0o600);
    const enc = await runCli(['encrypt', '-r', ws.uri('k'), 'app.txt', '--in-place'], { cwd: ws.dir });
    expect(enc.code, enc.stderr).toBe(0);
    let st = await stat(app);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([65534, 65534, 0o600]);
    const back = await runCli(['decrypt', 'app.txt', '-k', ws.uri('k'), '--in-place'], { cwd: ws.dir });
    expect(back.code, back.stderr).toBe(0);
    st = await stat(app);
    expect([st.uid, st.gid]).toEqual([65534, 65534]);
    expect(await readFile(app, 'utf8')).toBe('the application reads this');
    // -o over an existing file with --force: its owner kept too.
    const target = join(ws.dir, 'target.enc');
    await writeFile(target, 'old');
    await chown(target, 65534, 65534);
    const forced = await runCli(['encrypt', '-r', ws.uri('k'), 'app.txt', '-o', 'target.enc', '--force'], {
      cwd: ws.dir,
    });
    expect(forced.code, forced.stderr).toBe(0);
    st = await stat(target);
    expect([st.uid, st.gid]).toEqual([65534, 65534]);

    // Another user (not root) with write access to the directory: refused, nothing replaced.
    const rootsFile = join(ws.dir, 'roots.txt');
    await writeFile(rootsFile, 'root owns this');
    await chmod(rootsFile, 0o644);
    execFileSync('chown', ['65534:65534', ws.dir, ws.keystore, join(ws.dir, 'keyport.config.json')]);
    await writeFile(join(ws.dir, 'in.txt'), 'new contents');
    await chown(join(ws.dir, 'in.txt'), 65534, 65534);
    const r = await spawnCli(
      ['--json', 'encrypt', '-r', ws.uri('k'), 'in.txt', '-o', 'roots.txt', '--force'],
      {
        cwd: ws.dir,
        uid: 65534,
        gid: 65534,
      },
    );
    expect(r.code, r.stderr).toBe(9);
    expect(r.stderr).toMatch(/owner \(uid 0, gid 0\) cannot be kept/);
    st = await stat(rootsFile);
    expect([st.uid, st.gid]).toEqual([0, 0]);
    expect(await readFile(rootsFile, 'utf8')).toBe('root owns this');
    expect((await readdir(ws.dir)).filter((n) => n.includes('.tmp'))).toEqual([]);
  });
});
