/**
 * The providers and conformance targets the README's capability matrix shows. Each entry is the
 * adapter's declared capabilities and the proofs its conformance run uses, imported from the
 * same places the suite reads them, so the README cannot claim more than the tests prove.
 */
import { LOCAL_CAPABILITIES } from '@keyport/local';
import type { MatrixEntry } from '../../src/index.js';

export const MATRIX_ENTRIES: readonly MatrixEntry[] = [
  {
    provider: 'local',
    capabilities: LOCAL_CAPABILITIES,
    proofs: { default: { kind: 'real-provider', name: '@keyport/local' } },
  },
];
