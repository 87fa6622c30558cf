// Which targets exist, which variables each one sets, and which vitest project needs which.
// The harness owns this map (/work/briefs/emulators.md); the CLI (`conformance/bin/`) knows how
// to install and start each name listed here.

export const targetNames = [
  'moto',
  'local-kms',
  'azurite',
  'fake-gcs-server',
  'openbao',
  'openbao-dr',
  'drongo',
  'softhsm',
  'azure-keyvault',
  'gcp-kms',
  'esdk-python',
  'esdk-java',
  'esdk-go',
] as const;

export type TargetName = (typeof targetNames)[number];

/** The variables each target writes to `.emulators/env` (besides the AWS basics). */
export const targetVariables = {
  moto: ['KEYPORT_MOTO_ENDPOINT'],
  'local-kms': ['KEYPORT_LOCALKMS_ENDPOINT'],
  azurite: ['KEYPORT_AZURITE_BLOB_ENDPOINT', 'KEYPORT_AZURITE_CONNECTION_STRING'],
  'fake-gcs-server': ['KEYPORT_FAKEGCS_ENDPOINT'],
  openbao: ['KEYPORT_OPENBAO_ADDR', 'KEYPORT_OPENBAO_TOKEN'],
  // A second, independent OpenBao: two Vault clusters in one client.
  'openbao-dr': ['KEYPORT_OPENBAO_DR_ADDR', 'KEYPORT_OPENBAO_DR_TOKEN'],
  drongo: ['KEYPORT_DRONGO_ENDPOINT'],
  softhsm: [
    'KEYPORT_SOFTHSM_MODULE',
    'SOFTHSM2_CONF',
    'KEYPORT_SOFTHSM_TOKEN',
    'KEYPORT_SOFTHSM_PIN',
    'KEYPORT_SOFTHSM_SO_PIN',
  ],
  // The token is the one the server grants every permission (beyond the brief's contract).
  'azure-keyvault': ['KEYPORT_AZUREKV_URL', 'KEYPORT_AZUREKV_CA', 'KEYPORT_AZUREKV_TOKEN'],
  'gcp-kms': ['KEYPORT_GCPKMS_GRPC', 'KEYPORT_GCPKMS_REST'],
  // Not a server: the venv's Python, which imports the AWS Encryption SDK for Python.
  'esdk-python': ['KEYPORT_ESDK_PYTHON'],
  // Not a server: a file naming the jars of the AWS Encryption SDK for Java (Maven resolved).
  'esdk-java': ['KEYPORT_ESDK_JAVA_CLASSPATH'],
  // Not a server: the Go test child, built against the AWS Encryption SDK for Go.
  'esdk-go': ['KEYPORT_ESDK_GO'],
} as const satisfies Record<TargetName, readonly string[]>;

/** Set whatever is running: the AWS SDK reads them, and the emulators ignore their values. */
export const alwaysVariables = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION'] as const;

/** vitest project name (the package folder) → targets its tests call. Others need none. */
export const projectTargets: Readonly<Record<string, readonly TargetName[]>> = {
  // esdk-python, esdk-go: the Material Providers AWS KMS RSA keyring against local-kms (esdk-kms-rsa-interop).
  'aws-kms': ['moto', 'local-kms', 'esdk-python', 'esdk-go'],
  'vault-transit': ['openbao', 'openbao-dr'],
  pkcs11: ['softhsm'],
  'gcp-kms': ['drongo', 'gcp-kms'],
  'azure-keyvault': ['azure-keyvault'],
  conformance: targetNames.filter((t) => !['openbao-dr', 'esdk-python', 'esdk-java', 'esdk-go'].includes(t)),
  // Interop with more ESDK implementations (the first, ESDK-JS, is an npm dependency).
  envelope: ['esdk-python', 'esdk-java', 'esdk-go'],
  // The Python second-opinion scenarios need the venv the harness installs.
  'conformance/servers': ['azure-keyvault', 'gcp-kms'],
  // esdk-python, esdk-go: files moved between those ESDKs and the CLI under one AWS KMS key.
  cli: ['moto', 'local-kms', 'openbao', 'openbao-dr', 'softhsm', 'esdk-python', 'esdk-go'],
  policy: ['moto', 'local-kms', 'openbao', 'drongo', 'softhsm', 'azure-keyvault', 'gcp-kms'],
  'migrate-aws-to-gcp': ['local-kms'],
  byok: ['softhsm', 'local-kms', 'openbao'],
  'object-migrate': ['moto', 'azurite', 'fake-gcs-server'],
  'byok-hsm-and-cloud': ['softhsm', 'local-kms', 'openbao'],
};

/** The union of the targets the given projects need, in the harness's start order. */
export function targetsForProjects(projects: Iterable<string>): TargetName[] {
  const needed = new Set<TargetName>();
  for (const project of projects) {
    for (const target of projectTargets[project] ?? []) needed.add(target);
  }
  return targetNames.filter((name) => needed.has(name));
}
