import type { IamPolicies } from './iam.js';
import type { KmsState } from './model.js';

/** What one RPC handler sees: the shared state, the time of the call and who is calling. */
export interface CallContext {
  readonly state: KmsState;
  readonly iam: IamPolicies;
  readonly now: Date;
  /** The principal named by the call (see README-gcp.md), undefined for the project owner. */
  readonly principal: string | undefined;
  /** PERMISSION_DENIED unless the caller holds `permission` on `resource`. */
  authorize(resource: string, permission: string): void;
}

export type Handler = (request: unknown, ctx: CallContext) => unknown;
