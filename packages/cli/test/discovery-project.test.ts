/**
 * `--discovery-project` narrows `--trust-configured` for gcp-kms as `--discovery-account` does for
 * aws-kms: a message naming a key of another Cloud KMS project is not opened by calling it. The
 * gcp-kms provider here points at a closed port, so any call to it would fail as Unavailable:
 * the filtered run must end without one.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyOperations } from '@keyport/core';
import { sealEnvelope } from '@keyport/envelope';
import { describe, expect, it } from 'vitest';
import { jsonError, localWorkspace, runCli } from './support/cli.js';

// A token from the environment: no credential discovery (no metadata server lookup).
const GCP = {
  projectId: 'my-project-1',
  apiEndpoint: '127.0.0.1',
  port: 9,
  insecure: true,
  accessTokenEnv: 'GCP_TOKEN',
};
const env = { GCP_TOKEN: 'test-token' };
const sendersKey = 'gcp-kms://projects/senders-project/locations/global/keyRings/r/cryptoKeys/k';

/** A message whose only EDK names `sendersKey` (sealed with a stand-in: nobody opens it). */
async function sealedForSendersProject(dir: string): Promise<void> {
  const keys = {
    async encrypt() {
      return { ciphertext: randomBytes(64), keyVersion: '1' };
    },
    async generateDataKey() {
      return { plaintext: randomBytes(32), wrapped: randomBytes(64), keyVersion: '1' };
    },
  } as unknown as KeyOperations;
  await writeFile(
    join(dir, 'm.enc'),
    await sealEnvelope(Buffer.from('secret'), { recipients: [sendersKey], keys }),
  );
}

/** `keyport --json decrypt m.enc -o out` with `flags`, in `dir`. */
const decrypt = (dir: string, ...flags: string[]) =>
  runCli(['--json', 'decrypt', 'm.enc', '-o', 'out', ...flags], { cwd: dir, env });

describe('decrypt --trust-configured --discovery-project', () => {
  it("calls no key of another project; without the filter the sender's project is called", async () => {
    const ws = await localWorkspace({ 'gcp-kms': GCP });
    await sealedForSendersProject(ws.dir);
    const filtered = await decrypt(ws.dir, '--trust-configured', '--discovery-project', 'my-project-1');
    expect(filtered.code, filtered.stderr).toBe(6);
    expect(jsonError(filtered.stderr).code).toBe('InvalidCiphertext');
    expect(filtered.stderr).not.toMatch(/Unavailable|ECONNREFUSED/);
    const open = await decrypt(ws.dir, '--trust-configured');
    expect(open.code).not.toBe(0);
    // The unfiltered run tried the sender's project (and met the closed port).
    expect(open.stderr).toMatch(/Unavailable|unavailable|ECONNREFUSED|14 UNAVAILABLE/);
    await expect(readFile(join(ws.dir, 'out'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('misuse is exit 2 naming the flag, before anything is read', async () => {
    const ws = await localWorkspace({ 'gcp-kms': GCP });
    await sealedForSendersProject(ws.dir);
    for (const project of ['My_Project', 'abc', '', ' mine']) {
      const r = await decrypt(ws.dir, '--trust-configured', '--discovery-project', project);
      expect(r.code, `${JSON.stringify(project)}: ${r.stderr}`).toBe(2);
      expect(jsonError(r.stderr).message).toContain('--discovery-project');
    }
    const alone = await decrypt(ws.dir, '--discovery-project', 'my-project-1');
    expect(alone.code).toBe(2);
    expect(jsonError(alone.stderr).message).toContain('narrow --trust-configured');
    const noGcp = await localWorkspace();
    await sealedForSendersProject(noGcp.dir);
    const none = await decrypt(noGcp.dir, '--trust-configured', '--discovery-project', 'my-project-1');
    expect(none.code).toBe(2);
    expect(jsonError(none.stderr).message).toContain('no gcp-kms provider is configured');
  });
});
