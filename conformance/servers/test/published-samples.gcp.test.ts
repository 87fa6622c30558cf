import { randomUUID } from 'node:crypto';
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeyManagementServiceClient } from '@google-cloud/kms';
import * as grpc from '@grpc/grpc-js';
import { OAuth2Client } from 'google-auth-library';
import { afterAll, afterEach, assert, beforeAll, beforeEach, describe, it } from 'vitest';
import { crc32c } from '../src/gcp/crc32c.js';
import { type CloudKmsServer, startCloudKmsServer } from '../src/gcp/index.js';

// Google's own Cloud KMS Node.js samples and Google's own mocha test of them
// (GoogleCloudPlatform/nodejs-docs-samples kms/, vendored unchanged under
// fixtures/gcp-kms-samples, Apache-2.0: see SOURCE.md there), run against the server over gRPC
// and over REST. Nothing in Google's files is edited; what is substituted when they `require`:
//
// - '@google-cloud/kms': the real package, except that `new KeyManagementServiceClient()` gets the
//   options a user passes to reach the server (endpoint, port, insecure channel or `fallback: true`
//   over http, a static OAuth2 token), as every sample constructs its client without options
//   and would otherwise go to cloudkms.googleapis.com with Application Default Credentials.
// - 'fast-crc32c': not in our lockfile; `calculate(buffer | string)` is the same CRC32C (the server's own).
// - 'mocha', 'chai', 'uuid': the test's runner, assertions and ids map to vitest's
//   describe/it/before(All)/after(All)/…, vitest's bundled chai `assert` and crypto.randomUUID.
// - GCLOUD_PROJECT (read by Google's test) is set to a project of ours.
const SAMPLES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'gcp-kms-samples');
const TEST_FILE = join(SAMPLES, 'test', 'kms.test.js');
const PROJECT = 'keyport-samples';

interface Target {
  server: CloudKmsServer;
  clients: KeyManagementServiceClient[];
}

function clientOptions(server: CloudKmsServer, rest: boolean) {
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: 'keyport-sample-token' });
  if (rest) {
    const url = new URL(server.restUrl!);
    return {
      fallback: true,
      protocol: 'http',
      apiEndpoint: url.hostname,
      port: Number(url.port),
      authClient,
    };
  }
  return {
    apiEndpoint: '127.0.0.1',
    port: server.port,
    sslCreds: grpc.credentials.createInsecure(),
    authClient,
  };
}

// The target the next `new KeyManagementServiceClient()` reaches; set at collection time for the
// test file's top-level client and by each block's beforeAll for the samples' own clients.
let current: { target: Target; rest: boolean } | undefined;

class PointedClient extends KeyManagementServiceClient {
  constructor(options?: ConstructorParameters<typeof KeyManagementServiceClient>[0]) {
    if (!current) throw new Error('no Cloud KMS test server to point the sample at');
    super({ ...clientOptions(current.target.server, current.rest), ...options });
    current.target.clients.push(this);
  }
}

const kmsModule = createRequire(import.meta.url)('@google-cloud/kms') as Record<string, unknown>;
const substitutes: Record<string, unknown> = {
  '@google-cloud/kms': { ...kmsModule, KeyManagementServiceClient: PointedClient },
  // fast-crc32c's calculate() takes a Buffer or a string (hashed as UTF-8), as getPublicKey passes.
  'fast-crc32c': {
    calculate: (data: Uint8Array | string) => crc32c(typeof data === 'string' ? Buffer.from(data) : data),
  },
  mocha: { describe, it, before: beforeAll, after: afterAll, beforeEach, afterEach },
  chai: { assert },
  uuid: { v4: () => randomUUID() },
};

type Load = (request: string, parent: unknown, isMain: boolean) => unknown;
const loader = Module as unknown as { _load: Load };
const originalLoad = loader._load;
loader._load = function load(this: unknown, request, parent, isMain) {
  const parentFile = (parent as { filename?: string } | undefined)?.filename ?? '';
  if (parentFile.startsWith(SAMPLES) && Object.hasOwn(substitutes, request)) return substitutes[request];
  return originalLoad.call(this, request, parent, isMain);
};

const previousProject = process.env.GCLOUD_PROJECT;
process.env.GCLOUD_PROJECT = PROJECT;

const requireSample = createRequire(TEST_FILE);

/** Loads Google's test file afresh (its module-level ids and client) for one target. */
function registerGoogleTests(target: Target, rest: boolean): void {
  for (const id of Object.keys(requireSample.cache))
    if (id.startsWith(SAMPLES)) delete requireSample.cache[id];
  current = { target, rest };
  requireSample(TEST_FILE);
}

const targets: Target[] = [];
async function newTarget(): Promise<Target> {
  const target: Target = { server: await startCloudKmsServer(), clients: [] };
  targets.push(target);
  return target;
}
const overGrpc = await newTarget();
const overRest = await newTarget();

afterAll(async () => {
  // Google's after() hook starts its clean-up calls without awaiting them (keys.forEach(async …)).
  await new Promise((r) => setTimeout(r, 500));
  for (const target of targets) {
    await Promise.allSettled(target.clients.map((c) => c.close()));
    await target.server.stop();
  }
  loader._load = originalLoad;
  if (previousProject === undefined) delete process.env.GCLOUD_PROJECT;
  else process.env.GCLOUD_PROJECT = previousProject;
});

describe('over gRPC', () => {
  beforeAll(() => {
    current = { target: overGrpc, rest: false };
  });
  registerGoogleTests(overGrpc, false);
});

describe('over REST (fallback: true)', () => {
  beforeAll(() => {
    current = { target: overRest, rest: true };
  });
  registerGoogleTests(overRest, true);
});
