// Module hooks for the lazy-loading tests: every resolved module URL is appended to the file in
// KEYPORT_TRACE_FILE, and the specifiers listed in KEYPORT_TRACE_BREAK (comma-separated) fail
// to resolve, as a package that is not installed or a native module that is not built would.
import { appendFileSync } from 'node:fs';

const file = process.env.KEYPORT_TRACE_FILE;
const broken = new Set((process.env.KEYPORT_TRACE_BREAK ?? '').split(',').filter((s) => s !== ''));

export async function resolve(specifier, context, nextResolve) {
  if (broken.has(specifier)) {
    const error = new Error(`Cannot find package '${specifier}' (broken for this test)`);
    error.code = 'ERR_MODULE_NOT_FOUND';
    throw error;
  }
  const result = await nextResolve(specifier, context);
  if (file !== undefined) appendFileSync(file, `${result.url}\n`);
  return result;
}
