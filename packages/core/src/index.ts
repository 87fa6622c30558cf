export * from './audit.js';
export {
  type AuditAnchor,
  type AuditHead,
  anchorPathFor,
  auditAnchorStatement,
  parseSignedAuditAnchor,
  type SignedAuditAnchor,
  signAuditAnchor,
  verifySignedAuditAnchor,
} from './audit-anchor.js';
export * from './audit-key.js';
export type { AuditLockOptions } from './audit-lock.js';
export {
  AUDIT_FORMAT_VERSION,
  type AuditKeys,
  type AuditNotice,
  type AuditRecordBody,
  deriveAuditKeys,
  GENESIS_MAC,
  MIN_AUDIT_KEY_BYTES,
} from './audit-record.js';
export * from './audit-sink.js';
export * from './audit-verify.js';
export * from './capabilities.js';
export * from './client.js';
export type * from './client-api.js';
export * from './context.js';
export * from './errors.js';
export * from './policy.js';
export type * from './provider.js';
export * from './telemetry.js';
export * from './types.js';
export * from './uri.js';
export * from './validate.js';
