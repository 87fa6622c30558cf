/**
 * Last use of each key from a keyport JSONL audit log. The log is verified first with core's
 * verifier (MACs, chain, anchor); a log that does not verify is refused, because a forged or
 * truncated log could make a used key look idle or an idle one look used. The events are taken
 * in the verification's own pass, so only records it verified count.
 */
import { checkBytes, checkOptions, checkString, KeyportError, verifyAuditLog } from '@keyport/core';

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
  // Gathered in the verification's own pass (under the writers' lock, one line in memory at a
  // time): what is counted is exactly the chain that verified, and a log of any size is read
  // once. (It was read again, whole, into one string: past V8's ~512 MiB string limit, a long
  // service's log could not be read at all.) Kept only if the whole log verifies.
  const lastUse = new Map<string, string>();
  let since: string | null = null;
  const verification = await verifyAuditLog(log.path, log.key, {
    onEvent(event) {
      since ??= event.ts;
      if (event.outcome !== 'success' || event.keyUri === undefined || !USE_OPERATIONS.has(event.op)) return;
      const uri = stripVersion(event.keyUri);
      const seen = lastUse.get(uri);
      if (seen === undefined || seen < event.ts) lastUse.set(uri, event.ts);
    },
  });
  if (!verification.ok) {
    const p = verification.problem;
    throw new KeyportError(
      'Integrity',
      `the audit log does not verify${p !== undefined ? ` (${p.kind} at line ${p.line})` : ''}; last use cannot be taken from it`,
    );
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
