/**
 * Last use of each key from a keyport JSONL audit log. The log is verified first with core's
 * verifier (MACs, chain, anchor); a log that does not verify is refused, because a forged or
 * truncated log could make a used key look idle or an idle one look used. The events are taken
 * in the verification's own pass, so only records it verified count.
 */
import {
  checkBytes,
  checkOptions,
  checkString,
  KeyportError,
  parseKeyRef,
  verifyAuditLog,
  withKeyVersion,
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
  // Gathered in the verification's own pass (under the writers' lock, one line in memory at a
  // time): what is counted is exactly the chain that verified, and a log of any size is read
  // once. (It was read again, whole, into one string: past V8's ~512 MiB string limit, a long
  // service's log could not be read at all.) Kept only if the whole log verifies.
  // By the URI as called; versions are taken off once per distinct URI below, not per event.
  const asCalled = new Map<string, string>();
  let since: string | null = null;
  const verification = await verifyAuditLog(log.path, log.key, {
    onEvent(event) {
      since ??= event.ts;
      if (event.outcome !== 'success' || event.keyUri === undefined || !USE_OPERATIONS.has(event.op)) return;
      const seen = asCalled.get(event.keyUri);
      if (seen === undefined || seen < event.ts) asCalled.set(event.keyUri, event.ts);
    },
  });
  if (!verification.ok) {
    const p = verification.problem;
    throw new KeyportError(
      'Integrity',
      `the audit log does not verify${p !== undefined ? ` (${p.kind} at line ${p.line})` : ''}; last use cannot be taken from it`,
    );
  }
  const lastUse = new Map<string, string>();
  for (const [uri, ts] of asCalled) {
    const key = unversioned(uri);
    const seen = lastUse.get(key);
    if (seen === undefined || seen < ts) lastUse.set(key, ts);
  }
  return { lastUse, since };
}

/**
 * The key an audit event's URI names, without the version it may pin: events name the key as
 * called, and a caller verifying an old signature or decrypting under an old version pins it.
 * Each scheme spells the version its own way (`?version=`, `/cryptoKeyVersions/n`, Key Vault's
 * `/keys/<name>/<version>`, PKCS#11's `x-version=`), so a URI still pinned after the query and
 * Cloud KMS forms are taken off is unpinned by its scheme's grammar (core's `withKeyVersion`).
 * Left as is, a key used only through its versions read as never used.
 */
function unversioned(uri: string): string {
  const stripped = uri
    .replace(/[?&]version=[^&#]*/, '')
    .replace(/\/cryptoKeyVersions\/[^/?#]+$/, '')
    .replace(/\?$/, '');
  try {
    return parseKeyRef(stripped).version === undefined ? stripped : withKeyVersion(stripped, undefined);
  } catch {
    // A scheme no driver of this process registered, or a URI its grammar refuses: the name as
    // it stands (an unmatched name makes the unused-keys rule answer unknown for its scheme).
    return stripped;
  }
}
