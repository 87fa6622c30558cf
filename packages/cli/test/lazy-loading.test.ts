/**
 * Providers are loaded on first use: `keyport --help` and an encrypt with the local provider
 * load no cloud SDK, no other adapter and no native module (every module the bin resolves is
 * traced), and both work when pkcs11js cannot be loaded at all. Both ways the bin runs: from
 * source (as the other tests run it) and the bundle `pnpm build` makes (dist/bin/, as installed),
 * which is built here first with the package's own rolldown config.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, HOOKS, localWorkspace, PASSPHRASE, runCli } from './support/cli.js';

const TRACE = fileURLToPath(new URL('./support/trace.mjs', import.meta.url));
const CLI_ROOT = fileURLToPath(new URL('..', import.meta.url));
const HEAVY = [
  /@aws-sdk\//,
  /@azure\//,
  /@google-cloud\//,
  /google-auth-library/,
  /@grpc\//,
  /node-vault/,
  /pkcs11js/,
  /\/adapters\/(aws-kms|azure-keyvault|gcp-kms|vault-transit|pkcs11)\//,
  /@keyport\/(aws-kms|azure-keyvault|gcp-kms|vault-transit|pkcs11|byok)\b/,
  /\/packages\/byok\//,
  // The bundle's chunks of the other adapters (and byok).
  /\/dist\/bin\/adapter-(?!local-)/,
];

/** How the bin runs: from source with the TypeScript hooks, or the built bundle. */
type Mode = 'source' | 'bundle';

function traced(
  mode: Mode,
  cwd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string; modules: string[] }> {
  const file = join(cwd, `trace-${Date.now()}-${Math.random().toString(36).slice(2)}.txt`);
  const node = mode === 'source' ? ['--import', HOOKS, '--import', TRACE] : ['--import', TRACE];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...node, BIN, ...args], {
      cwd,
      env: {
        PATH: process.env.PATH,
        ...(mode === 'source'
          ? { KEYPORT_CLI_FROM_SOURCE: '1' }
          : { NODE_COMPILE_CACHE: join(cwd, 'compile-cache') }),
        KEYPORT_LOCAL_PASSPHRASE: PASSPHRASE,
        KEYPORT_TRACE_FILE: file,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.once('error', reject);
    child.once('close', async (code) => {
      const modules = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
      resolve({
        code,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        modules,
      });
    });
  });
}

const heavy = (modules: string[]): string[] => modules.filter((m) => HEAVY.some((re) => re.test(m)));

let ws: Awaited<ReturnType<typeof localWorkspace>>;

beforeAll(async () => {
  // Every provider configured: configuring one must not load it.
  ws = await localWorkspace({
    'aws-kms': { region: 'us-east-1' },
    hcvault: { address: 'http://127.0.0.1:8200' },
    pkcs11: { module: '/usr/lib/softhsm/libsofthsm2.so', token: 'keyport' },
    'gcp-kms': { keyRing: 'projects/p/locations/global/keyRings/r' },
    azurekeyvault: { vaultUrl: 'https://example.vault.azure.net' },
  });
  expect((await runCli(['keys', 'create', ws.uri('k')], { cwd: ws.dir })).code).toBe(0);
  await writeFile(join(ws.dir, 'kib'), Buffer.alloc(1024, 1));
  // The bundle, as `pnpm build` makes it (from the workspace packages' sources: no build of them).
  const rolldown = join(CLI_ROOT, 'node_modules/rolldown/bin/cli.mjs');
  execFileSync(process.execPath, [rolldown, '--config', 'rolldown.config.mjs'], {
    cwd: CLI_ROOT,
    stdio: 'pipe',
  });
}, 120_000);

describe.each(['source', 'bundle'] as const)('lazy loading (bin from %s)', (mode) => {
  it('--help loads no cloud SDK, adapter or native module', async () => {
    const r = await traced(mode, ws.dir, ['--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Usage: keyport/);
    if (mode === 'bundle') {
      expect(r.modules.some((m) => m.endsWith('/packages/cli/dist/bin/keyport.mjs'))).toBe(true);
      expect(r.modules.filter((m) => /\/(packages|adapters)\/[a-z0-9-]+\/src\//.test(m))).toEqual([]);
    }
    expect(r.modules.length).toBeGreaterThan(10);
    expect(heavy(r.modules)).toEqual([]);
  });

  it('a local-provider encrypt loads none either (nor the progress bar or YAML parser)', async () => {
    const r = await traced(mode, ws.dir, ['encrypt', 'kib', '-o', `kib-${mode}.enc`, '-r', ws.uri('k')]);
    expect(r.code, r.stderr).toBe(0);
    const local = mode === 'source' ? '/adapters/local/' : '/dist/bin/adapter-local-';
    expect(r.modules.some((m) => m.includes(local))).toBe(true);
    expect(heavy(r.modules)).toEqual([]);
    expect(r.modules.filter((m) => /cli-progress|\/yaml\//.test(m))).toEqual([]);
  });

  it('policy check (every report format) and keys inventory run: the policy chunk finds its libraries and schema', async () => {
    // The bundle's policy chunk imports ajv and vega from the CLI's own dependencies, and reads
    // the policy schema through @keyport/policy's exports: a path beside the module was looked
    // for beside the bundle, and vega could not be resolved at all (exit 1, "Internal").
    await writeFile(
      join(ws.dir, 'policy.yaml'),
      'version: 1\nrules:\n  - { id: owner, type: owner-label, severity: low }\n',
    );
    for (const format of ['table', 'json', 'sarif', 'html']) {
      const r = await traced(mode, ws.dir, [
        'policy',
        'check',
        '--policy',
        'policy.yaml',
        '-p',
        'local',
        '--format',
        format,
        '-o',
        `report-${mode}.${format}`,
      ]);
      // k has no owner label: one low finding, so exit 1 (a finding, not a failure of the tool).
      expect([r.code, r.stderr]).toEqual([1, expect.stringContaining(`wrote report-${mode}.${format}`)]);
    }
    expect(await readFile(join(ws.dir, `report-${mode}.html`), 'utf8')).toContain('<svg');
    const inventory = await traced(mode, ws.dir, ['keys', 'inventory', '-p', 'local']);
    expect(inventory.code, inventory.stderr).toBe(0);
    expect(inventory.stdout).toContain(ws.uri('k'));
  });

  it('works when pkcs11js cannot be loaded; only a PKCS#11 command fails, naming the adapter', async () => {
    const broken = { KEYPORT_TRACE_BREAK: 'pkcs11js' };
    const help = await traced(mode, ws.dir, ['--help'], broken);
    expect(help.code, help.stderr).toBe(0);
    const enc = await traced(
      mode,
      ws.dir,
      ['encrypt', 'kib', '-o', `kib2-${mode}.enc`, '-r', ws.uri('k')],
      broken,
    );
    expect(enc.code, enc.stderr).toBe(0);
    const hsm = await traced(mode, ws.dir, ['--json', 'keys', 'list', 'pkcs11'], {
      ...broken,
      KEYPORT_PKCS11_PIN: '1234',
    });
    expect(hsm.code).toBe(5);
    expect(JSON.parse(hsm.stderr).error.message).toMatch(/@keyport\/pkcs11 failed to import/);
  });
});
