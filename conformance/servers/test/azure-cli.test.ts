import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAzureCliArgs } from '../src/azure/cli.js';

describe('keyport-azure-keyvault arguments', () => {
  it('defaults to a vault on a free port and reads a principals file', async () => {
    expect(parseAzureCliArgs([])).toEqual({ mode: 'vault', port: 0 });
    const dir = await mkdtemp(join(tmpdir(), 'kp-cli-'));
    try {
      const file = join(dir, 'p.json');
      await writeFile(file, JSON.stringify({ t1: 'all', t2: ['get'] }));
      expect(parseAzureCliArgs(['--mode', 'hsm', '--port', '8443', '--principals', file])).toEqual({
        mode: 'hsm',
        port: 8443,
        principals: { t1: 'all', t2: ['get'] },
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects a bad mode, port or flag', () => {
    expect(() => parseAzureCliArgs(['--mode', 'premium'])).toThrow(/--mode/);
    expect(() => parseAzureCliArgs(['--port', '70000'])).toThrow(/--port/);
    expect(() => parseAzureCliArgs(['--bogus'])).toThrow();
  });
});
