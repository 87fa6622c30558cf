import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isolateSofthsmToken } from '@keyport/conformance/harness';
import { describe, expect, it, vi } from 'vitest';
import { byokHsmAndCloud, isEntryPoint } from '../src/main.js';

describe('byok-hsm-and-cloud example', () => {
  it('seals to the HSM and the cloud copy, opens with each, and the HSM survives the cloud revocation', async () => {
    isolateSofthsmToken(); // SoftHSM2 does not lock a token against other test processes
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => {
      lines.push(line);
    });
    try {
      await byokHsmAndCloud(await mkdtemp(join(tmpdir(), 'kp-byok-example-')));
    } finally {
      log.mockRestore();
    }
    const out = lines.join('\n');
    expect(out).toContain('wrapped inside it with RSAES_OAEP_SHA_1');
    expect(out).toContain('opened by the HSM alone:   invoice 1, invoice 2, invoice 3');
    expect(out).toContain('opened by the cloud alone: invoice 1, invoice 2, invoice 3');
    expect(out).toContain('refused as expected: open with the disabled cloud key -> KeyStateConflict');
    expect(out).toContain('scheduled its deletion (pending_deletion)');
    expect(out).toContain(
      'refused as expected: open with the cloud key pending deletion -> KeyStateConflict',
    );
    expect(out).toContain('the HSM still opens everything: invoice 1, invoice 2, invoice 3');
  });
});

describe('isEntryPoint', () => {
  it('knows it is the program when its path has a # or % in it, or goes through a symlink', async () => {
    const root = await mkdtemp(join(tmpdir(), 'kp-example-main-'));
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
