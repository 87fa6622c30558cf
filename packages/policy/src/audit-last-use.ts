/**
 * Last use of each key from a keyport JSONL audit log. The log is verified first with core's
 * verifier (MACs, chain, anchor); a log that does not verify is refused, because a forged or
 * truncated log could make a used key look idle or an idle one look used. Only the records
 * the verification covered are read, so appends made meanwhile are not taken unverified.
 */
import { readFile } from 'node:fs/promises';
import {
  checkBytes,
  checkOptions,
  checkString,
  KeyportError,
  verifyAuditLog,
  verifyAuditText,
} from '@keyport/core';

/** Operations that use key material (describe, list and management calls do not count). */
const USE_OPERATIONS: ReadonlySet<string> = new Set([
  'encrypt',
  'decrypt',
  'generateDataKey',
  'sign',
  'verify',
  'mac',
  'verifyMac',
  'getPublicKey',
]);

export interface AuditLastUse {
  /** Key URI (without version) → ISO time of its last successful use. */
  readonly lastUse: ReadonlyMap<string, string>;
  /** Time of the first event in the log: before it, the log knows nothing. null when empty. */
  readonly since: string | null;
}

export interface AuditLogSource {
  readonly path: string;
  /** The audit HMAC key the log was written with. */
  readonly key: Uint8Array;
}

const AUDIT_LOG_SOURCE = { path: true, key: true } as const satisfies Record<keyof AuditLogSource, true>;

/**
 * `{ path, key }`, checked: a misspelt field is refused naming it (never its value: the key is
 * the audit HMAC secret), a wrong type names the field. Returns a prototype-free copy.
 */
export function checkAuditLogSource(value: unknown, option: string): AuditLogSource {
  const o = checkOptions(value, option, AUDIT_LOG_SOURCE);
  return {
    path: checkString(o.path, `${option}.path`, { min: 1 }),
    key: checkBytes(o.key, `${option}.key`),
  };
}

export async function readAuditLastUse(source: AuditLogSource): Promise<AuditLastUse> {
  const log = checkAuditLogSource(source, 'log');
  const verification = await verifyAuditLog(log.path, log.key);
  if (!verification.ok) {
    const p = verification.problem;
    throw new KeyportError(
      'Integrity',
      `the audit log does not verify${p !== undefined ? ` (${p.kind} at line ${p.line})` : ''}; last use cannot be taken from it`,
    );
  }
  const text = await readFile(log.path, 'utf8');
  const lines = text.split('\n').slice(0, verification.records);
  // The log is read again here, after the verification and outside the writers' lock: a file
  // swapped in between (by whoever can write it, the party the MACs are there to catch) would be
  // read unverified. The lines read must be the chain that verified: every MAC holds up to the
  // same head (the anchor, checked above, is not read again: a missing one is expected here).
  const again = verifyAuditText(lines.map((l) => `${l}\n`).join(''), log.key, undefined);
  if (
    (!again.ok && again.problem?.kind !== 'anchor-missing') ||
    again.head.count !== verification.head.count ||
    again.head.head !== verification.head.head
  ) {
    throw new KeyportError(
      'Integrity',
      'the audit log changed between its verification and its reading; last use cannot be taken from it',
    );
  }
  const lastUse = new Map<string, string>();
  let since: string | null = null;
  for (const line of lines) {
    const record = JSON.parse(line) as {
      event?: { ts: string; op: string; keyUri: string | null; outcome: string };
    };
    const event = record.event;
    if (event === undefined) continue;
    since ??= event.ts;
    if (event.outcome !== 'success' || event.keyUri === null || !USE_OPERATIONS.has(event.op)) continue;
    const uri = stripVersion(event.keyUri);
    const seen = lastUse.get(uri);
    if (seen === undefined || seen < event.ts) lastUse.set(uri, event.ts);
  }
  return { lastUse, since };
}

/** Audit events name the key as called, possibly pinned to a version by a suffix or query. */
function stripVersion(uri: string): string {
  return uri
    .replace(/[?&]version=[^&#]*/, '')
    .replace(/\/cryptoKeyVersions\/[^/?#]+$/, '')
    .replace(/\?$/, '');
}
