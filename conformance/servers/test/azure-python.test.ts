import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { ADMIN, CRYPTO_ONLY, PRINCIPALS, READER } from './azure-helpers.js';
import { run } from './run-child.js';

// The second, independent client: Microsoft's Python SDK, from the harness's venv (the harness
// exports KEYPORT_PYTHON when it has brought the azure-keyvault target up).
const PYTHON = process.env.KEYPORT_PYTHON ?? join(homedir(), '.cache', 'keyport', 'venv', 'bin', 'python');
const SCENARIO = join(import.meta.dirname, '..', 'python', 'azure_scenario.py');

let vault: AzureKeyVaultServer;
let hsm: AzureKeyVaultServer;
let dir: string;
beforeAll(async () => {
  [vault, hsm] = await Promise.all([
    startAzureKeyVaultServer({ principals: PRINCIPALS }),
    startAzureKeyVaultServer({ mode: 'hsm', principals: PRINCIPALS }),
  ]);
  dir = await mkdtemp(join(tmpdir(), 'keyport-azure-py-'));
});
afterAll(async () => {
  await Promise.all([vault?.stop(), hsm?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('azure-keyvault-keys (Python) against the test server', () => {
  it('creates keys, round-trips every operation and sees the negative cases', async () => {
    if (!existsSync(PYTHON)) {
      throw new Error(
        `target azure-keyvault is not running: run "pnpm emulators up azure-keyvault" (it installs azure-keyvault-keys into ${PYTHON})`,
      );
    }
    const bundle = join(dir, 'ca-bundle.pem');
    await writeFile(bundle, Buffer.concat([await readFile(vault.caFile), await readFile(hsm.caFile)]));
    const result = await run(PYTHON, [SCENARIO], {
      PATH: process.env.PATH ?? '',
      HOME: homedir(),
      REQUESTS_CA_BUNDLE: bundle,
      SSL_CERT_FILE: bundle,
      KEYPORT_AZUREKV_URL: vault.url,
      KEYPORT_AZUREKV_HSM_URL: hsm.url,
      KEYPORT_AZUREKV_TOKEN_ADMIN: ADMIN,
      KEYPORT_AZUREKV_TOKEN_CRYPTO: CRYPTO_ONLY,
      KEYPORT_AZUREKV_TOKEN_READER: READER,
    });
    expect(result.stderr, result.stdout).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/azure scenario: (\d+) of \1 checks matched/);
    // The newest client (pinned in conformance/bin/lib/versions.mjs) sends its own default.
    expect(result.stdout).toContain('api-version sent by azure-keyvault-keys: 2026-01-01-preview');
  }, 60_000);
});
