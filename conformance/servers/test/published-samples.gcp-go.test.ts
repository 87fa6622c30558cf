import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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
import { builtGoSamples } from './go-samples.js';
import { type Run, run } from './run-child.js';

// Google's Cloud KMS Go samples (GoogleCloudPlatform/golang-samples kms/, vendored unchanged under
// fixtures/gcp-kms-go-samples, Apache-2.0: see SOURCE.md there), run through the real
// cloud.google.com/go/kms/apiv1 client (pinned by go.mod/go.sum there) against the Cloud KMS test
// server over gRPC. Every sample builds its client as `kms.NewKeyManagementClient(ctx)`, no
// options; nothing in Google's files or in the client is changed. The client is pointed at the
// server by environment only, the way one reaches any service from behind a proxy:
// - HTTPS_PROXY: grpc-go tunnels its connection to cloudkms.googleapis.com:443 through an HTTP
//   CONNECT proxy (below) which accepts that one target and splices it to the server's port;
// - SSL_CERT_FILE: Go trusts the certificate the server presents (made here by openssl, for
//   DNS:cloudkms.googleapis.com), so TLS and host name checks run as against the service;
// - GOOGLE_APPLICATION_CREDENTIALS: Application Default Credentials from a service account key
//   made here; the client signs its own JWT with it (no token endpoint is ever called);
// - HOME: an empty folder, so no gcloud configuration or client certificate config of the machine
//   running the test is picked up.
// The driver (keyport_driver_test.go, same package, ours) calls every sample function in order
// and checks what each writes; `go test -c` builds it with the samples into one binary, cached by
// the hash of the module's files (a warm run builds nothing). quickstart/ (package main) is built
// alongside and run last.
const SAMPLES = join(import.meta.dirname, 'fixtures', 'gcp-kms-go-samples');
const DAY = 24 * 60 * 60 * 1000;

/** Every sample: file -> its function (each of Google's files declares one, taking an io.Writer). */
function sampleFunctions(): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(SAMPLES)
    .filter((f) => f.endsWith('.go') && !f.endsWith('_test.go'))
    .sort()) {
    const names = [...readFileSync(join(SAMPLES, f), 'utf8').matchAll(/^func (\w+)\(w io\.Writer/gm)].map(
      (m) => m[1]!,
    );
    if (names.length !== 1) throw new Error(`${f}: ${names.length} sample functions, expected one`);
    out.set(f, names[0]!);
  }
  return out;
}
const FUNCTIONS = sampleFunctions();
const PHASE_2 = ['deleteCryptoKey', 'deleteCryptoKeyVersion', 'getRetiredResource', 'listRetiredResources'];

/** Per sample function, PASS or the failure the driver reported. */
function results(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of stdout.matchAll(/^keyport-go-sample (PASS|FAIL) (\w+)(?:: (.*))?$/gm)) {
    out.set(m[2]!, m[1] === 'PASS' ? 'PASS' : `FAIL: ${m[3]}`);
  }
  return out;
}

let server: CloudKmsServer;
let proxy: ConnectProxy;
let work: string;
const outcome = new Map<string, string>();
let phases: Run[] = [];
let quickstartRun: Run;

beforeAll(async () => {
  const { driver, quickstart, buildMs } = await builtGoSamples('gcp-kms-go-samples');
  if (quickstart === undefined)
    throw new Error('build-go-samples.mjs built no quickstart for gcp-kms-go-samples');
  if (buildMs > 0) console.log(`built the Go samples in ${buildMs} ms`);
  work = mkdtempSync(join(tmpdir(), 'keyport-go-samples-'));
  const home = join(work, 'home');
  mkdirSync(home);
  const tls = await serviceCertificate(work);
  server = await startCloudKmsServer({ tls, rest: false });
  proxy = await connectProxy(server.port);
  const credentials = serviceAccountFile(work, 'keyport-go-samples', 'samples');
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: home,
    HTTPS_PROXY: proxy.url,
    SSL_CERT_FILE: tls.certFile,
    GOOGLE_APPLICATION_CREDENTIALS: credentials,
  };
  const first = await run(driver, ['-test.run', '^TestPhase1$'], env, work);
  // The scheduled destruction (24 h for the key the sample made) falls due.
  server.clock.advance(31 * DAY);
  const second = await run(driver, ['-test.run', '^TestPhase2$'], env, work);
  phases = [first, second];
  for (const r of phases)
    for (const [name, result] of results(r.stdout)) {
      // A sample reported in both phases passes only if it passed in both.
      outcome.set(name, outcome.get(name)?.startsWith('FAIL') ? outcome.get(name)! : result);
    }
  quickstartRun = await run(quickstart, [], env, work);
}, 20 * 60_000);

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("Google's golang-samples kms/, unedited, over gRPC through cloud.google.com/go/kms", () => {
  it('the driver ran both phases cleanly, and every connection went to cloudkms.googleapis.com:443', () => {
    for (const [i, r] of phases.entries()) {
      expect(r.code, `phase ${i + 1}:\n${r.stdout.slice(-4000)}\n${r.stderr}`).toBe(0);
      expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('PASS');
    }
    expect(proxy.targets.length).toBeGreaterThan(0);
    expect(new Set(proxy.targets)).toEqual(new Set([SERVICE]));
  });

  it('covers every vendored sample', () => {
    expect(FUNCTIONS.size).toBe(46);
    const reported = [...outcome.keys(), 'main'].sort();
    expect(reported).toEqual([...new Set(FUNCTIONS.values()), 'main'].sort());
    expect(results(phases[1]?.stdout ?? '').size).toBe(PHASE_2.length);
    expect([...results(phases[1]?.stdout ?? '').keys()].sort()).toEqual(PHASE_2);
  });

  it.each([...FUNCTIONS.entries()])('%s (%s) passes', (_file, fn) => {
    expect(outcome.get(fn)).toBe('PASS');
  });

  it('quickstart/quickstart.go (package main) lists the key ring made in its project', () => {
    expect(quickstartRun.code, quickstartRun.stderr).toBe(0);
    expect(quickstartRun.stdout).toBe(
      'key ring: projects/your-project-id/locations/global/keyRings/quickstart\n',
    );
  });
});
