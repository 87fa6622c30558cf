import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CloudKmsServer, startCloudKmsServer } from '../src/gcp/index.js';
import {
  type ConnectProxy,
  connectProxy,
  SERVICE,
  serviceAccountFile,
  serviceCertificate,
} from './gcp-service-env.js';
import { builtJavaChecks, type JavaCheckReport, javaCheckReports, javaTrustStore } from './java-checks.js';
import { type Run, run } from './run-child.js';

// The Cloud KMS test server through Google's Cloud KMS client for Java: google-cloud-kms 2.105.0
// (gax 2.90.0, grpc-java 1.83.0, google-auth-library 1.57.0; from libraries-bom 26.93.0,
// fixtures/gcp-kms-java/pom.xml), driven by keyport's own KeyportGcpJavaCheck.java there (see
// SOURCE.md there). The program builds its client as `KeyManagementServiceClient.create()`, no
// settings, so it dials cloudkms.googleapis.com:443 over gRPC; it reaches the server by
// environment only, as the Go samples do (published-samples.gcp-go.test.ts):
// - JAVA_TOOL_OPTIONS: the JVM's proxy properties (https.proxyHost/https.proxyPort: grpc-java
//   tunnels through an HTTP CONNECT proxy that splices that one target to the server's port) and a
//   truststore holding only the certificate the server presents (for DNS:cloudkms.googleapis.com);
// - GOOGLE_APPLICATION_CREDENTIALS: a service account key made here (the client signs its own JWT,
//   no token endpoint is called); GOOGLE_CLOUD_PROJECT: the project the program works in;
// - HOME: an empty folder, so no gcloud configuration of the machine running the test is used.
// build-java-checks.mjs resolves the pom with Maven and compiles the program into the harness
// cache (by content hash; the harness builds it when it installs gcp-kms), so this starts a JVM.
const FOLDER = 'gcp-kms-java';
const PROJECT = 'keyport-java-check';

/** The steps in the order the program runs them, each finding what the ones before made. */
const STEPS = [
  'createKeyRing',
  'createSymmetricKey',
  'getAndListKeys',
  'encryptDecrypt',
  'createVersion',
  'updatePrimary',
  'asymmetricSign',
  'asymmetricDecrypt',
  'macSignVerify',
  'destroyRestore',
  'iamPolicy',
  'notFound',
];

let server: CloudKmsServer;
let proxy: ConnectProxy;
let work: string;
let checkRun: Run;
let byName: Map<string, JavaCheckReport>;

beforeAll(async () => {
  const { classpath, buildMs } = await builtJavaChecks(FOLDER);
  if (buildMs > 0) console.log(`built the Java check in ${buildMs} ms`);
  work = mkdtempSync(join(tmpdir(), 'keyport-gcp-java-check-'));
  const home = join(work, 'home');
  mkdirSync(home);
  const tls = await serviceCertificate(work);
  server = await startCloudKmsServer({ tls, rest: false });
  proxy = await connectProxy(server.port);
  const trust = await javaTrustStore(tls.certFile, join(work, 'truststore.p12'));
  checkRun = await run(
    'java',
    ['-cp', classpath, 'KeyportGcpJavaCheck'],
    {
      PATH: process.env.PATH ?? '',
      HOME: home,
      GOOGLE_APPLICATION_CREDENTIALS: serviceAccountFile(work, PROJECT, 'check'),
      GOOGLE_CLOUD_PROJECT: PROJECT,
      JAVA_TOOL_OPTIONS: `${trust} -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=${proxy.port}`,
    },
    work,
  );
  byName = javaCheckReports(checkRun.stdout);
}, 10 * 60_000);

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("Google's Cloud KMS client for Java (google-cloud-kms 2.105.0), built with no settings", () => {
  it('the check ran cleanly, every connection to cloudkms.googleapis.com:443 through the proxy', () => {
    expect(checkRun.code, `${checkRun.stdout.slice(-4000)}\n${checkRun.stderr.slice(-4000)}`).toBe(0);
    expect(checkRun.stdout.trimEnd().split('\n').at(-1)).toBe('keyport-java-check PASS');
    expect([...byName.keys()]).toEqual(STEPS);
    expect(proxy.targets.length).toBeGreaterThan(0);
    expect(new Set(proxy.targets)).toEqual(new Set([SERVICE]));
  });

  it.each(STEPS)('%s passes', (name) => {
    expect(byName.get(name)?.result).toBe('PASS');
  });

  it('each step sent the RPCs it shows (from grpc-java’s frame log), with the status each got', () => {
    const calls = Object.fromEntries(STEPS.map((n) => [n, byName.get(n)?.calls]));
    expect(calls).toMatchInlineSnapshot(`
      {
        "asymmetricDecrypt": [
          "KeyManagementService/CreateCryptoKey -> OK",
          "KeyManagementService/GetPublicKey -> OK",
          "KeyManagementService/AsymmetricDecrypt -> OK",
        ],
        "asymmetricSign": [
          "KeyManagementService/CreateCryptoKey -> OK",
          "KeyManagementService/GetPublicKey -> OK",
          "KeyManagementService/AsymmetricSign -> OK",
        ],
        "createKeyRing": [
          "KeyManagementService/CreateKeyRing -> OK",
        ],
        "createSymmetricKey": [
          "KeyManagementService/CreateCryptoKey -> OK",
        ],
        "createVersion": [
          "KeyManagementService/CreateCryptoKeyVersion -> OK",
          "KeyManagementService/ListCryptoKeyVersions -> OK",
          "KeyManagementService/ListCryptoKeyVersions -> OK",
          "KeyManagementService/GetCryptoKey -> OK",
        ],
        "destroyRestore": [
          "KeyManagementService/DestroyCryptoKeyVersion -> OK",
          "KeyManagementService/Decrypt -> FAILED_PRECONDITION",
          "KeyManagementService/RestoreCryptoKeyVersion -> OK",
          "KeyManagementService/UpdateCryptoKeyVersion -> OK",
          "KeyManagementService/Decrypt -> OK",
        ],
        "encryptDecrypt": [
          "KeyManagementService/Encrypt -> OK",
          "KeyManagementService/Decrypt -> OK",
          "KeyManagementService/Encrypt -> INVALID_ARGUMENT",
          "KeyManagementService/Decrypt -> INVALID_ARGUMENT",
        ],
        "getAndListKeys": [
          "KeyManagementService/ListKeyRings -> OK",
          "KeyManagementService/GetCryptoKey -> OK",
          "KeyManagementService/ListCryptoKeys -> OK",
          "KeyManagementService/GetCryptoKeyVersion -> OK",
          "KeyManagementService/ListCryptoKeyVersions -> OK",
        ],
        "iamPolicy": [
          "IAMPolicy/GetIamPolicy -> OK",
          "IAMPolicy/SetIamPolicy -> OK",
          "IAMPolicy/GetIamPolicy -> OK",
          "IAMPolicy/TestIamPermissions -> OK",
        ],
        "macSignVerify": [
          "KeyManagementService/CreateCryptoKey -> OK",
          "KeyManagementService/MacSign -> OK",
          "KeyManagementService/MacVerify -> OK",
          "KeyManagementService/MacVerify -> OK",
        ],
        "notFound": [
          "KeyManagementService/GetCryptoKey -> NOT_FOUND",
        ],
        "updatePrimary": [
          "KeyManagementService/UpdateCryptoKeyPrimaryVersion -> OK",
          "KeyManagementService/Encrypt -> OK",
          "KeyManagementService/Decrypt -> OK",
        ],
      }
    `);
  });
});
