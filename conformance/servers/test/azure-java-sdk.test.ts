import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { ADMIN, keyClient, PRINCIPALS } from './azure-helpers.js';
import { builtJavaChecks, type JavaCheckReport, javaCheckReports, javaTrustStore } from './java-checks.js';
import { type Run, run } from './run-child.js';

// The Key Vault test server through the Azure SDK for Java: azure-security-keyvault-keys 4.11.1
// and azure-identity 1.18.4 (from azure-sdk-bom 1.3.8, fixtures/azure-keyvault-keys-java/pom.xml),
// driven by keyport's own KeyportAzureJavaCheck.java there (see SOURCE.md there). What is supplied,
// by environment only, as a user of the SDK would:
// - AZURE_KEYVAULT_URL: the server's URL;
// - IDENTITY_ENDPOINT / IDENTITY_HEADER: the server's managed-identity endpoint, so
//   DefaultAzureCredential (azure-identity, through MSAL for Java) gets its token there;
// - JAVA_TOOL_OPTIONS: a truststore holding only the server's CA (javax.net.ssl.trustStore…), which
//   the SDK's Netty client and MSAL both use;
// - HOME: an empty folder, so no Azure CLI or IDE login of the machine running the test is used.
// build-java-checks.mjs resolves the pom with Maven and compiles the check into the harness cache
// (by content hash; the harness builds it when it installs azure-keyvault), so this starts a JVM.
const FOLDER = 'azure-keyvault-keys-java';

/** The steps in the order the check runs them, each finding what the ones before made. */
const STEPS = [
  'createRsaKey',
  'createEcKey',
  'getKey',
  'updateKeyProperties',
  'createRsaKeyVersion',
  'listPropertiesOfKeys',
  'listPropertiesOfKeyVersions',
  'encryptDecrypt',
  'signVerify',
  'wrapUnwrap',
  'rotationPolicy',
  'rotateKey',
  'backupKey',
  'deleteAndPurge',
  'restoreKeyBackup',
  'deleteAndRecover',
  'asyncClient',
];

let server: AzureKeyVaultServer;
let work: string;
let checkRun: Run;
let byName: Map<string, JavaCheckReport>;

beforeAll(async () => {
  const { classpath, buildMs } = await builtJavaChecks(FOLDER);
  if (buildMs > 0) console.log(`built the Java check in ${buildMs} ms`);
  work = mkdtempSync(join(tmpdir(), 'keyport-java-check-'));
  const home = join(work, 'home');
  mkdirSync(home);
  server = await startAzureKeyVaultServer({ principals: PRINCIPALS, identityToken: ADMIN });
  const trust = await javaTrustStore(server.caFile, join(work, 'truststore.p12'));
  checkRun = await run(
    'java',
    ['-cp', classpath, 'KeyportAzureJavaCheck'],
    {
      PATH: process.env.PATH ?? '',
      HOME: home,
      AZURE_KEYVAULT_URL: server.url,
      IDENTITY_ENDPOINT: server.identity.endpoint,
      IDENTITY_HEADER: server.identity.header,
      JAVA_TOOL_OPTIONS: trust,
    },
    work,
  );
  byName = javaCheckReports(checkRun.stdout);
}, 10 * 60_000);

afterAll(async () => {
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the Azure SDK for Java (azure-security-keyvault-keys 4.11.1, azure-identity 1.18.4)', () => {
  it('the check ran cleanly', () => {
    expect(checkRun.code, `${checkRun.stdout.slice(-4000)}\n${checkRun.stderr.slice(-4000)}`).toBe(0);
    expect(checkRun.stdout.trimEnd().split('\n').at(-1)).toBe('keyport-java-check PASS');
    expect([...byName.keys()]).toEqual(STEPS);
  });

  it.each(STEPS)('%s passes', (name) => {
    expect(byName.get(name)?.result).toBe('PASS');
  });

  it('each step sent the operations it shows', () => {
    // Key versions as <v>: each run makes new ones.
    const calls = Object.fromEntries(
      STEPS.map((n) => [n, byName.get(n)?.calls.map((c) => c.replace(/\/[0-9a-f]{32}/g, '/<v>'))]),
    );
    expect(calls).toMatchInlineSnapshot(`
      {
        "asyncClient": [
          "POST /keys/java-async-key/create -> 200",
          "GET /keys -> 200",
          "DELETE /keys/java-async-key -> 200",
          "GET /deletedkeys/java-async-key -> 200",
          "DELETE /deletedkeys/java-async-key -> 204",
        ],
        "backupKey": [
          "POST /keys/java-rsa-key/backup -> 200",
        ],
        "createEcKey": [
          "POST /keys/java-ec-key/create -> 200",
        ],
        "createRsaKey": [
          "POST /keys/java-rsa-key/create -> 401",
          "POST /keys/java-rsa-key/create -> 200",
        ],
        "createRsaKeyVersion": [
          "POST /keys/java-rsa-key/create -> 200",
        ],
        "deleteAndPurge": [
          "DELETE /keys/java-rsa-key -> 200",
          "GET /deletedkeys/java-rsa-key -> 200",
          "GET /deletedkeys/java-rsa-key -> 200",
          "DELETE /deletedkeys/java-rsa-key -> 204",
        ],
        "deleteAndRecover": [
          "DELETE /keys/java-ec-key -> 200",
          "GET /deletedkeys/java-ec-key -> 200",
          "GET /deletedkeys -> 200",
          "POST /deletedkeys/java-ec-key/recover -> 200",
          "GET /keys/java-ec-key/ -> 200",
          "GET /keys/java-ec-key/ -> 200",
        ],
        "encryptDecrypt": [
          "GET /keys/java-rsa-key/<v> -> 200",
          "POST /keys/java-rsa-key/<v>/encrypt -> 200",
          "POST /keys/java-rsa-key/<v>/decrypt -> 200",
        ],
        "getKey": [
          "GET /keys/java-rsa-key/ -> 200",
          "GET /keys/java-ec-key/<v> -> 200",
        ],
        "listPropertiesOfKeyVersions": [
          "GET /keys/java-rsa-key/versions -> 200",
        ],
        "listPropertiesOfKeys": [
          "GET /keys -> 200",
        ],
        "restoreKeyBackup": [
          "POST /keys/restore -> 200",
          "GET /keys/java-rsa-key/versions -> 200",
        ],
        "rotateKey": [
          "POST /keys/java-rsa-key/rotate -> 200",
          "GET /keys/java-rsa-key/ -> 200",
        ],
        "rotationPolicy": [
          "PUT /keys/java-rsa-key/rotationpolicy -> 200",
          "GET /keys/java-rsa-key/rotationpolicy -> 200",
        ],
        "signVerify": [
          "GET /keys/java-ec-key/<v> -> 200",
          "POST /keys/java-ec-key/<v>/sign -> 200",
          "GET /keys/java-rsa-key/ -> 200",
          "POST /keys/java-rsa-key//sign -> 200",
          "POST /keys/java-rsa-key//verify -> 200",
        ],
        "updateKeyProperties": [
          "GET /keys/java-ec-key/ -> 200",
          "PATCH /keys/java-ec-key/<v> -> 200",
          "GET /keys/java-ec-key/ -> 200",
        ],
        "wrapUnwrap": [
          "GET /keys/java-rsa-key/<v> -> 200",
          "POST /keys/java-rsa-key/<v>/unwrapkey -> 200",
        ],
      }
    `);
  });

  it('the check left the vault with its two keys, none deleted', async () => {
    const client = keyClient(server, ADMIN);
    const left: string[] = [];
    for await (const k of client.listPropertiesOfKeys()) left.push(k.name);
    for await (const k of client.listDeletedKeys()) left.push(`deleted ${k.name}`);
    expect(left.sort()).toEqual(['java-ec-key', 'java-rsa-key']);
  });
});
