// Node module hooks that let the real `bin/keyport.mjs` run from TypeScript source in tests
// (Node 20 cannot strip types): workspace packages resolve through their "source" export
// condition, `./x.js` imports find `./x.ts`, and .ts files are transformed by rolldown's
// (oxc) transformer. Registered by `register-ts.mjs` with `node --import`.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'rolldown/utils';

export async function resolve(specifier, context, nextResolve) {
  const conditions = specifier.startsWith('@keyport/')
    ? [...context.conditions, 'source']
    : context.conditions;
  try {
    return await nextResolve(specifier, { ...context, conditions });
  } catch (error) {
    const fromTs = context.parentURL?.endsWith('.ts') === true;
    if (fromTs && specifier.startsWith('.') && specifier.endsWith('.js')) {
      return nextResolve(`${specifier.slice(0, -3)}.ts`, { ...context, conditions });
    }
    throw error;
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const result = transformSync(path, await readFile(path, 'utf8'), { lang: 'ts', sourcemap: false });
  if (result.errors.length > 0) throw new Error(`cannot transform ${path}: ${result.errors[0].message}`);
  return { format: 'module', source: result.code, shortCircuit: true };
}
