import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import protobuf from 'protobufjs';

// The service definitions come from the .proto files that ship inside @google-cloud/kms (and
// google-gax for IAM, long-running operations and the common types), so the server speaks exactly
// what the client does. Keys of a service definition are PascalCase RPC names ("CreateKeyRing").
const require = createRequire(import.meta.url);

const PROTO_FILES = [
  'google/cloud/kms/v1/service.proto',
  'google/iam/v1/iam_policy.proto',
  'google/longrunning/operations.proto',
  'google/cloud/location/locations.proto',
];

function protoDirs(): string[] {
  const kmsDir = path.dirname(require.resolve('@google-cloud/kms/package.json'));
  const fromKms = createRequire(path.join(kmsDir, 'package.json'));
  // google-gax's exports hide package.json: walk up from its entry (build/src/index.js).
  const gaxDir = path.resolve(path.dirname(fromKms.resolve('google-gax')), '..', '..');
  return [path.join(kmsDir, 'build', 'protos'), path.join(gaxDir, 'build', 'protos')];
}

/** How messages are turned into the plain objects handlers see (the same for gRPC and REST). */
export const OBJECT_OPTIONS = {
  longs: Number,
  enums: String,
  defaults: false,
  oneofs: true,
} as const;

let cached: PackageDefinition | undefined;

export function loadKmsDefinitions(): {
  kms: ServiceDefinition;
  iam: ServiceDefinition;
  operations: ServiceDefinition;
  locations: ServiceDefinition;
} {
  cached ??= loadSync(PROTO_FILES, { includeDirs: protoDirs(), keepCase: false, ...OBJECT_OPTIONS });
  return {
    kms: cached['google.cloud.kms.v1.KeyManagementService'] as ServiceDefinition,
    iam: cached['google.iam.v1.IAMPolicy'] as ServiceDefinition,
    operations: cached['google.longrunning.Operations'] as ServiceDefinition,
    locations: cached['google.cloud.location.Locations'] as ServiceDefinition,
  };
}

let cachedRoot: protobuf.Root | undefined;

/** The same protos as a protobufjs Root: message types, JSON mapping and `google.api.http` rules. */
export function kmsRoot(): protobuf.Root {
  if (cachedRoot) return cachedRoot;
  const dirs = protoDirs();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of dirs) {
      const candidate = path.join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  root.loadSync(PROTO_FILES, { keepCase: false });
  root.resolveAll();
  cachedRoot = root;
  return root;
}

/**
 * Packs `value` (a plain object of message `typeName`) into a google.protobuf.Any. The type URL is
 * given under both names: @grpc/proto-loader reads `typeUrl`, while protobufjs's bundled Any
 * (which the REST surface's Root uses) keeps the proto name `type_url`.
 */
export function packAny(
  typeName: string,
  value: object,
): { typeUrl: string; type_url: string; value: Buffer } {
  const type = kmsRoot().lookupType(typeName);
  const bytes = type.encode(type.fromObject(value)).finish();
  const url = `type.googleapis.com/${typeName}`;
  return { typeUrl: url, type_url: url, value: Buffer.from(bytes) };
}

/**
 * The answer to a label the service refuses. Also the REST surface's answer to a map key named
 * `__proto__`: proto3-json-serializer builds map fields as plain objects (`map[key] = value`), where
 * that key stores nothing, so the entry would vanish without a word (the gRPC decoder keeps it).
 * The one map in a KMS request, CryptoKey.labels, cannot hold that key anyway (a label key starts
 * with a lowercase letter).
 */
export const LABELS_MESSAGE = 'Labels must match [a-z][a-z0-9_-]{0,62} = [a-z0-9_-]{0,63}.';
