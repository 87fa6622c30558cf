/**
 * Who proves each capability of @keyport/vault-transit. The conformance run and the README
 * capability matrix both read this table.
 */
import type { Proof, ProofTable } from '@keyport/conformance';

const openBao: Proof = { kind: 'third-party-emulator', name: 'OpenBao 2.7.2 (bao server -dev)' };
// The suite's grantee fixture needs a principal that exists before the grant and is then
// granted to. A Vault grant is the other way round: it mints the grantee's credential (an
// orphan token with the grant's policy and TTL, returned as Grant.token), so the fixture cannot
// act as the grantee. test/grants.test.ts proves all three against the same OpenBao.
const grantsElsewhere: Proof = {
  kind: 'not-emulated',
  reason:
    'Vault grants mint the grantee token (Grant.token) instead of granting to an existing principal; proven against OpenBao by test/grants.test.ts',
};

export const OPENBAO_PROOFS: ProofTable = {
  default: openBao,
  grants: grantsElsewhere,
  grantExpiry: grantsElsewhere,
  grantConstraints: grantsElsewhere,
};
