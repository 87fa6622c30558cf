// The server's state as JSON, for --state: key rings, keys with versions and material, import
// jobs, retired resources, operations and IAM policies.
import { decode, encode } from '../shared/codec.js';
import type { IamPolicies } from './iam.js';
import type { KmsState } from './model.js';

const FORMAT = 'keyport-cloud-kms-state/1';
const TABLES = ['keyRings', 'cryptoKeys', 'importJobs', 'retired', 'retiredNames', 'operations'] as const;

export function saveKms(state: KmsState, iam: IamPolicies): unknown {
  const out: Record<string, unknown> = { format: FORMAT, iam: encode(iam.snapshot()) };
  for (const t of TABLES) out[t] = encode(state[t]);
  return out;
}

export function loadKms(state: KmsState, iam: IamPolicies, saved: unknown): void {
  const s = saved as Record<string, unknown>;
  if (s?.format !== FORMAT) throw new Error('not a Cloud KMS test server state file');
  for (const t of TABLES) {
    const table = decode(s[t]);
    const target = state[t] as Map<unknown, unknown> | Set<unknown>;
    if (target instanceof Map && table instanceof Map) for (const [k, v] of table) target.set(k, v);
    else if (target instanceof Set && table instanceof Set) for (const v of table) target.add(v);
    else throw new Error(`the state file's ${t} table is malformed`);
  }
  iam.restore(decode(s.iam) as Parameters<IamPolicies['restore']>[0]);
}
