// @keyport/test-servers/azure-keyvault: the Key Vault test server alone. Its import graph holds
// only node: built-ins, so it runs without the Cloud KMS server's optional peer dependencies
// (@grpc/grpc-js, @grpc/proto-loader, @google-cloud/kms, protobufjs, proto3-json-serializer).
import {
  type AzureKeyVaultServer,
  type AzureKeyVaultServerOptions,
  startAzureKeyVaultServer,
} from './azure/server.js';

export * from './azure/index.js';

/** Starts a Key Vault test server (the same as `startAzureKeyVaultServer`), for test runners. */
export function start(options: AzureKeyVaultServerOptions = {}): Promise<AzureKeyVaultServer> {
  return startAzureKeyVaultServer(options);
}
