/** The audit HMAC key file (`audit.keyFile`): hex, base64 or raw bytes, at least 32 bytes. */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readHmacKey } from '../src/session.js';

const dir = mkdtempSync(join(tmpdir(), 'keyport-hmac-key-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: string | Uint8Array): string => {
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
};

describe('readHmacKey', () => {
  it('reads the same key from hex, base64 and raw bytes, each in memory of its own', async () => {
    // Raw bytes that cannot be mistaken for hex or base64 text.
    const key = Buffer.concat([Buffer.from([0xff, 0x00]), randomBytes(38)]);
    for (const [name, content] of [
      ['hex', `${key.toString('hex')}\n`],
      ['base64', `  ${key.toString('base64')}\n`],
      ['raw', key],
    ] as const) {
      const read = await readHmacKey(file(name, content));
      expect(Buffer.from(read).equals(key), name).toBe(true);
      expect(read.byteOffset, name).toBe(0);
      expect(read.buffer.byteLength, name).toBe(key.length);
    }
  });

  it('refuses a key shorter than 32 bytes and a missing file', async () => {
    await expect(readHmacKey(file('short', randomBytes(31)))).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    // A file error naming the path (exit 8), not a KMS NotFound ("check the key URI").
    await expect(readHmacKey(join(dir, 'absent'))).rejects.toMatchObject({
      code: 'FileNotFound',
      exitCode: 8,
    });
    await expect(readHmacKey(dir)).rejects.toMatchObject({ code: 'IsADirectory', exitCode: 10 });
  });

  it('refuses a key file every user may read or write, naming the mode, never the key', async () => {
    const key = randomBytes(32).toString('hex');
    for (const [mode, what] of [
      [0o644, 'read'],
      [0o602, 'replace'],
    ] as const) {
      const path = file(`open-${mode.toString(8)}`, key);
      chmodSync(path, mode);
      const error = await readHmacKey(path).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error, mode.toString(8)).toMatchObject({ code: 'InvalidArgument' });
      expect(error?.message).toContain(`mode 0${mode.toString(8)}: every user can ${what}`);
      expect(error?.message).not.toContain(key);
    }
    // Group access stays allowed: a log shared by a group needs it.
    const shared = file('group', key);
    chmodSync(shared, 0o640);
    expect(Buffer.from(await readHmacKey(shared)).toString('hex')).toBe(key);
  });
});
