import { status } from '@grpc/grpc-js';
import { RpcError } from './rpc-error.js';

// Fault injection for reliability tests, set at start (options.faults) or at any time through
// the server handle (server.faults.set / clear / dropConnections).
export interface FaultSettings {
  /** Added to every call before it is handled. */
  latencyMs?: number;
  /** The next N calls fail with RESOURCE_EXHAUSTED. */
  throttleNext?: number;
  /** Every Nth call fails with RESOURCE_EXHAUSTED. */
  throttleEvery?: number;
  /** The next N calls get no answer: the server drops the client's connection instead. */
  dropNext?: number;
  /** Limit the faults to these RPC names (PascalCase, e.g. "Encrypt"); all RPCs when absent. */
  methods?: string[];
}

export interface FaultController {
  set(settings: FaultSettings): void;
  clear(): void;
  /** Drops every open client connection now. */
  dropConnections(): void;
}

export type FaultDecision = { kind: 'none' } | { kind: 'drop' } | { kind: 'throttle'; error: RpcError };

export class Faults {
  private settings: FaultSettings = {};
  private seen = 0;

  constructor(initial: FaultSettings | undefined) {
    if (initial) this.set(initial);
  }

  set(settings: FaultSettings): void {
    this.settings = { ...settings };
    this.seen = 0;
  }

  clear(): void {
    this.set({});
  }

  latencyFor(method: string): number {
    return this.applies(method) ? (this.settings.latencyMs ?? 0) : 0;
  }

  decide(method: string): FaultDecision {
    if (!this.applies(method)) return { kind: 'none' };
    const s = this.settings;
    this.seen++;
    if (s.dropNext && s.dropNext > 0) {
      s.dropNext--;
      return { kind: 'drop' };
    }
    const throttled =
      (s.throttleNext !== undefined && s.throttleNext > 0) ||
      (s.throttleEvery !== undefined && s.throttleEvery > 0 && this.seen % s.throttleEvery === 0);
    if (s.throttleNext !== undefined && s.throttleNext > 0) s.throttleNext--;
    if (!throttled) return { kind: 'none' };
    return {
      kind: 'throttle',
      error: new RpcError(
        status.RESOURCE_EXHAUSTED,
        "Quota exceeded for quota metric 'Cryptographic requests' of service 'cloudkms.googleapis.com'.",
      ),
    };
  }

  private applies(method: string): boolean {
    return this.settings.methods === undefined || this.settings.methods.includes(method);
  }
}
