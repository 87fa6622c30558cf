import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { isEntryPoint, main, quickstart } from '../src/main.js';

/** What `run` prints with console.log, line by line. */
async function printed(run: () => Promise<void>): Promise<string> {
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((line: string) => {
    lines.push(line);
  });
  try {
    await run();
  } finally {
    log.mockRestore();
  }
  return lines.join('\n');
}

describe('quickstart', () => {
  it('runs every step and verifies its audit log', async () => {
    const text = await printed(async () => quickstart(await mkdtemp(join(tmpdir(), 'kp-qs-'))));
    expect(text).toContain('refused as expected: decrypt with tenant=evil -> InvalidCiphertext');
    expect(text).toContain('refused as expected: encrypt with a disabled key -> KeyStateConflict');
    expect(text).toMatch(
      /rotated to version 2: new ciphertexts use version 2, the old one still opens \(version 1\)/,
    );
    expect(text).toMatch(/chained records, each HMACed, anchored at \d+, verified/);
    expect(text).not.toContain('acme');
  });

  it('reruns on a kept directory: one audit key, one log, every record verified', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kp-qs-kept-'));
    try {
      const first = await printed(() => quickstart(dir));
      expect(first).toContain(': 11 chained records, each HMACed, anchored at 11, verified');
      const second = await printed(() => quickstart(dir));
      expect(second).toContain(': 22 chained records, each HMACed, anchored at 22, verified');
      // The audit key is kept beside the log, readable by its owner only.
      if (process.platform !== 'win32')
        expect(statSync(join(dir, 'audit.jsonl.key')).mode & 0o777).toBe(0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('as a command, removes its temporary directory; KEYPORT_QUICKSTART_DIR is created and kept', async () => {
    const text = await printed(() => main({}));
    const keystore = /^1\. keystore (.+)$/m.exec(text)?.[1];
    expect(keystore).toMatch(/keyport-quickstart-[^/\\]+[/\\]quickstart\.kp$/);
    expect(existsSync(join(keystore as string, '..'))).toBe(false);
    expect(text).toContain('set KEYPORT_QUICKSTART_DIR to keep it');

    const parent = await mkdtemp(join(tmpdir(), 'kp-qs-env-'));
    try {
      const kept = join(parent, 'not', 'yet');
      await printed(() => main({ KEYPORT_QUICKSTART_DIR: kept }));
      expect(existsSync(join(kept, 'quickstart.kp'))).toBe(true);
      expect(existsSync(join(kept, 'audit.jsonl'))).toBe(true);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('knows it is the program when its path has a # or % in it, or goes through a symlink', async () => {
    const root = await mkdtemp(join(tmpdir(), 'kp-qs-main-'));
    try {
      const dir = join(root, 'C# 100%?');
      await mkdir(dir);
      const file = join(dir, 'main.js');
      await writeFile(file, '');
      const url = pathToFileURL(file).href;
      expect(isEntryPoint(url, file)).toBe(true);
      await symlink(dir, join(root, 'link'));
      expect(isEntryPoint(url, join(root, 'link', 'main.js'))).toBe(true);
      expect(isEntryPoint(url, join(root, 'other.js'))).toBe(false);
      expect(isEntryPoint(url, undefined)).toBe(false);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
