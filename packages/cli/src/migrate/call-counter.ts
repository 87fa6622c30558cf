/**
 * Counts provider calls a migration makes, by role: calls on the `--from` key, calls on the
 * `--to` key, and what else (by scheme). Wraps a `KeyOperations` without changing it: every
 * method is passed through, and the three the envelope calls per file are counted.
 */
import { type KeyLike, type KeyOperations, withKeyVersion } from '@keyport/core';

const COUNTED = new Set(['encrypt', 'decrypt', 'generateDataKey']);
const MAX_REMEMBERED_URIS = 64;

export class CallCounter {
  readonly counts = new Map<string, number>();
  private readonly from: string;
  private readonly to: string;
  /** The role of each URI seen (URI parsing is most of what counting costs). */
  private readonly roles = new Map<string, string>();

  constructor(from: string, to: string) {
    this.from = base(from);
    this.to = base(to);
  }

  add(role: 'from' | 'to' | string, op: string, n = 1): void {
    const k = `${role}:${op}`;
    this.counts.set(k, (this.counts.get(k) ?? 0) + n);
  }

  roleOf(key: KeyLike): string {
    const uri = typeof key === 'string' ? key : key.uri;
    const known = this.roles.get(uri);
    if (known !== undefined) return known;
    const b = base(uri);
    const role = b === this.from ? 'from' : b === this.to ? 'to' : uri.slice(0, uri.indexOf(':'));
    // A run names a handful of URIs (the two keys, a pinned version or two): each is parsed
    // once, not at every call. Bounded all the same.
    if (this.roles.size < MAX_REMEMBERED_URIS) this.roles.set(uri, role);
    return role;
  }

  total(role?: string, ops?: readonly string[]): number {
    let n = 0;
    for (const [k, v] of this.counts) {
      const [r, op] = k.split(':') as [string, string];
      if ((role === undefined || r === role) && (ops === undefined || ops.includes(op))) n += v;
    }
    return n;
  }

  /** The same client, counting encrypt / decrypt / generateDataKey. */
  wrap<K extends KeyOperations>(keys: K): K {
    return new Proxy(keys, {
      get: (target, prop, receiver) => {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (typeof prop !== 'string' || !COUNTED.has(prop) || typeof value !== 'function') return value;
        return (key: KeyLike, ...rest: unknown[]) => {
          this.add(this.roleOf(key), prop);
          return (value as (...a: unknown[]) => unknown).call(target, key, ...rest);
        };
      },
    });
  }
}

function base(uri: string): string {
  try {
    return withKeyVersion(uri, undefined);
  } catch {
    return uri;
  }
}
