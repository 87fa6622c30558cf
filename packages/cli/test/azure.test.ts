/**
 * The CLI's Azure Key Vault provider against keyport's Key Vault test server (HTTPS, its own CA
 * trusted through the config's caFile): create a key, migrate envelope files from a local key
 * to it, and open them with the vault key alone.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openEnvelope } from '@keyport/envelope';
import {
  type AzureKeyVaultServer,
  DEFAULT_AZURE_TOKEN,
  startAzureKeyVaultServer,
} from '@keyport/test-servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localWorkspace, runCli } from './support/cli.js';
import { localKeys, sealFiles, sha256 } from './support/seal.js';

let server: AzureKeyVaultServer;

beforeAll(async () => {
  server = await startAzureKeyVaultServer();
});
afterAll(() => server?.stop());

describe('azurekeyvault provider', () => {
  it('migrates envelopes from a local key to a Key Vault key (test server), verified', async () => {
    const ws = await localWorkspace({
      azurekeyvault: {
        vaultUrl: server.url,
        caFile: server.caFile,
        accessTokenEnv: 'AZURE_TEST_TOKEN',
        disableChallengeResourceVerification: true,
      },
    });
    const env = { AZURE_TEST_TOKEN: DEFAULT_AZURE_TOKEN };
    const cwd = ws.dir;
    const created = await runCli(
      ['--json', 'keys', 'create', 'kek', '--provider', 'azurekeyvault', '--spec', 'RSA_2048'],
      {
        cwd,
        env,
      },
    );
    expect(created.code, created.stderr).toBe(0);
    const vaultUri = JSON.parse(created.stdout).uri as string;
    expect(vaultUri).toMatch(/^azurekeyvault:\/\/127\.0\.0\.1:\d+\/keys\/kek/);
    expect((await runCli(['keys', 'create', ws.uri('a')], { cwd })).code).toBe(0);
    const keys = await localKeys(ws.keystore);
    const digests = await sealFiles(keys, ws.uri('a'), join(cwd, 'data'), 10);

    const r = await runCli(
      ['--json', 'migrate', '--from', ws.uri('a'), '--to', vaultUri, '--remove-source', 'data'],
      { cwd, env },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ total: 10, migrated: 10, failed: 0 });

    const [file, digest] = [...digests][0] as [string, string];
    const dec = await runCli(['decrypt', file, '-k', vaultUri], { cwd, env });
    expect(dec.code, dec.stderr).toBe(0);
    expect(sha256(dec.stdoutBytes)).toBe(digest);
    // The local key no longer opens it: the source recipient is gone.
    await expect(openEnvelope(await readFile(file), { trust: [ws.uri('a')], keys })).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
    await keys.close();

    // A wrong token is an authentication failure, not Internal.
    await writeFile(join(cwd, 'p'), 'x');
    const denied = await runCli(['--json', 'encrypt', 'p', '-o', 'p.enc', '-r', vaultUri], {
      cwd,
      env: { AZURE_TEST_TOKEN: 'not-the-token' },
    });
    expect(denied.code).toBe(4);
    expect(JSON.parse(denied.stderr.trimEnd().split('\n').at(-1) as string).error.code).toBe('AccessDenied');
  });
});
