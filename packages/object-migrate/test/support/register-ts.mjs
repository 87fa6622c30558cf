// `node --import ./test/support/register-ts.mjs bin/keyport.mjs ...` runs the CLI from source.
//
// Where Node has synchronous in-thread hooks (`module.registerHooks`, Node 22.15+ / 23.5+) they
// are used: `module.register()` runs hooks on a separate thread and Node 26 deprecates it
// (DEP0205) with a warning on stderr. Older Node lines fall back to `register()` with the same
// hooks written asynchronously in `ts-hooks.mjs`.
import { readFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'rolldown/utils';

/** Workspace packages resolve through their "source" condition; `./x.js` from .ts finds `./x.ts`. */
function resolve(specifier, context, nextResolve) {
  const conditions = specifier.startsWith('@keyport/')
    ? [...context.conditions, 'source']
    : context.conditions;
  try {
    return nextResolve(specifier, { ...context, conditions });
  } catch (error) {
    const fromTs = context.parentURL?.endsWith('.ts') === true;
    if (fromTs && specifier.startsWith('.') && specifier.endsWith('.js')) {
      return nextResolve(`${specifier.slice(0, -3)}.ts`, { ...context, conditions });
    }
    throw error;
  }
}

/** .ts files are transformed by rolldown's (oxc) transformer. */
function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const result = transformSync(path, readFileSync(path, 'utf8'), { lang: 'ts', sourcemap: false });
  if (result.errors.length > 0) throw new Error(`cannot transform ${path}: ${result.errors[0].message}`);
  return { format: 'module', source: result.code, shortCircuit: true };
}

if (typeof nodeModule.registerHooks === 'function') {
  nodeModule.registerHooks({ resolve, load });
} else {
  nodeModule.register('./ts-hooks.mjs', import.meta.url);
}
