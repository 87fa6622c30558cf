/**
 * The providers and conformance targets the README's capability matrix shows. Each entry is the
 * adapter's declared capabilities and the proof table its conformance run uses, imported from the
 * same files those runs read, so the README cannot claim more than the tests prove.
 *
 * Adapters are imported by path, not by package name: they depend on @keyport/conformance for
 * their tests, and a dependency back would make a cycle for the build.
 */
import { LOCAL_CAPABILITIES } from '@keyport/local';
import { AWS_KMS_CAPABILITIES } from '../../../adapters/aws-kms/src/index.js';
import { LOCAL_KMS_PROOFS, MOTO_PROOFS } from '../../../adapters/aws-kms/test/proofs.js';
import {
  PROOFS as AZURE_PROOFS,
  KEY_VAULT_CAPABILITIES,
  MANAGED_HSM_CAPABILITIES,
} from '../../../adapters/azure-keyvault/test/proofs.js';
import { GCP_KMS_CAPABILITIES } from '../../../adapters/gcp-kms/src/index.js';
import { DRONGO_PROOFS, GRPC_PROOFS, REST_PROOFS } from '../../../adapters/gcp-kms/test/proofs.js';
import { Pkcs11Provider } from '../../../adapters/pkcs11/src/index.js';
import { SOFTHSM_PROOFS } from '../../../adapters/pkcs11/test/proofs.js';
import { providerOptions } from '../../../adapters/pkcs11/test/support.js';
import { transitCapabilities } from '../../../adapters/vault-transit/src/index.js';
import { OPENBAO_PROOFS } from '../../../adapters/vault-transit/test/proofs.js';
import type { MatrixEntry } from '../../src/index.js';

/** PKCS#11 capabilities are read from the module's mechanism list, so they need the token. */
async function softhsmCapabilities() {
  const provider = await Pkcs11Provider.open(providerOptions());
  try {
    return provider.capabilities;
  } finally {
    await provider.close();
  }
}

export async function matrixEntries(): Promise<MatrixEntry[]> {
  return [
    {
      provider: 'local',
      capabilities: LOCAL_CAPABILITIES,
      proofs: { default: { kind: 'real-provider', name: '@keyport/local' } },
    },
    { provider: 'aws-kms (moto)', capabilities: AWS_KMS_CAPABILITIES, proofs: MOTO_PROOFS },
    { provider: 'aws-kms (local-kms)', capabilities: AWS_KMS_CAPABILITIES, proofs: LOCAL_KMS_PROOFS },
    { provider: 'hcvault (OpenBao)', capabilities: transitCapabilities('openbao'), proofs: OPENBAO_PROOFS },
    { provider: 'pkcs11 (SoftHSM2)', capabilities: await softhsmCapabilities(), proofs: SOFTHSM_PROOFS },
    { provider: 'gcp-kms (gRPC)', capabilities: GCP_KMS_CAPABILITIES, proofs: GRPC_PROOFS },
    { provider: 'gcp-kms (REST)', capabilities: GCP_KMS_CAPABILITIES, proofs: REST_PROOFS },
    { provider: 'gcp-kms (REST, drongo)', capabilities: GCP_KMS_CAPABILITIES, proofs: DRONGO_PROOFS },
    { provider: 'azurekeyvault (vault)', capabilities: KEY_VAULT_CAPABILITIES, proofs: AZURE_PROOFS },
    { provider: 'azurekeyvault (managed HSM)', capabilities: MANAGED_HSM_CAPABILITIES, proofs: AZURE_PROOFS },
  ];
}
