/**
 * Two Vault clusters in one CLI config: `hcvault` on the harness's `openbao` server and
 * `hcvault+dr` on `openbao-dr`, each with its own token. One `keyport migrate` run moves every
 * envelope from a key of the first cluster to a key of the second; afterwards the second cluster
 * alone opens each file, byte for byte, and the first cluster's key opens none.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createKeyport } from '@keyport/core';
import { openEnvelope, sealEnvelope } from '@keyport/envelope';
import { VaultTransitProvider } from '@keyport/vault-transit';
import { describe, expect, it } from 'vitest';
import { localWorkspace, requireEmulator, runCli } from './support/cli.js';
import { sealFiles, sha256 } from './support/seal.js';

describe('two OpenBao clusters as named instances in one CLI config', () => {
  it('keyport migrate moves envelopes from hcvault (openbao) to hcvault+dr (openbao-dr) in one run', async () => {
    const east = requireEmulator('openbao');
    const west = requireEmulator('openbao-dr');
    const ws = await localWorkspace({
      hcvault: { address: east.KEYPORT_OPENBAO_ADDR, flavor: 'openbao', tokenEnv: 'EAST_BAO_TOKEN' },
      'hcvault+dr': { address: west.KEYPORT_OPENBAO_DR_ADDR, flavor: 'openbao', tokenEnv: 'WEST_BAO_TOKEN' },
    });
    const env = { EAST_BAO_TOKEN: east.KEYPORT_OPENBAO_TOKEN, WEST_BAO_TOKEN: west.KEYPORT_OPENBAO_DR_TOKEN };
    const eastProvider = () =>
      new VaultTransitProvider({
        endpoint: east.KEYPORT_OPENBAO_ADDR,
        auth: east.KEYPORT_OPENBAO_TOKEN,
        flavor: 'openbao',
      });
    const westProvider = () =>
      new VaultTransitProvider({
        endpoint: west.KEYPORT_OPENBAO_DR_ADDR,
        auth: west.KEYPORT_OPENBAO_DR_TOKEN,
        flavor: 'openbao',
      });
    const both = createKeyport({ providers: { hcvault: eastProvider(), dr: westProvider() } });
    const name = `cli-two-clusters-${Date.now().toString(36)}`;
    const fromUri = (await both.createKey('hcvault', { name, spec: 'AES_256' })).uri;
    const toUri = (await both.createKey('dr', { name, spec: 'AES_256' })).uri;
    expect(fromUri).toMatch(/^hcvault:\/\//);
    expect(toUri).toMatch(/^hcvault\+dr:\/\//);
    // The same key name on both clusters: only the instance (and its server) tells them apart.
    expect(new URL(toUri.replace('hcvault+dr://', 'http://')).host).toBe(
      new URL(west.KEYPORT_OPENBAO_DR_ADDR).host,
    );

    const data = join(ws.dir, 'data');
    const digests = await sealFiles(both, fromUri, data, 24);
    // One message of many frames: the body is carried over, not only the header.
    const big = randomBytes(600 * 1024);
    const bigFile = join(data, 'big.enc');
    await writeFile(
      bigFile,
      await sealEnvelope(big, {
        recipients: [fromUri],
        keys: both,
        context: { file: 'big' },
        frameLength: 4096,
      }),
    );
    digests.set(bigFile, sha256(big));

    const r = await runCli(
      ['--json', 'migrate', '--from', fromUri, '--to', toUri, '--remove-source', 'data'],
      {
        cwd: ws.dir,
        env,
      },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ total: 25, migrated: 25, failed: 0, skipped: 0 });
    // The named instance's provider is found through the registry: Vault's batch API carries the wraps.
    expect(summary.calls.byOperation['to:encryptBatch']).toBeGreaterThan(0);

    // Nothing is lost: the same files (no temp left), each opened by the second cluster alone.
    const left = [
      ...(await readdir(join(data, 'even'))).map((f) => join(data, 'even', f)),
      ...(await readdir(join(data, 'odd'))).map((f) => join(data, 'odd', f)),
      bigFile,
    ].sort();
    expect(left).toEqual([...digests.keys()].sort());
    const westOnly = createKeyport({ providers: { dr: westProvider() } });
    const eastOnly = createKeyport({ providers: { hcvault: eastProvider() } });
    for (const [file, digest] of digests) {
      const bytes = await readFile(file);
      const opened = await openEnvelope(bytes, { trust: [toUri], keys: westOnly });
      expect(sha256(opened.plaintext)).toBe(digest);
      expect(Buffer.from(bytes).toString('latin1')).not.toContain(fromUri);
      await expect(openEnvelope(bytes, { trust: [fromUri], keys: eastOnly })).rejects.toMatchObject({
        code: 'InvalidCiphertext',
      });
    }

    // A second run finds every file done and touches none.
    const again = await runCli(
      ['--json', 'migrate', '--from', fromUri, '--to', toUri, '--remove-source', 'data'],
      {
        cwd: ws.dir,
        env,
      },
    );
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ total: 25, migrated: 0, alreadyDone: 25, failed: 0 });

    // And through the CLI, by the instance's URI.
    const dec = await runCli(['decrypt', 'data/big.enc', '-k', toUri, '-o', 'plain'], { cwd: ws.dir, env });
    expect(dec.code, dec.stderr).toBe(0);
    expect(sha256(await readFile(join(ws.dir, 'plain')))).toBe(sha256(big));
    await Promise.all([both.close(), westOnly.close(), eastOnly.close()]);
  });
});
