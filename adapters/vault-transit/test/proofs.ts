/**
 * Who proves each capability of @keyport/vault-transit. The conformance run and the README
 * capability matrix both read this table.
 */
import type { Proof, ProofTable } from '@keyport/conformance';

const openBao: Proof = { kind: 'third-party-emulator', name: 'OpenBao 2.7.2 (bao server -dev)' };

export const OPENBAO_PROOFS: ProofTable = {
  default: openBao,
  // Grants run through the suite's credential grantee: each grant mints an orphan token with the
  // grant's policy and TTL (Grant.token), and the suite calls with it. A policy pins exact
  // parameter values, so only contextEquals is enforced; the suite checks that contextSubset is
  // refused (fixtures.grantConstraintKinds in conformance.openbao.test.ts).
  grantConstraints: {
    kind: 'third-party-emulator',
    name: `${openBao.name}: contextEquals only, contextSubset refused with UnsupportedError (checked)`,
  },
};
