/**
 * BYOK through Cloud KMS import jobs: getImportParameters creates an import job
 * (RSA_OAEP_3072_SHA256_AES_256 or RSA_OAEP_4096_SHA256_AES_256) in the key's ring and waits for
 * its wrapping key; importKeyMaterial sends the wrapped material with ImportCryptoKeyVersion.
 * The import token keyport hands back is the import job's resource name.
 */
import { randomBytes } from 'node:crypto';
import type { protos } from '@google-cloud/kms';
import {
  abortedWaitError,
  backoffCap,
  DEFAULT_RETRY_POLICY,
  describeType,
  type ImportKeyMaterialRequest,
  type ImportParameters,
  type ImportParametersRequest,
  KeyportError,
  type KeyRef,
  keyportError,
  type ProviderCallOptions as Opts,
  quote,
  type RetryPolicy,
  settleOrAbort,
  sleep,
} from '@keyport/core';
import { type AlgorithmField, describeKey, getKey, purposeOf, setPrimary, toDate } from './keys.js';
import { defined, own, publicKeyFromPem, type Runtime } from './rpc.js';
import { algorithmName, importJobStateName, versionStateName } from './specs.js';
import { targetOf, versionIdOf, versionName } from './uri.js';

type ImportMethodField = NonNullable<protos.google.cloud.kms.v1.IImportJob['importMethod']>;

/**
 * Pauses between polls: 150 ms doubling to 2 s (core's backoff curve). No jitter: one caller's
 * polls need no spreading, and a jittered pause near 0 would poll back to back.
 */
const POLLING: RetryPolicy = Object.freeze({ ...DEFAULT_RETRY_POLICY, baseDelayMs: 150, maxDelayMs: 2_000 });

/**
 * The longest a wait goes on by itself. Through core the call's deadline ends it sooner (60 s by
 * default, 30 s per attempt); a driver called directly may be given a signal that never fires, and
 * a service that answers PENDING for ever must not hold its caller for ever.
 */
const MAX_WAIT_MS = 60_000;

/** Resource names are quoted whole in messages (core's default cut, 80 characters, would halve them). */
const NAME_CHARS = 512;

/** Version states an import does not leave: someone else changed the version while it was pending. */
const CHANGED_BY_OTHERS: ReadonlySet<string> = new Set([
  'DISABLED',
  'DESTROY_SCHEDULED',
  'DESTROYED',
  'PENDING_EXTERNAL_DESTRUCTION',
  'EXTERNAL_DESTRUCTION_FAILED',
]);

interface Wait<T> {
  /** What is awaited, as messages name it: `import job "…"`. */
  readonly what: string;
  /** The state the wait goes on through. */
  readonly pending: string;
  readonly stateOf: (answer: T) => string;
  readonly poll: () => Promise<T>;
  /** Whether a wait that outlasted MAX_WAIT_MS may be retried (see the callers). */
  readonly retryable: boolean;
  readonly details: { readonly keyUri: string; readonly provider: string };
}

/**
 * Polls while the answer is in `pending`, and returns the first answer that is not: whatever state
 * that is, the caller decides (a state nobody documented must end the wait, not prolong it). The
 * caller's signal (its abort, core's deadline) ends the wait at once, in a pause or in a poll.
 */
async function whilePending<T>(first: T, o: Opts, w: Wait<T>): Promise<T> {
  const stopped = abortedWaitError(w.details.provider, `the wait for ${w.what}`);
  const aborted = (signal: AbortSignal): KeyportError => stopped(signal).withDetails(w.details);
  // Monotonic, as core's deadlines are: a wall-clock step must not end the wait nor stretch it.
  const started = performance.now();
  let answer = first;
  for (let n = 1; w.stateOf(answer) === w.pending; n++) {
    const left = MAX_WAIT_MS - (performance.now() - started);
    if (left <= 0) {
      const why = `${w.what} is still ${w.pending} after ${MAX_WAIT_MS / 1000} s`;
      throw new KeyportError('Timeout', why, { ...w.details, retryable: w.retryable });
    }
    // core's sleep ends as soon as the signal fires; its only other failure is a bad argument.
    await sleep(Math.ceil(Math.min(backoffCap(POLLING, n), left)), o.signal).catch((e: unknown) => {
      throw o.signal.aborted ? aborted(o.signal) : e;
    });
    // gax cancels the call when the signal fires; this stops waiting for it even where it does not.
    answer = await settleOrAbort(w.poll(), o.signal, aborted);
  }
  return answer;
}

/**
 * A state as a message names it. A name the wire gave is quoted (it may be any text, from a newer
 * API or a hostile server); a number the client could not name is shown as the number.
 */
function stateLabel(raw: unknown, name: string): string {
  if (raw === undefined || raw === null) return 'no state';
  if (typeof raw === 'string') return `state ${quote(raw)}`;
  if (typeof raw !== 'number') return `a state of type ${describeType(raw)}`;
  return name === 'UNSPECIFIED' ? `unknown state number ${raw}` : `state ${name} (${raw})`;
}

export async function getImportParameters(rt: Runtime, ref: KeyRef, req: ImportParametersRequest, o: Opts) {
  const t = targetOf(ref);
  const key = await getKey(rt, t, o);
  if (key.importOnly !== true) {
    const why = 'the key holds Cloud KMS-generated material; create it with external: true to import';
    throw new KeyportError('KeyStateConflict', why, { keyUri: t.uri });
  }
  const importJob = {
    importMethod: `RSA_OAEP_${rt.importJobKeyBits}_SHA256_AES_256` as ImportMethodField,
    protectionLevel: key.versionTemplate?.protectionLevel ?? 'SOFTWARE',
  };
  const importJobId = `kpi-${randomBytes(8).toString('hex')}`;
  const request = { parent: t.keyRing, importJobId, importJob };
  // The job is polled, and handed back as the import token, by the name keyport gave it: a
  // pending answer without a name, or naming some other job, steers nothing (the answer whose
  // wrapping key is used must name the job, below).
  const jobName = `${t.keyRing}/importJobs/${importJobId}`;
  const details = { keyUri: t.uri, provider: rt.rpc.providerName };
  const what = `import job ${quote(jobName, NAME_CHARS)}`;
  const created = await rt.rpc.call(o, (co, kms) => kms.createImportJob(request, co), t.uri);
  // The wrapping key is generated asynchronously: the job is PENDING_GENERATION until it is ACTIVE.
  const job = await whilePending(created, o, {
    what,
    pending: 'PENDING_GENERATION',
    stateOf: (j) => importJobStateName(j.state),
    poll: () => rt.rpc.call(o, (co, kms) => kms.getImportJob({ name: jobName }, co), t.uri),
    // A retry creates a new job; the stuck one expires by itself (import jobs live three days).
    retryable: true,
    details,
  });
  // The wrapping key is the job's: one from an answer naming another job (or none) would have the
  // caller wrap its key material for whoever holds that job's private key.
  if (job.name !== jobName) {
    const named = job.name ? quote(job.name, NAME_CHARS) : 'no job name';
    const why = `Cloud KMS answered ${what} with ${named}: its wrapping key is not used`;
    throw new KeyportError('Integrity', why, { ...details, retryable: true });
  }
  const state = importJobStateName(job.state);
  if (state === 'EXPIRED') throw new KeyportError('KeyStateConflict', `${what} expired`, details);
  if (state !== 'ACTIVE') {
    const why = `Cloud KMS answered ${what} with ${stateLabel(job.state, state)}, where keyport expects PENDING_GENERATION (to wait through) or ACTIVE`;
    throw new KeyportError('Internal', why, { ...details, retryable: false });
  }
  const wrapping = publicKeyFromPem(job.publicKey?.pem ?? '', 'import job wrapping key', details);
  const spki = wrapping.export({ type: 'spki', format: 'der' });
  return {
    keyUri: t.uri,
    // core has refused the wrapping algorithms the capabilities do not declare
    algorithm: req.algorithm ?? 'RSA_AES_KEY_WRAP_SHA_256',
    wrappingPublicKey: new Uint8Array(spki),
    importToken: new TextEncoder().encode(jobName),
    ...defined({ expiresAt: toDate(job.expireTime) }),
  } satisfies ImportParameters;
}

export async function importKeyMaterial(rt: Runtime, ref: KeyRef, req: ImportKeyMaterialRequest, o: Opts) {
  const t = targetOf(ref);
  if (req.algorithm !== 'RSA_AES_KEY_WRAP_SHA_256') {
    const why = `Cloud KMS import jobs do not wrap with ${req.algorithm}`;
    throw keyportError('Unsupported', why, { keyUri: t.uri, capability: 'import' });
  }
  // Cloud KMS key versions have no material expiry: an expiry is refused, never dropped (the
  // material would outlive the date the caller asked for).
  if (req.expiresAt !== undefined) {
    const why = 'Cloud KMS imported key material cannot expire';
    throw keyportError('Unsupported', why, { keyUri: t.uri, capability: 'importExpiry' });
  }
  const importJob = req.importToken === undefined ? '' : new TextDecoder().decode(req.importToken);
  if (!importJob.startsWith(`${t.keyRing}/importJobs/`)) {
    const why = 'importKeyMaterial needs the importToken getImportParameters gave for this key ring';
    throw new KeyportError('InvalidArgument', why, { keyUri: t.uri });
  }
  const key = await getKey(rt, t, o);
  const request = {
    parent: t.keyName,
    algorithm: algorithmName(key.versionTemplate?.algorithm) as AlgorithmField,
    importJob,
    wrappedKey: own(req.wrappedMaterial),
  };
  const details = { keyUri: t.uri, provider: rt.rpc.providerName };
  const imported = await rt.rpc.call(o, (co, kms) => kms.importCryptoKeyVersion(request, co), t.uri);
  // The new version is polled, and made primary, by its id under this key: an answer naming no
  // version, or a version of another key (whose id would steer both to some other version of
  // this one), is refused.
  const id = versionIdOf(imported.name);
  if (id === undefined || imported.name !== versionName(t.keyName, id)) {
    const named = imported.name
      ? `naming ${quote(imported.name, NAME_CHARS)}`
      : 'without the new version’s name';
    const why = `Cloud KMS answered ImportCryptoKeyVersion ${named}, not a version of the key; the material may have been imported: describe the key before importing again`;
    throw new KeyportError('Internal', why, { ...details, retryable: false });
  }
  const name = versionName(t.keyName, id);
  const what = `key version ${quote(name, NAME_CHARS)}`;
  const version = await whilePending(imported, o, {
    what,
    pending: 'PENDING_IMPORT',
    stateOf: (v) => versionStateName(v.state),
    poll: () => rt.rpc.call(o, (co, kms) => kms.getCryptoKeyVersion({ name }, co), t.uri),
    // Not retryable: Cloud KMS has the material and may still enable the version; a retry would
    // import it a second time, into another version.
    retryable: false,
    details,
  });
  const state = versionStateName(version.state);
  if (state === 'IMPORT_FAILED') {
    // The service's reason says what it refused (format, length), never the material it discarded.
    const reason = version.importFailureReason ? `: ${quote(version.importFailureReason, NAME_CHARS)}` : '';
    const why = `Cloud KMS did not accept the material for ${what} (IMPORT_FAILED${reason})`;
    throw new KeyportError('InvalidArgument', why, details);
  }
  if (CHANGED_BY_OTHERS.has(state)) {
    const why = `${what} became ${state} before its import finished (changed by another caller)`;
    throw new KeyportError('KeyStateConflict', why, details);
  }
  if (state !== 'ENABLED') {
    const why = `Cloud KMS answered ${what} with ${stateLabel(version.state, state)}, where keyport expects PENDING_IMPORT (to wait through) or ENABLED`;
    throw new KeyportError('Internal', why, { ...details, retryable: false });
  }
  // The imported version becomes primary even when the key has one already (material imported
  // anew): otherwise encrypt would go on under the old material and the KeyInfo (and core's
  // audit event, which records its primaryVersion as the version imported) would name the old one.
  if (purposeOf(key) === 'ENCRYPT_DECRYPT') await setPrimary(rt, t, id, o);
  return describeKey(rt, { uri: t.uri }, o);
}
