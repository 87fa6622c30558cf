/** What the transit driver can honestly offer (see the README's capability table). */
import { type Capabilities, USAGES_BY_SPEC } from '@keyport/core';

export function transitCapabilities(flavor: 'vault' | 'openbao'): Capabilities {
  return {
    // Exactly core's usages: transit RSA keys both encrypt with OAEP and sign.
    keySpecs: USAGES_BY_SPEC,
    context: 'native',
    dataKeys: 'native',
    listKeys: true,
    rotation: 'versioned',
    autoRotation: true,
    // OpenBao's transit soft-delete blocks every use and is undone by soft-delete-restore;
    // HashiCorp Vault has no such switch (min_decryption_version is not a disable: it
    // keeps encryption working and cannot be lowered to re-admit later versions only).
    enableDisable: flavor === 'openbao',
    // Transit deletes at once (deletion_allowed + DELETE); there is no waiting period.
    scheduledDeletion: 'none',
    // trim: only a prefix of versions, and only below min_decryption/encryption_version.
    destroyVersion: true,
    grants: 'native',
    grantExpiry: 'native',
    grantConstraints: true,
    // The OAEP step of transit's import takes hash_function SHA256 or SHA1 (Vault and OpenBao
    // both; SHA1 is what HSMs such as SoftHSM2 2.6.1 can wrap with).
    import: ['RSA_AES_KEY_WRAP_SHA_256', 'RSA_AES_KEY_WRAP_SHA_1'],
    signingAlgorithms: ['RSASSA_PSS_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_256', 'ECDSA_SHA_256', 'ECDSA_SHA_384'],
  };
}
