/** Refusing options nobody reads: a misspelt one would otherwise leave its default in force, silently. */
import { KeyportError } from '@keyport/core';

const nameSets = new WeakMap<readonly string[], ReadonlySet<string>>();

/**
 * An own option that is none of `names` is refused: a misspelt `requiredContex` would otherwise
 * open with no context check at all, a misspelt cache `maxMessage` reuse a data key up to the
 * default 2^32 times. Only own names are checked: inherited options are read (see readOptions),
 * and an options object's prototype may hold anything else.
 */
export function checkUnknown(value: object, what: string, names: readonly string[]): void {
  let known = nameSets.get(names);
  if (known === undefined) {
    known = new Set(names);
    nameSets.set(names, known);
  }
  let keys: string[];
  try {
    keys = Object.keys(value);
  } catch {
    throw new KeyportError('InvalidArgument', `${what}: reading them threw`);
  }
  for (const key of keys) {
    if (!known.has(key))
      throw new KeyportError(
        'InvalidArgument',
        `${what}: unknown option ${JSON.stringify(key.slice(0, 64))}`,
      );
  }
}
