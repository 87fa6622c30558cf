/**
 * The README's capability matrix is generated from the capabilities data and the conformance
 * proofs. This test fails when the README copy is stale; `pnpm matrix` rewrites it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderCapabilityMatrix } from '../src/index.js';
import { matrixEntries } from './matrix/entries.js';

const README = join(import.meta.dirname, '../../README.md');
const START = '<!-- capability-matrix:start -->';
const END = '<!-- capability-matrix:end -->';

describe('README capability matrix', () => {
  it('matches the capabilities data and the conformance proofs', async () => {
    const readme = readFileSync(README, 'utf8');
    const start = readme.indexOf(START);
    const end = readme.indexOf(END);
    expect(start, 'README lacks the capability-matrix markers').toBeGreaterThan(-1);
    expect(end).toBeGreaterThan(start);
    const generated = `${START}\n${renderCapabilityMatrix(await matrixEntries())}${END}`;
    const current = readme.slice(start, end + END.length);
    if (process.env.KEYPORT_WRITE_MATRIX === '1') {
      writeFileSync(README, readme.slice(0, start) + generated + readme.slice(end + END.length));
      return;
    }
    expect(current, 'the README capability matrix is stale: run `pnpm matrix`').toBe(generated);
  });
});
