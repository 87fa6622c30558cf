/** The README's capability and error tables are the ones generated from the code and the test proofs. */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderCapabilityMatrix } from '@keyport/conformance';
import { keyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { GCP_KMS_CAPABILITIES, GCP_KMS_ERROR_TABLE } from '../src/index.js';
import { GRPC_PROOFS, REST_PROOFS } from './proofs.js';

export const CAPABILITY_MATRIX = renderCapabilityMatrix([
  { provider: 'gcp-kms over gRPC', capabilities: GCP_KMS_CAPABILITIES, proofs: GRPC_PROOFS },
  { provider: 'gcp-kms over REST', capabilities: GCP_KMS_CAPABILITIES, proofs: REST_PROOFS },
]);

export const ERROR_TABLE = [
  '| Cloud KMS answer | keyport code | retryable |',
  '|---|---|---|',
  ...Object.entries(GCP_KMS_ERROR_TABLE).map(([answer, row]) => {
    const what = /^\d+$/.test(answer) ? `HTTP ${answer}` : answer;
    const retryable = row.retryable ?? keyportError(row.code, '').retryable;
    return `| ${what} | \`${row.code}\` | ${retryable ? 'yes' : 'no'} |`;
  }),
].join('\n');

describe('README', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

  it('carries the generated capability matrix', () => {
    if (process.env.PRINT_MATRIX) writeFileSync(process.env.PRINT_MATRIX, CAPABILITY_MATRIX);
    expect(readme).toContain(CAPABILITY_MATRIX.trim());
  });

  it('carries the error table as GCP_KMS_ERROR_TABLE has it', () => {
    if (process.env.PRINT_ERRORS) writeFileSync(process.env.PRINT_ERRORS, ERROR_TABLE);
    expect(readme).toContain(ERROR_TABLE);
  });
});
