// Module hooks for the lazy-loading tests: every resolved module URL is appended to the file in
// KEYPORT_TRACE_FILE, and the specifiers listed in KEYPORT_TRACE_BREAK (comma-separated) fail
// to resolve, as a package that is not installed or a native module that is not built would.
// `traceResolveSync` serves `module.registerHooks` (in-thread, Node 22.15+), `resolve` the
// off-thread `module.register` of older lines: the same chain as register-ts.mjs uses, so the
// two compose (hooks of the two kinds do not see each other's resolution).
import { appendFileSync } from 'node:fs';

const file = process.env.KEYPORT_TRACE_FILE;
const broken = new Set((process.env.KEYPORT_TRACE_BREAK ?? '').split(',').filter((s) => s !== ''));

function refuseBroken(specifier) {
  if (!broken.has(specifier)) return;
  const error = new Error(`Cannot find package '${specifier}' (broken for this test)`);
  error.code = 'ERR_MODULE_NOT_FOUND';
  throw error;
}

function record(result) {
  if (file !== undefined) appendFileSync(file, `${result.url}\n`);
  return result;
}

export function traceResolveSync(specifier, context, nextResolve) {
  refuseBroken(specifier);
  return record(nextResolve(specifier, context));
}

export async function resolve(specifier, context, nextResolve) {
  refuseBroken(specifier);
  return record(await nextResolve(specifier, context));
}
