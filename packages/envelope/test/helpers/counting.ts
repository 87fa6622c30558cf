import type { KeyOperations } from '@keyport/core';

/** Counts calls per method on a real KeyOperations (it delegates every call). */
export function counting(inner: KeyOperations): { keys: KeyOperations; calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const keys = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls[String(prop)] = (calls[String(prop)] ?? 0) + 1;
        return v.apply(target, args);
      };
    },
  });
  return { keys, calls };
}
