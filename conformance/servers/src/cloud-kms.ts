// @keyport/test-servers/cloud-kms: the Cloud KMS test server (gRPC and REST). Needs the optional
// peer dependencies @grpc/grpc-js, @grpc/proto-loader, @google-cloud/kms, protobufjs and
// proto3-json-serializer.
import { type CloudKmsServer, type CloudKmsServerOptions, startCloudKmsServer } from './gcp/server.js';

export * from './gcp/index.js';

/** Starts a Cloud KMS test server (the same as `startCloudKmsServer`), for test runners. */
export function start(options: CloudKmsServerOptions = {}): Promise<CloudKmsServer> {
  return startCloudKmsServer(options);
}
