// `node --import ./test/support/register-ts.mjs --import ./test/support/trace.mjs`: see
// trace-hooks.mjs. Registered after the TypeScript hooks, so it sees their resolution.
import * as nodeModule from 'node:module';
import { traceResolveSync } from './trace-hooks.mjs';

if (typeof nodeModule.registerHooks === 'function') {
  nodeModule.registerHooks({ resolve: traceResolveSync });
} else {
  nodeModule.register('./trace-hooks.mjs', import.meta.url);
}
