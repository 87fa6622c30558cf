import { createRequire } from 'node:module';
import path from 'node:path';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';

// The service definitions come from the .proto files that ship inside @google-cloud/kms (and
// google-gax for IAM and the common types), so the server speaks exactly what the client does.
// Keys of a service definition are PascalCase RPC names ("CreateKeyRing").
const require = createRequire(import.meta.url);

function protoDirs(): string[] {
  const kmsDir = path.dirname(require.resolve('@google-cloud/kms/package.json'));
  const fromKms = createRequire(path.join(kmsDir, 'package.json'));
  // google-gax's exports hide package.json: walk up from its entry (build/src/index.js).
  const gaxDir = path.resolve(path.dirname(fromKms.resolve('google-gax')), '..', '..');
  return [path.join(kmsDir, 'build', 'protos'), path.join(gaxDir, 'build', 'protos')];
}

let cached: PackageDefinition | undefined;

export function loadKmsDefinitions(): { kms: ServiceDefinition; iam: ServiceDefinition } {
  cached ??= loadSync(['google/cloud/kms/v1/service.proto', 'google/iam/v1/iam_policy.proto'], {
    includeDirs: protoDirs(),
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  return {
    kms: cached['google.cloud.kms.v1.KeyManagementService'] as ServiceDefinition,
    iam: cached['google.iam.v1.IAMPolicy'] as ServiceDefinition,
  };
}
