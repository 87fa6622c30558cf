import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { algorithmSpec, pqcUnavailable } from '../src/gcp/algorithms.js';
import { type CloudKmsServer, startCloudKmsServer } from '../src/gcp/index.js';
import { sampleEnv, samplePython } from './python-samples.js';

// The second, independent client: Google's Python SDK (google-cloud-kms from PyPI, installed by
// the harness into its venv) runs the same scenarios against this server. A missing
// interpreter is a failure naming what is missing, never a skip.
const python = process.env.KEYPORT_PYTHON ?? join(homedir(), '.cache', 'keyport', 'venv', 'bin', 'python');
const scenario = fileURLToPath(new URL('../python/gcp_scenario.py', import.meta.url));
const PQC =
  algorithmSpec('ML_KEM_768') !== undefined && pqcUnavailable(algorithmSpec('ML_KEM_768')!) === undefined;

function run(address: string, restUrl: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    // Post-quantum checks run where the server (this Node) offers ML-KEM and ML-DSA.
    // google-crc32c comes from test/python-samples.ts (PYTHONPATH), not from the harness's venv.
    const env = { ...process.env, PYTHONPATH: sampleEnv().PYTHONPATH, KEYPORT_PQC: PQC ? '1' : '0' };
    const child = spawn(python, [scenario, address, restUrl], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('Cloud KMS server: Python SDK second opinion', () => {
  let server: CloudKmsServer;
  beforeAll(async () => {
    server = await startCloudKmsServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('passes the google-cloud-kms scenario', async () => {
    expect(
      existsSync(python),
      `Python with google-cloud-kms is missing at ${python}: run "pnpm emulators up gcp-kms" (installs google-cloud-kms==3.18.0 into ~/.cache/keyport/venv)`,
    ).toBe(true);
    await samplePython('gcp-kms', 'google-cloud-kms');
    const { code, output } = await run(server.address, server.restUrl!);
    expect(output, output).toContain('gcp scenario: all checks passed');
    expect(code, output).toBe(0);
  }, 60_000);
});
