/** Who proves each capability of @keyport/pkcs11; read by the conformance run and the README matrix. */
import type { ProofTable } from '@keyport/conformance';

export const SOFTHSM_PROOFS: ProofTable = {
  default: { kind: 'third-party-emulator', name: 'SoftHSM2 2.6.1' },
};
