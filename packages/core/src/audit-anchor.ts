/**
 * The anchor of an audit log: how many records it holds, their byte length and the MAC of the
 * last one (the chain head), kept in `<log>.anchor`, MACed, and replaced atomically (temp file,
 * fsync, rename, directory fsync) after every append. A log that ends before its anchor was
 * truncated; records after it were appended behind the sink's back.
 *
 * The anchor sits beside the log, so whoever can replace both files and holds the key can roll
 * both back together. A *signed* anchor closes that: `signAuditAnchor` has a KMS signing key
 * sign `count` and `head`, and the signature is kept wherever the log's writer cannot reach;
 * `verifySignedAuditAnchor` checks it before a log is compared with it.
 */
import { constants, type Stats } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { GENESIS_MAC, hmacHex, macEquals } from './audit-record.js';
import type { KeyOperations } from './client-api.js';
import { KeyportError } from './errors.js';
import { tempPathBeside } from './exclusive-file.js';
import { type CallOptions, SIGNING_ALGORITHMS, type SigningAlgorithm } from './types.js';

export interface AuditHead {
  /** Records in the log. */
  readonly count: number;
  /** MAC of the last record, or 64 zeros for an empty log. */
  readonly head: string;
}

export interface AuditAnchor extends AuditHead {
  /** Bytes of the log up to and including the last record's newline. */
  readonly size: number;
}

const HEX64 = /^[0-9a-f]{64}$/;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export const anchorPathFor = (log: string): string => `${log}.anchor`;

function anchorBody(a: AuditAnchor): string {
  return JSON.stringify({ v: 1, count: a.count, size: a.size, head: a.head });
}

export function formatAnchor(key: Uint8Array, a: AuditAnchor): string {
  const body = anchorBody(a);
  return `${body.slice(0, -1)},"mac":"${hmacHex(key, body)}"}\n`;
}

/** The anchor in `text`, or why it is unusable: not the exact format, or a MAC that fails. */
export function parseAnchor(
  key: Uint8Array,
  text: string,
): { ok: true; anchor: AuditAnchor } | { ok: false; reason: 'malformed' | 'bad-mac' } {
  const m = /^(\{"v":1,.*),"mac":"([0-9a-f]{64})"\}\n$/.exec(text);
  if (m === null) return { ok: false, reason: 'malformed' };
  const body = `${m[1]}}`;
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(body) as Record<string, unknown>;
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const { count, size, head } = raw;
  if (!isCount(count) || !isCount(size) || typeof head !== 'string' || !HEX64.test(head)) {
    return { ok: false, reason: 'malformed' };
  }
  const anchor = { count, size, head };
  if (anchorBody(anchor) !== body || (count === 0) !== (head === GENESIS_MAC)) {
    return { ok: false, reason: 'malformed' };
  }
  if (!macEquals(hmacHex(key, body), m[2] as string)) return { ok: false, reason: 'bad-mac' };
  return { ok: true, anchor };
}

const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A small regular file's text, or undefined when absent; refuses symlinks, FIFOs and devices. */
export async function readRegularFile(path: string, maxBytes: number): Promise<string | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, READ_FLAGS);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw notRegular(path);
    throw e;
  }
  try {
    const stat: Stats = await handle.stat();
    if (!stat.isFile()) throw notRegular(path);
    if (stat.size > maxBytes) {
      throw new KeyportError('Integrity', `${basename(path)} is larger than an audit file can be`);
    }
    return (await handle.readFile()).toString('utf8');
  } finally {
    await handle.close();
  }
}

export function notRegular(path: string): KeyportError {
  return new KeyportError(
    'InvalidArgument',
    `${basename(path)} is not a regular file (symlink, FIFO or device)`,
  );
}

/**
 * Replaces `path` with `text` atomically: temp file, fsync, rename. The directory is fsynced
 * only with `syncDir`: for the anchor, a rename lost to a power cut leaves the previous anchor,
 * and the records after it are re-anchored on the next open (the log itself was fsynced first).
 */
export async function writeFileAtomic(
  path: string,
  text: string,
  o: { syncDir?: boolean } = {},
): Promise<void> {
  const temp = tempPathBeside(path);
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
  if (o.syncDir === true) await syncDirectory(dirname(path));
}

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY).catch(() => undefined);
  if (handle === undefined) return;
  try {
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Signed anchors

/** A chain head signed by a KMS key: portable evidence kept away from the log. */
export interface SignedAuditAnchor extends AuditHead {
  readonly v: 1;
  readonly keyUri: string;
  readonly keyVersion: string | null;
  readonly algorithm: SigningAlgorithm;
  readonly signedAt: string;
  /** Base64 signature over `auditAnchorStatement(count, head)`. */
  readonly signature: string;
}

/** The exact bytes a signed anchor signs: a fixed text so nothing else can be passed off as one. */
export function auditAnchorStatement(h: AuditHead): Uint8Array {
  return new TextEncoder().encode(`keyport audit anchor v1\ncount ${h.count}\nhead ${h.head}\n`);
}

/** Signs a chain head with a KMS signing key through the client (so through any provider). */
export async function signAuditAnchor(
  keys: Pick<KeyOperations, 'sign'>,
  keyUri: string,
  head: AuditHead,
  o: CallOptions & { algorithm?: SigningAlgorithm } = {},
): Promise<SignedAuditAnchor> {
  if (!isCount(head.count) || typeof head.head !== 'string' || !HEX64.test(head.head)) {
    throw new KeyportError('InvalidArgument', 'an audit head is a record count and a 64-hex-digit MAC');
  }
  const result = await keys.sign(keyUri, auditAnchorStatement(head), o);
  return {
    v: 1,
    count: head.count,
    head: head.head,
    keyUri,
    keyVersion: result.keyVersion ?? null,
    algorithm: result.algorithm,
    signedAt: new Date().toISOString(),
    signature: Buffer.from(result.signature).toString('base64'),
  };
}

const SIGNED_FIELDS = ['v', 'count', 'head', 'keyUri', 'keyVersion', 'algorithm', 'signedAt', 'signature'];
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Parses a signed anchor document strictly (exact field set and types); InvalidArgument otherwise. */
export function parseSignedAuditAnchor(text: string): SignedAuditAnchor {
  const bad = (why: string): never => {
    throw new KeyportError('InvalidArgument', `not a signed audit anchor: ${why}`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return bad('not JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad('not an object');
  const r = raw as Record<string, unknown>;
  const keys = Object.keys(r);
  if (keys.length !== SIGNED_FIELDS.length || !SIGNED_FIELDS.every((k) => Object.hasOwn(r, k))) {
    return bad(`fields must be exactly ${SIGNED_FIELDS.join(', ')}`);
  }
  if (r.v !== 1) bad('unknown version');
  if (!isCount(r.count)) bad('count is not a non-negative integer');
  if (typeof r.head !== 'string' || !HEX64.test(r.head)) bad('head is not 64 lowercase hex digits');
  if (typeof r.keyUri !== 'string' || r.keyUri.length === 0) bad('keyUri is not a string');
  if (r.keyVersion !== null && typeof r.keyVersion !== 'string') bad('keyVersion is not a string or null');
  if (!(SIGNING_ALGORITHMS as readonly unknown[]).includes(r.algorithm)) bad('unknown algorithm');
  if (typeof r.signedAt !== 'string' || Number.isNaN(Date.parse(r.signedAt))) bad('signedAt is not a date');
  if (typeof r.signature !== 'string' || r.signature.length === 0 || !BASE64.test(r.signature)) {
    bad('signature is not base64');
  }
  return r as unknown as SignedAuditAnchor;
}

/**
 * Checks a signed anchor's signature with the key the caller expects (never the key the
 * document names by itself: an attacker can sign with a key of their own). Returns the signed
 * head; throws `Integrity` when the signature does not verify or names another key.
 */
export async function verifySignedAuditAnchor(
  keys: Pick<KeyOperations, 'verify'>,
  signed: SignedAuditAnchor,
  expectedKeyUri: string,
  o: CallOptions = {},
): Promise<AuditHead> {
  if (signed.keyUri !== expectedKeyUri) {
    throw new KeyportError('Integrity', 'the audit anchor was signed by another key than the expected one', {
      keyUri: expectedKeyUri,
    });
  }
  const ref = signed.keyVersion === null ? signed.keyUri : { uri: signed.keyUri, version: signed.keyVersion };
  const valid = await keys.verify(
    ref,
    auditAnchorStatement(signed),
    new Uint8Array(Buffer.from(signed.signature, 'base64')),
    { ...o, algorithm: signed.algorithm },
  );
  if (!valid) {
    throw new KeyportError('Integrity', 'the audit anchor signature does not verify', {
      keyUri: signed.keyUri,
    });
  }
  return { count: signed.count, head: signed.head };
}
