/**
 * Contexts and option records are prototype-free and stay in V8's fast-property mode (an
 * `Object.create(null)` record is a dictionary: its keys listed and spread by every driver call
 * cost ~4x as much). Checked with V8's own %HasFastProperties in a child process.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const HOOKS = fileURLToPath(new URL('../../cli/test/support/register-ts.mjs', import.meta.url));
const PROBE = fileURLToPath(new URL('./support/fast-records-probe.mjs', import.meta.url));

it('builds prototype-free contexts and options with fast properties', () => {
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--import', HOOKS, PROBE], {
    encoding: 'utf8',
  });
  expect(JSON.parse(out)).toEqual({
    seen: true,
    context: true,
    fromMap: true,
    decoded: true,
    call: true,
    rest: true,
  });
});
