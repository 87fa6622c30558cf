/**
 * Audit: one event per operation, sent to every registered sink. Events carry the context's
 * keys and a keyed digest, never its values, and never key material or plaintext.
 *
 * The JSONL sink and its verifier live in audit-sink.ts and audit-verify.ts; the record format
 * in audit-record.ts; the anchor of the chain head and its KMS signature in audit-anchor.ts.
 */
import type { Operation } from './capabilities.js';
import type { ErrorCode } from './errors.js';

export interface AuditEvent {
  readonly ts: string;
  readonly op: Operation;
  readonly provider: string;
  readonly keyUri: string | undefined;
  readonly keyVersion: string | undefined;
  readonly outcome: 'success' | 'failure';
  readonly errorCode: ErrorCode | undefined;
  readonly durationMs: number;
  readonly attempts: number;
  readonly requestId: string | undefined;
  readonly contextKeys: readonly string[];
  readonly contextDigest: string | undefined;
}

export interface AuditSink {
  /** Resolves (or returns) once the event is recorded; rejects (or throws) when it cannot be. */
  write(event: AuditEvent): void | Promise<void>;
  close?(): Promise<void>;
  /**
   * A secret a sink offers for keying context digests (the JSONL sink derives one from its
   * audit key), used by the client when it is given no `auditDigestKey` of its own.
   */
  readonly contextDigestKey?: Uint8Array;
}

/** Keeps events in memory; handy for tests and for printing a session's trail. */
export class MemoryAuditSink implements AuditSink {
  readonly events: AuditEvent[] = [];
  write(event: AuditEvent): void {
    this.events.push(event);
  }
}
