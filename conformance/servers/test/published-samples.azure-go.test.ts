import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { ADMIN, keyClient, PRINCIPALS } from './azure-helpers.js';
import { builtGoSamples } from './go-samples.js';
import { type Run, run } from './run-child.js';

// Microsoft's Go examples for Key Vault keys (example_test.go of
// github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys v1.6.0, from the module zip on
// the Go proxy, vendored unchanged under fixtures/azure-keyvault-keys-go-examples, MIT: see
// SOURCE.md there), run through the real azkeys client and azidentity (pinned by go.mod/go.sum
// there) against the Key Vault test server. The examples use the package-level `client`, which
// the driver (keyport_driver_test.go, same package, ours) sets, and ignore every error; so the
// driver records each operation the examples' client sends (any failure fails the example), and
// checks what each prints and the vault's state afterwards. Supplied by environment, as for
// Microsoft's Python samples (published-samples.azure-python.test.ts):
// - AZURE_KEYVAULT_URL: the server's URL, for the driver's client;
// - IDENTITY_ENDPOINT / IDENTITY_HEADER: the server's managed-identity endpoint, so
//   azidentity.NewDefaultAzureCredential gets its token there (the token has every permission:
//   nothing else hands it out);
// - SSL_CERT_FILE: the server's CA, the only root Go trusts in the child;
// - HOME: an empty folder, so no Azure CLI login of the machine running the test is picked up.
// `go test -c` builds the examples with the driver into one binary (build-go-samples.mjs, cached
// by the hash of the module's files; the harness builds it when it installs azure-keyvault).
const EXAMPLES = join(import.meta.dirname, 'fixtures', 'azure-keyvault-keys-go-examples');

/**
 * The examples the server cannot model, not run (SOURCE.md gives the reasons): an external key
 * (key material held by an external HSM the vault is linked to) and secure wrap/unwrap (needs a
 * TEE attested by Microsoft Azure Attestation and key release, which the server does not offer).
 */
const EXCLUDED = [
  'ExampleClient_CreateKey_externalKey',
  'ExampleClient_SecureUnwrapKey',
  'ExampleClient_SecureWrapKey',
];

/** The order the driver calls the others in, each finding what the one before made. */
const RUN = [
  'ExampleNewClient',
  'ExampleClient_CreateKey_rsa',
  'ExampleClient_CreateKey_ec',
  'ExampleClient_GetKey',
  'ExampleClient_UpdateKey',
  'ExampleClient_UpdateKeyRotationPolicy',
  'ExampleClient_NewListKeyPropertiesPager',
  'ExampleClient_DeleteKey',
  'ExampleClient_PurgeDeletedKey',
];

/** Every Example function in Microsoft's file. */
const EXAMPLE_FUNCTIONS = [
  ...readFileSync(join(EXAMPLES, 'example_test.go'), 'utf8').matchAll(/^func (Example\w*)\(\) \{$/gm),
].map((m) => m[1]!);

interface Report {
  name: string;
  result: string;
  output: string;
  calls: string[];
}

/** The driver's line per example. */
function reports(stdout: string): Map<string, Report> {
  const out = new Map<string, Report>();
  for (const m of stdout.matchAll(/^keyport-go-example (\{.*\})$/gm)) {
    const r = JSON.parse(m[1]!) as Report;
    out.set(r.name, r);
  }
  return out;
}

let server: AzureKeyVaultServer;
let work: string;
let driverRun: Run;
let byName: Map<string, Report>;

beforeAll(async () => {
  const { driver, buildMs } = await builtGoSamples('azure-keyvault-keys-go-examples');
  if (buildMs > 0) console.log(`built the Go examples in ${buildMs} ms`);
  work = mkdtempSync(join(tmpdir(), 'keyport-go-examples-'));
  const home = join(work, 'home');
  mkdirSync(home);
  server = await startAzureKeyVaultServer({ principals: PRINCIPALS, identityToken: ADMIN });
  driverRun = await run(
    driver,
    ['-test.run', '^TestExamples$', '-test.v'],
    {
      PATH: process.env.PATH ?? '',
      HOME: home,
      AZURE_KEYVAULT_URL: server.url,
      IDENTITY_ENDPOINT: server.identity.endpoint,
      IDENTITY_HEADER: server.identity.header,
      SSL_CERT_FILE: server.caFile,
    },
    work,
  );
  byName = reports(driverRun.stdout);
}, 10 * 60_000);

afterAll(async () => {
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const VERSION = '[0-9a-f]{32}';

describe("Microsoft's azkeys Go examples (v1.6.0 example_test.go), unedited", () => {
  it('the driver ran cleanly', () => {
    expect(driverRun.code, `${driverRun.stdout.slice(-4000)}\n${driverRun.stderr}`).toBe(0);
    expect(driverRun.stdout.trimEnd().split('\n').at(-1)).toBe('PASS');
  });

  it('covers every example: run, or excluded in SOURCE.md', () => {
    expect(EXAMPLE_FUNCTIONS).toHaveLength(12);
    expect([...RUN, ...EXCLUDED].sort()).toEqual([...EXAMPLE_FUNCTIONS].sort());
    expect([...byName.keys()]).toEqual(RUN);
    const source = readFileSync(join(EXAMPLES, 'SOURCE.md'), 'utf8');
    for (const name of EXCLUDED) expect(source).toContain(`\`${name}\``);
  });

  it.each(RUN)('%s passes', (name) => {
    expect(byName.get(name)?.result).toBe('PASS');
  });

  it('each example sent the operations it shows, and printed what the service would answer', () => {
    const url = server.url.replace(/[.]/g, '\\.');
    const calls = Object.fromEntries(RUN.map((n) => [n, byName.get(n)?.calls]));
    expect(calls).toEqual({
      ExampleNewClient: [],
      ExampleClient_CreateKey_rsa: ['POST /keys/key-name/create -> 200'],
      ExampleClient_CreateKey_ec: ['POST /keys/key-name/create -> 200'],
      ExampleClient_GetKey: ['GET /keys/key-name/ -> 200'],
      ExampleClient_UpdateKey: ['PATCH /keys/key-name/ -> 200'],
      ExampleClient_UpdateKeyRotationPolicy: ['PUT /keys/key-name/rotationpolicy -> 200'],
      ExampleClient_NewListKeyPropertiesPager: ['GET /keys -> 200'],
      ExampleClient_DeleteKey: ['DELETE /keys/key-name -> 200'],
      ExampleClient_PurgeDeletedKey: ['GET /deletedkeys -> 200', 'DELETE /deletedkeys/key-name -> 204'],
    });
    const output = (n: string) => byName.get(n)?.output;
    expect(output('ExampleClient_CreateKey_rsa')).toMatch(new RegExp(`^${url}/keys/key-name/${VERSION}\n$`));
    expect(output('ExampleClient_CreateKey_ec')).toMatch(new RegExp(`^${url}/keys/key-name/${VERSION}\n$`));
    expect(output('ExampleClient_GetKey')).toBe(output('ExampleClient_CreateKey_ec'));
    expect(output('ExampleClient_UpdateKey')).toBe(`Enabled key ${output('ExampleClient_GetKey')?.trim()}`);
    expect(output('ExampleClient_UpdateKeyRotationPolicy')).toMatch(
      /^Updated key rotation policy at: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+$/,
    );
    expect(output('ExampleClient_NewListKeyPropertiesPager')).toBe(`${server.url}/keys/key-name\n`);
    expect(output('ExampleClient_DeleteKey')).toMatch(
      /^Key will be purged at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+$/,
    );
  });

  it('the examples left the vault empty: the key deleted, then purged', async () => {
    const client = keyClient(server, ADMIN);
    const left: string[] = [];
    for await (const k of client.listPropertiesOfKeys()) left.push(k.name);
    for await (const k of client.listDeletedKeys()) left.push(`deleted ${k.name}`);
    expect(left).toEqual([]);
  });
});
