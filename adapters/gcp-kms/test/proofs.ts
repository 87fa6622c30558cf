/**
 * Who proves each capability of @keyport/gcp-kms, per target: exported so the lead can render the
 * README capability matrix (`renderCapabilityMatrix`) from exactly what the tests ran.
 */
import type { ProofTable } from '@keyport/conformance';

const GRPC_SERVER = {
  kind: 'keyport-test-server',
  name: 'Cloud KMS gRPC test server (@keyport/test-servers)',
} as const;

/**
 * Over gRPC against keyport's Cloud KMS server: every declared capability is exercised (the suite
 * runs AES_256, RSA_2048, EC_P256, EC_P384 and HMAC_256; RSA_3072 and RSA_4096 are covered by
 * test/gcp-features.test.ts, since generating them per suite key costs seconds).
 */
export const GRPC_PROOFS: ProofTable = { default: GRPC_SERVER };

/**
 * Over REST (the client's fallback mode) against the same server's HTTP/JSON surface, transcoded
 * from the protos' google.api.http rules: every declared capability, as over gRPC.
 */
export const REST_PROOFS: ProofTable = {
  default: {
    kind: 'keyport-test-server',
    name: 'Cloud KMS REST (HTTP/JSON) test server (@keyport/test-servers)',
  },
};

const DRONGO = { kind: 'third-party-emulator', name: 'drongo 0.8.0 (REST)' } as const;
const notInDrongo = (what: string) =>
  ({ kind: 'not-emulated', reason: `drongo 0.8.0 has no ${what}` }) as const;

/** Over REST against drongo: key rings, crypto keys and encrypt/decrypt with AAD and CRC32C only. */
export const DRONGO_PROOFS: ProofTable = {
  default: DRONGO,
  keys: {
    kind: 'third-party-emulator',
    name: 'drongo 0.8.0 (REST) for AES_256 keys only: drongo has no asymmetric or MAC keys',
  },
  encrypt: {
    kind: 'not-emulated',
    reason:
      "drongo 0.8.0's ciphertext is a deterministic, reversible encoding, not encryption (the suite's randomisation and wrong-key checks cannot hold); the REST encrypt/decrypt path with AAD and CRC32C is proven in test/rest.drongo.test.ts",
  },
  context: {
    kind: 'not-emulated',
    reason:
      'see encrypt; AAD binding over REST (mismatch → InvalidCiphertext) is proven in test/rest.drongo.test.ts',
  },
  rotation: notInDrongo('crypto key versions'),
  autoRotation: notInDrongo('rotation schedule'),
  enableDisable: notInDrongo('version states'),
  destroyVersion: notInDrongo('version destruction'),
  grants: notInDrongo('IAM'),
  grantExpiry: notInDrongo('IAM conditions'),
  import: notInDrongo('import jobs'),
  sign: notInDrongo('asymmetric keys'),
  mac: notInDrongo('MAC keys'),
};
