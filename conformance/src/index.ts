/**
 * @keyport/conformance: the suite every keyport provider must pass. A provider's test file calls
 * `describeProviderConformance({ name, provider, fixtures })`; the README's capability matrix is
 * rendered by `renderCapabilityMatrix` from the same capabilities and proofs.
 */
export {
  algorithmsForSpec,
  CONFORMANCE_CAPABILITIES,
  type ConformanceCapability,
  type ConformancePlan,
  declaredValue,
  planConformance,
} from './capability-plan.js';
export { findSecret, reachableBytes } from './find-secret.js';
export {
  type ClockFixture,
  type ConformanceFixtures,
  type CredentialGranteeFixture,
  describeProof,
  GRANT_CONSTRAINT_KINDS,
  type GrantConstraintKind,
  type GranteeFixture,
  isCredentialGrantee,
  type PrincipalGranteeFixture,
  type Proof,
  type ProofTable,
  proofFor,
  uniqueKeyNames,
} from './fixtures.js';
export { type InstrumentedProvider, instrumentProvider } from './instrumented-provider.js';
export { formatProofSummary, type MatrixEntry, renderCapabilityMatrix } from './matrix.js';
export { describeProviderConformance, type ProviderConformanceOptions } from './suite.js';
export type { ProviderSource } from './suite-state.js';
export { wrapForImport } from './topics/import.js';
