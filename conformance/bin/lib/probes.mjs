// "Ready" means the target answered a real request of its own protocol, not that a TCP port
// accepted a connection: each probe sends the smallest request the target must understand.
import { readFileSync } from 'node:fs';
import { connect } from 'node:http2';
import { request } from 'node:https';

const PROBE_TIMEOUT_MS = 3000;

/** KMS ListKeys, the JSON-1.1 protocol the AWS SDK speaks. Both emulators skip signature checks. */
export async function probeAwsKms(port) {
  const response = await fetch(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.1',
      'X-Amz-Target': 'TrentService.ListKeys',
      Authorization:
        'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00',
    },
    body: '{}',
    signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
  });
  const body = await response.text();
  return response.ok && body.includes('"Keys"');
}

/** Vault's health endpoint answers 200 only when initialised, unsealed and active. */
export async function probeOpenBao(port) {
  const response = await fetch(`http://127.0.0.1:${port}/v1/sys/health`, {
    signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
  });
  if (!response.ok) return false;
  const health = await response.json();
  return health.initialized === true && health.sealed === false;
}

/** Cloud KMS REST ListKeyRings in a throwaway project. */
export async function probeDrongo(port) {
  const response = await fetch(
    `http://127.0.0.1:${port}/v1/projects/keyport-probe/locations/global/keyRings`,
    {
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    },
  );
  await response.text();
  return response.ok;
}

/** Any HTTP answer over TLS verified with the server's own CA proves it serves. */
export function probeHttps(url, caFile) {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL('/keys?api-version=7.5', url),
      { ca: readFileSync(caFile), timeout: PROBE_TIMEOUT_MS },
      (res) => {
        res.resume();
        resolve(typeof res.statusCode === 'number');
      },
    );
    req.on('timeout', () => req.destroy(new Error('probe timed out')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * A gRPC call without a gRPC library: an HTTP/2 POST with an empty length-prefixed message.
 * Any `grpc-status` (even an error) proves a gRPC server handles the service path.
 */
export function probeGrpc(port) {
  return new Promise((resolve, reject) => {
    const session = connect(`http://127.0.0.1:${port}`);
    const fail = (err) => {
      session.destroy();
      reject(err);
    };
    session.on('error', fail);
    session.setTimeout(PROBE_TIMEOUT_MS, () => fail(new Error('probe timed out')));
    const stream = session.request({
      ':method': 'POST',
      ':path': '/google.cloud.kms.v1.KeyManagementService/ListKeyRings',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    let status;
    stream.on('response', (headers) => {
      status ??= headers['grpc-status'];
    });
    stream.on('trailers', (headers) => {
      status ??= headers['grpc-status'];
    });
    stream.on('error', fail);
    stream.on('close', () => {
      session.close();
      resolve(status !== undefined);
    });
    stream.resume();
    stream.end(Buffer.alloc(5));
  });
}

/** Azure Blob List Containers without credentials: Azurite answers with its own error XML and request id. */
export async function probeAzurite(port) {
  const response = await fetch(`http://127.0.0.1:${port}/devstoreaccount1?comp=list`, {
    signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
  });
  await response.text();
  return response.headers.get('x-ms-request-id') !== null;
}

/** Cloud Storage JSON API bucket list. */
export async function probeFakeGcs(port) {
  const response = await fetch(`http://127.0.0.1:${port}/storage/v1/b?project=keyport-probe`, {
    signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
  });
  const body = await response.text();
  return response.ok && body.includes('"kind"');
}
