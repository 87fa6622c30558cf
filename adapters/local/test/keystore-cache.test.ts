/**
 * The cached body: a read whose file is unchanged opens nothing (one stat by path), and every
 * change of the file is still seen or refused at the next read, as on a first read.
 */
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeystoreFile } from '../src/keystore-file.js';
import { bytes, collect, expectCode, newKeystore, o, PASSPHRASE, tempDir } from './helpers.js';

const names = async (kp: Awaited<ReturnType<typeof newKeystore>>['kp']) =>
  (await collect(kp.listKeys(o))).map((k) => k.uri.split('#')[1]).sort();

describe('keystore cache', () => {
  it('reads of an unchanged file open it once; a write by another handle is seen at the next read', async () => {
    const { kp, path } = await newKeystore();
    await kp.createKey({ name: 'first', spec: 'AES_256' }, o);
    const file = new KeystoreFile({ path, passphrase: Buffer.from(PASSPHRASE) });
    try {
      const body = await file.read();
      expect(file.opens).toBe(1);
      for (let i = 0; i < 20; i++) expect(await file.read()).toBe(body);
      expect(file.opens).toBe(1);
      // Another writer (its own cache, as another process): an atomic rename, a new inode.
      await kp.createKey({ name: 'second', spec: 'AES_256' }, o);
      const after = await file.read();
      expect(after.keys.map((k) => k.name).sort()).toEqual(['first', 'second']);
      expect(file.opens).toBe(2);
      await file.read();
      expect(file.opens).toBe(2);
    } finally {
      file.close();
    }
  });

  it('an older copy of the keystore renamed back over it is read again, not served from the cache', async () => {
    const { kp, path } = await newKeystore();
    const key = await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    const enabled = await readFile(path);
    await kp.disableKey({ uri: key.uri }, o);
    await expectCode(kp.encrypt({ uri: key.uri }, bytes('x'), {}, o), 'KeyStateConflict');
    await writeFile(`${path}.restore`, enabled);
    await rename(`${path}.restore`, path);
    await kp.encrypt({ uri: key.uri }, bytes('x'), {}, o);
  });

  it('a keystore deleted, or swapped for a directory, a FIFO or a link to one, is refused after cached reads', async () => {
    const { kp, path } = await newKeystore();
    const key = await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
    const use = () => kp.encrypt({ uri: key.uri }, bytes('x'), {}, o);
    await use();
    const saved = await readFile(path);

    await rm(path);
    await expectCode(use(), 'NotFound');

    await mkdir(path);
    await expectCode(use(), 'InvalidArgument');
    await rm(path, { recursive: true });

    execFileSync('mkfifo', [path]);
    await expectCode(use(), 'InvalidArgument');
    await rm(path);

    const elsewhere = join(await tempDir(), 'fifo');
    execFileSync('mkfifo', [elsewhere]);
    await symlink(elsewhere, path);
    await expectCode(use(), 'InvalidArgument');
    await rm(path);

    // Restored: usable again.
    await writeFile(path, saved);
    await use();
  });

  it('a link swapped in to another, different keystore is read as that keystore', async () => {
    const { kp, path } = await newKeystore();
    await kp.createKey({ name: 'a', spec: 'AES_256' }, o);
    const other = join(await tempDir(), 'other.keystore');
    await copyFile(path, other);
    expect(await names(kp)).toEqual(['a']);
    await kp.createKey({ name: 'b', spec: 'AES_256' }, o);
    expect(await names(kp)).toEqual(['a', 'b']);
    await rm(path);
    await symlink(other, path);
    expect(await names(kp)).toEqual(['a']);
  });
});
