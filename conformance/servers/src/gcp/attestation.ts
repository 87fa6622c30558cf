import { createHash, createPrivateKey, sign } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import {
  ATTESTATION_CARD_CERT_PEM,
  ATTESTATION_CARD_KEY_PEM,
  ATTESTATION_TEST_CA_PEM,
} from './attestation-ca.js';
import { type KeyMaterial, publicKeyDer } from './key-material.js';

// Attestations for HSM-protection-level versions (CryptoKeyVersion.attestation). The real
// service returns a gzip-compressed statement from the HSM (format CAVIUM_V2_COMPRESSED) whose
// last 256 bytes are an RSA-2048 PKCS#1 v1.5 SHA-256 signature over the rest, plus the certificate
// chains to check it with. This server produces the same layout, so code that decompresses,
// splits and verifies it runs; the statement itself is clearly synthetic (a marked JSON text, not
// Marvell's binary structure) and the chains end at keyport's published test CA.
export const SYNTHETIC_ATTESTATION_MARKER =
  'KEYPORT SYNTHETIC ATTESTATION v1 (TEST ONLY, not produced by an HSM)';

export interface Attestation {
  format: 'CAVIUM_V2_COMPRESSED';
  content: Buffer;
  certChains: { caviumCerts: string[]; googleCardCerts: string[]; googlePartitionCerts: string[] };
}

let cardKey: ReturnType<typeof createPrivateKey> | undefined;

export function attest(
  versionName: string,
  algorithm: string,
  material: KeyMaterial | undefined,
  at: Date,
): Attestation {
  cardKey ??= createPrivateKey(ATTESTATION_CARD_KEY_PEM);
  const statement = {
    marker: SYNTHETIC_ATTESTATION_MARKER,
    version: versionName,
    algorithm,
    created: at.toISOString(),
    // What the statement binds: the public key for asymmetric versions, a key fingerprint
    // (never the key) for symmetric ones.
    ...(material?.kind === 'pair'
      ? { publicKeySha256: createHash('sha256').update(publicKeyDer(material)).digest('hex') }
      : material?.kind === 'secret'
        ? {
            keyFingerprint: createHash('sha256')
              .update('keyport-attestation')
              .update(material.key)
              .digest('hex')
              .slice(0, 32),
          }
        : {}),
  };
  const body = Buffer.from(`${SYNTHETIC_ATTESTATION_MARKER}\n${JSON.stringify(statement)}\n`);
  const signature = sign('sha256', body, cardKey);
  const chain = [ATTESTATION_CARD_CERT_PEM, ATTESTATION_TEST_CA_PEM];
  return {
    format: 'CAVIUM_V2_COMPRESSED',
    content: gzipSync(Buffer.concat([body, signature])),
    certChains: { caviumCerts: chain, googleCardCerts: chain, googlePartitionCerts: chain },
  };
}
