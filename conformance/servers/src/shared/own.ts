/**
 * `table[key]` when `key` is one of the table's own keys, else undefined. Request strings index
 * the servers' lookup tables, and a name of an `Object.prototype` member (`constructor`,
 * `toString`, `__proto__`) must find nothing there, as any other unknown name does.
 */
export function ownEntry<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}
