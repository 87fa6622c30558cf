/**
 * Which operations may be sent to a provider a second time, as data. The call policy retries on
 * retryable codes (policy.ts); for an operation whose repetition is not harmless, a retry after
 * an *ambiguous* failure — the attempt timed out, the connection broke, the server failed after
 * the request may have reached it — could do the work twice: two new versions, a second grant
 * nobody learns the id of (access nobody revokes), a second key. Such an operation is retried only
 * after failures that certainly had no effect; after an ambiguous one the call ends, with the
 * attempt's code, not retryable, and a message saying what to check before trying again.
 */
import { isDriverOperationName, type NeutralOperation, type Operation } from './capabilities.js';
import { unsentRequestCode } from './error-table.js';
import { KeyportError, quote } from './errors.js';

/**
 * `harmless`: a second request changes nothing the first did not (a read, an answer computed
 * afresh that the provider keeps nothing of, a state set to the same value, something removed
 * once). `once`: a second request does the work again.
 */
export type RepeatRule =
  | { readonly repeat: 'harmless' }
  | {
      readonly repeat: 'once';
      /** What a second request would do, for the error message. */
      readonly risk: string;
      /** What the caller checks before trying again, for the error message. */
      readonly check: string;
      /**
       * Schemes whose provider keys the work by a name the request carries, so a second request
       * is refused or answered with what the first made (never a second one): retried as
       * `harmless` there.
       */
      readonly harmlessOn?: readonly string[];
    };

const HARMLESS: RepeatRule = { repeat: 'harmless' };

/** Every neutral operation (the type makes the table complete), one row each. */
const NEUTRAL_RULES: Readonly<Record<NeutralOperation, RepeatRule>> = {
  createKey: {
    repeat: 'once',
    risk: 'make a second key',
    check: 'look the key up by the name you gave (describeKey or listKeys) before creating it again',
    // Keys named at creation: a second creation of the name is AlreadyExists (the local
    // keystore) or answered with the key the first made when this provider instance made it
    // (Cloud KMS, Vault transit, PKCS#11, Key Vault: each recognises its own random marker).
    // AWS KMS names a key with an alias after CreateKey: the adapter schedules the deletion of a
    // key whose naming was cut off before it answers, so a repeat leaves one named key; a lost
    // CreateKey answer leaves an unnamed, unused key whether or not the call is repeated. A
    // third-party driver's creation keyport cannot judge.
    harmlessOn: ['aws-kms', 'gcp-kms', 'azurekeyvault', 'hcvault', 'local', 'pkcs11'],
  },
  describeKey: HARMLESS,
  listKeys: HARMLESS,
  rotateKey: {
    repeat: 'once',
    risk: 'add another new version',
    check: 'describe the key and compare its primary version before rotating again',
  },
  // The same policy set again.
  setRotationPolicy: HARMLESS,
  // A state set again.
  enableKey: HARMLESS,
  disableKey: HARMLESS,
  // The same deletion scheduled (or refused as already pending: the call then answers with the
  // key's state, see CallSpec.confirmRepeat), cancelled, destroyed again.
  scheduleKeyDeletion: HARMLESS,
  cancelKeyDeletion: HARMLESS,
  destroyKeyVersion: HARMLESS,
  // Answers computed afresh; the provider keeps nothing of a lost one.
  encrypt: HARMLESS,
  decrypt: HARMLESS,
  generateDataKey: HARMLESS,
  sign: HARMLESS,
  verify: HARMLESS,
  mac: HARMLESS,
  verifyMac: HARMLESS,
  getPublicKey: HARMLESS,
  createGrant: {
    repeat: 'once',
    risk: 'make a second grant whose id you would never learn',
    check: "list the key's grants (and revoke any you do not expect) before granting again",
  },
  listGrants: HARMLESS,
  // A grant revoked twice is revoked once.
  revokeGrant: HARMLESS,
  // Fresh wrapping parameters; ones nobody uses expire on their own.
  getImportParameters: HARMLESS,
  importKeyMaterial: {
    repeat: 'once',
    risk: 'add another version',
    check: 'describe the key (its versions and primary version) before importing again',
  },
};

/**
 * Operations only one built-in driver offers (`Keyport.driverCall`/`instanceCall`), by the name
 * audit events give them. A driver operation not listed (a third-party driver's) keeps its retries:
 * keyport cannot judge it.
 */
const DRIVER_RULES: Readonly<Record<string, RepeatRule>> = {
  // A new ciphertext or data key; nothing kept.
  'aws-kms:reEncrypt': HARMLESS,
  'aws-kms:generateDataKeyWithoutPlaintext': HARMLESS,
  // Removed once.
  'aws-kms:retireGrant': HARMLESS,
  'aws-kms:deleteImportedKeyMaterial': HARMLESS,
  'azurekeyvault:purgeDeletedKey': HARMLESS,
  'azurekeyvault:backupKey': HARMLESS,
  // A restored name is taken: a repeat is refused (Conflict), it makes no second key.
  'azurekeyvault:restoreKey': HARMLESS,
  'azurekeyvault:setValidity': HARMLESS,
  // Key Vault adds a version for every import under one name.
  'azurekeyvault:importJwk': {
    repeat: 'once',
    risk: 'add another version',
    check: 'describe the key (its versions) before importing again',
  },
  'gcp-kms:restoreKeyVersion': HARMLESS,
  'hcvault:deleteKey': HARMLESS,
  'hcvault:rewrap': HARMLESS,
};

/** What a driver's own `once` declaration says (core knows nothing more of the operation). */
const DECLARED_ONCE: RepeatRule = {
  repeat: 'once',
  risk: 'carry it out a second time',
  check: "check the provider's state before trying again",
};

/** The rule for `op` run by `driver`: its own declaration (`repeats`) first, then core's table. */
export function repeatRule(
  op: Operation,
  driver: { readonly scheme: string; readonly repeats?: Readonly<Record<string, unknown>> },
): RepeatRule {
  const own = op.startsWith(`${driver.scheme}:`) ? op.slice(driver.scheme.length + 1) : op;
  const declared =
    driver.repeats !== undefined && Object.hasOwn(driver.repeats, own) ? driver.repeats[own] : undefined;
  const rule: RepeatRule | undefined = Object.hasOwn(NEUTRAL_RULES, op)
    ? NEUTRAL_RULES[op as NeutralOperation]
    : Object.hasOwn(DRIVER_RULES, op)
      ? DRIVER_RULES[op]
      : undefined;
  if (declared === 'harmless') return HARMLESS;
  if (declared === 'once') return rule?.repeat === 'once' ? { ...rule, harmlessOn: [] } : DECLARED_ONCE;
  if (rule === undefined || rule.repeat === 'harmless') return HARMLESS;
  return rule.harmlessOn?.includes(driver.scheme) === true ? HARMLESS : rule;
}

/** A driver's `repeats` declaration, checked when it is registered. */
export function checkRepeats(driver: { readonly repeats?: unknown }, instance: string): void {
  const repeats = driver.repeats;
  if (repeats === undefined) return;
  const bad = (why: string) =>
    new KeyportError('InvalidArgument', `instance ${quote(instance)}: driver.repeats ${why}`);
  if (typeof repeats !== 'object' || repeats === null || Array.isArray(repeats))
    throw bad("is a record of operation names, each 'harmless' or 'once'");
  for (const [name, kind] of Object.entries(repeats)) {
    if (!isDriverOperationName(name)) throw bad(`names an operation ${quote(name)}: letters and digits`);
    if (kind !== 'harmless' && kind !== 'once') throw bad(`[${quote(name)}] is 'harmless' or 'once'`);
  }
}

/**
 * Whether a failed attempt certainly did nothing: the provider answered that it throttled the
 * request (it refused it, and refusing is all it did), or the request never left this process
 * (the connection was never made: refused, no DNS answer, connect timed out).
 */
export function certainlyWithoutEffect(error: KeyportError): boolean {
  return error.code === 'Throttled' || unsentRequestCode(error) !== undefined;
}

/**
 * Whether the provider refused the attempt for the key's (or its name's) state: a refusal did
 * nothing. A driver marks KeyStateConflict retryable only for a state that passes (Key Vault: a
 * key still being deleted or recovered, a name whose purge is still completing), so a retry once
 * it passed is as safe as the first attempt was. Only settleOnce reads it; a repeat that may find
 * the work done (CallSpec.confirmRepeat) keeps its own, wider rule.
 */
function refusedForState(error: KeyportError): boolean {
  return error.code === 'KeyStateConflict';
}

/**
 * What a failed attempt of an operation that must not run twice leaves the call with: the error
 * as it is when the attempt certainly did nothing (retried if retryable), was refused for a state
 * (a retryable one is retried once the state passes) or failed plainly (a refusal, or a failure
 * the driver already marked final: not retried anyway); otherwise — any
 * failure a retry would have followed, or the call's own deadline cutting the attempt off
 * (`cutOff`) — the same code, not retryable, saying it may have taken effect and what to check.
 * The attempt's error is the cause; the message names no input (URIs, grantees, names).
 */
export function settleOnce(
  op: Operation,
  rule: RepeatRule,
  error: KeyportError,
  cutOff: boolean,
): KeyportError {
  if (rule.repeat === 'harmless' || certainlyWithoutEffect(error) || refusedForState(error)) return error;
  if (!error.retryable && !(cutOff && error.code === 'Timeout')) return error;
  const failure = error.code === 'Timeout' ? 'timed out' : `failed (${error.code})`;
  return new KeyportError(
    error.code,
    `${op} ${failure} and may have taken effect on the provider; keyport did not repeat it ` +
      `(a repeat could ${rule.risk}): ${rule.check}`,
    {
      provider: error.provider,
      keyUri: error.keyUri,
      requestId: error.requestId,
      retryable: false,
      cause: error,
    },
  );
}
