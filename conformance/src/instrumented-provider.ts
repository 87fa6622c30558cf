/**
 * A transparent wrapper around the provider under test. It records which provider methods
 * ran (so the suite can prove core refused an unsupported call before reaching the provider)
 * and can hold one call open until its signal fires (so timeout and abort are tested without
 * relying on a slow network).
 */
import {
  type Capabilities,
  type KmsProvider,
  OPERATIONS,
  type NeutralOperation as Operation,
} from '@keyport/core';

export interface InstrumentedProvider {
  readonly provider: KmsProvider;
  /** Every provider method invoked so far, in order. */
  readonly calls: Operation[];
  /**
   * The next call of `op` does not reach the provider: it waits until its signal aborts and
   * rejects with the signal's reason. Resolves with that signal once it has fired.
   */
  holdNext(op: Operation): Promise<AbortSignal>;
}

const OPERATION_NAMES: ReadonlySet<string> = new Set(OPERATIONS);

function signalOf(args: readonly unknown[]): AbortSignal | undefined {
  const last = args[args.length - 1];
  if (typeof last === 'object' && last !== null && 'signal' in last) {
    const { signal } = last as { signal: unknown };
    if (signal instanceof AbortSignal) return signal;
  }
  return undefined;
}

function holdUntilAborted(signal: AbortSignal | undefined, seen: (s: AbortSignal) => void): Promise<never> {
  return new Promise((_, reject) => {
    if (signal === undefined) {
      reject(new Error('conformance: the provider call received no AbortSignal'));
      return;
    }
    const fire = (): void => {
      seen(signal);
      reject(signal.reason);
    };
    if (signal.aborted) fire();
    else signal.addEventListener('abort', fire, { once: true });
  });
}

/** Wraps `provider`; `capabilities` overrides what it declares (used by the suite's own tests). */
export function instrumentProvider(provider: KmsProvider, capabilities?: Capabilities): InstrumentedProvider {
  const calls: Operation[] = [];
  const holds = new Map<Operation, (s: AbortSignal) => void>();
  const wrapped = new Proxy(provider, {
    get(target, prop, receiver) {
      if (prop === 'capabilities' && capabilities !== undefined) return capabilities;
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string' || typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => unknown;
      if (!OPERATION_NAMES.has(prop)) return fn.bind(target);
      const op = prop as Operation;
      return (...args: unknown[]): unknown => {
        calls.push(op);
        const seen = holds.get(op);
        if (seen !== undefined) {
          holds.delete(op);
          return holdUntilAborted(signalOf(args), seen);
        }
        return fn.apply(target, args);
      };
    },
  });
  return {
    provider: wrapped,
    calls,
    holdNext: (op) => new Promise((resolve) => holds.set(op, resolve)),
  };
}
