/**
 * A run SIGKILLed inside the HSM key's generation (the AES key in the token, its metadata not
 * yet written) leaves objects under the name that are not a whole keyport key, while the manifest
 * records generating that name for the target. Before, the rerun was refused saying the manifest
 * "does not record generating it" for the target, which it does, and nothing said what was left
 * or how to clean it. Now the rerun names the half-made key, says it was never wrapped or imported,
 * and how to remove it; once removed, the same command imports a new key (the recorded marker
 * reused).
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importHsmKey, MANIFEST_FORMAT, readManifest } from '../src/index.js';
import { env, openLocal, uniqueName, useHsmKeyport } from './support.js';

const CHILD = fileURLToPath(new URL('./killed-mid-generation-child.mjs', import.meta.url));

/** Runs the child on `label`; how it ended (a signal's name, or its exit code). */
function child(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    c.once('error', reject);
    c.once('close', (code, signal) => resolve(signal ?? `exit ${code}`));
  });
}

describe('importHsmKey rerun after a run killed inside the HSM key generation', () => {
  env('softhsm');
  const t = useHsmKeyport(async (dir) => [await openLocal(dir)]);

  it('names the half-made key as that run left it and how to remove it, and keeps the record of the generation', async () => {
    const manifestPath = join(t.dir, 'half-made.json');
    const name = uniqueName('root');
    const target = await t.keyport.createKey('local', {
      name: uniqueName('t'),
      spec: 'AES_256',
      external: true,
    });
    // The killed run had recorded the generation (under the lock, before createKey).
    const generating = {
      hsm: { scheme: 'pkcs11', name, marker: 'a'.repeat(32) },
      target: { uri: target.uri },
      startedAt: new Date().toISOString(),
    };
    await writeFile(
      manifestPath,
      JSON.stringify({ format: MANIFEST_FORMAT, pairings: [], generating: [generating] }),
    );
    expect(await child(name)).toBe('SIGKILL');

    const run = () =>
      importHsmKey({
        keyport: t.keyport,
        hsm: t.hsm,
        hsmKey: { create: { name } },
        target: { uri: target.uri },
        manifestPath,
      });
    const error = await run().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'AlreadyExists' });
    // Before: "this manifest does not record generating it for <target>", which it does.
    expect((error as Error).message).not.toContain('does not record generating it');
    expect((error as Error).message).toContain('stopped half-way through generating it');
    expect((error as Error).message).toContain('--delete-object');
    expect(await readManifest(manifestPath)).toEqual({
      format: MANIFEST_FORMAT,
      pairings: [],
      generating: [generating],
    });
    expect((await t.keyport.describeKey(target.uri)).state).toBe('pending_import');

    // Cleared as the error says, the same command generates the key under the recorded marker
    // and imports it.
    expect(await child(name, 'remove')).toBe('exit 0');
    const pairing = await run();
    expect((await t.keyport.describeKey(pairing.hsm.uri)).labels).toEqual({
      'keyport-byok-import': generating.hsm.marker,
    });
    expect(await readManifest(manifestPath)).toEqual({ format: MANIFEST_FORMAT, pairings: [pairing] });
    expect((await t.keyport.describeKey(target.uri)).state).toBe('enabled');
  });
});
