/**
 * How a failure is shown: its code, the key URI, what to do next, and (with --verbose) the
 * chain of causes. Messages come from keyport's own errors, which never carry plaintext, key
 * bytes or context values; causes from SDKs are shown by name and message only, cut short.
 */
import { AuditFailure, type ErrorCode, escapeControl, KeyportError, toKeyportError } from '@keyport/core';
import { type CliError, type CliErrorCode, findCliError, quotePath } from './cli-errors.js';
import { credentialProblem, redact } from './credentials.js';
import { exitCodeFor } from './exit-codes.js';

/** A usage or configuration problem found by the CLI itself (exit 2). */
export function usageError(message: string): KeyportError {
  return new KeyportError('InvalidArgument', message);
}

const NEXT_STEP: Readonly<Record<ErrorCode, string>> = {
  NotFound:
    'check the key URI ("keyport keys list <provider>") and that the config names the right keystore or endpoint',
  AlreadyExists: 'pick another name, or "keyport keys describe" the existing key',
  AccessDenied:
    'check the credentials (KEYPORT_LOCAL_PASSPHRASE or passphraseFile, the Vault token, the PKCS#11 PIN, cloud credentials) and the grants on the key',
  InvalidArgument: 'see "keyport <command> --help" and the config file reference in the README',
  InvalidCiphertext:
    'the input is not a keyport/ESDK message for these keys, was modified, or its context does not match',
  KeyStateConflict:
    'the key is disabled, pending deletion or the version destroyed: "keyport keys describe <uri>"',
  Unsupported: 'this provider cannot do that: "keyport capabilities"',
  Throttled: 'the provider is rate limiting: retry later or lower --jobs',
  Unavailable: 'is the provider reachable? run "keyport doctor"',
  Timeout: 'the provider did not answer in time: run "keyport doctor" or raise --timeout',
  Aborted: 'the operation was interrupted; run it again (migrations resume from their journal)',
  Integrity: 'the data failed verification: do not trust it; restore from a known-good copy',
  Internal: 'run again with --verbose and report the cause',
};

export function nextStep(code: ErrorCode): string {
  return NEXT_STEP[code];
}

/**
 * A command refused because its audit log could not be opened or written (fail-closed): the
 * provider is fine, so "is the provider reachable?" would send the user to the wrong place.
 */
const AUDIT_NEXT_STEP: Readonly<Partial<Record<ErrorCode, string>>> = {
  Unavailable:
    'the audit log cannot be written: check the free space and permissions of the audit log, its directory and its .lock, or set audit.onFailure: warn to run without it',
  Integrity:
    'the audit log failed its check: "keyport audit verify" says where; move a tampered log aside (with its .anchor) to start a new one',
};

/** Wraps a failure to open the configured audit log so the report names the log. */
export function auditLogFailure(error: unknown, log: string): KeyportError {
  if (findCliError(error) !== undefined) return toKeyportError(error);
  const e = toKeyportError(error);
  return new AuditFailure(e.code, `the audit log ${quotePath(log)}: ${e.message}`, { cause: e });
}

function causeChain(error: unknown, secrets: readonly string[] = []): string[] {
  return rawCauseChain(error).map((line) => redact(line, secrets));
}

function rawCauseChain(error: unknown): string[] {
  const lines: string[] = [];
  let current: unknown = error instanceof Error ? error.cause : undefined;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    if (current instanceof AggregateError) {
      for (const inner of current.errors) lines.push(...describeOne(inner));
      break;
    }
    lines.push(...describeOne(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return lines;
}

/**
 * One cause, control characters escaped: an SDK's or Node's message quotes what it was given (a
 * file name, a server's reply) as it is, and a terminal would act on escape sequences in it.
 */
function describeOne(e: unknown): string[] {
  if (e instanceof Error) {
    const code = e instanceof KeyportError ? ` [${e.code}]` : '';
    return [escapeControl(`${e.name}${code}: ${e.message.slice(0, 300)}`)];
  }
  return [escapeControl(String(e).slice(0, 300))];
}

export interface ErrorReport {
  readonly code: ErrorCode | CliErrorCode;
  readonly exitCode: number;
  readonly message: string;
  readonly keyUri?: string;
  readonly provider?: string;
  readonly requestId?: string;
  readonly path?: string;
  readonly next: string;
  readonly causes?: readonly string[];
}

/**
 * What to show for a failure. `secrets` (values from the environment, see credentials.ts) are
 * removed from every cause shown with --verbose, as are tokens and other secret-looking text.
 */
export function errorReport(error: unknown, verbose: boolean, secrets: readonly string[] = []): ErrorReport {
  const cli = findCliError(error);
  if (cli !== undefined) return cliReport(cli, verbose, secrets);
  const e = toKeyportError(error);
  // Missing or expired cloud credentials are an authentication failure, whatever the adapter said.
  const creds =
    e.code === 'AccessDenied' || e.code === 'Internal' || e.code === 'Unavailable'
      ? credentialProblem(e)
      : undefined;
  if (creds !== undefined) {
    return {
      code: 'AccessDenied',
      exitCode: exitCodeFor('AccessDenied'),
      message: `the ${creds.sdk} SDK has no usable credentials (${redact(creds.detail, secrets)})`,
      ...(e.keyUri !== undefined ? { keyUri: e.keyUri } : {}),
      ...(e.provider !== undefined ? { provider: e.provider } : {}),
      next: creds.hint,
      ...(verbose ? { causes: causeChain(e, secrets) } : {}),
    };
  }
  return {
    code: e.code,
    exitCode: exitCodeFor(e.code),
    message: e.message,
    ...(e.keyUri !== undefined ? { keyUri: e.keyUri } : {}),
    ...(e.provider !== undefined ? { provider: e.provider } : {}),
    ...(e.requestId !== undefined ? { requestId: e.requestId } : {}),
    next: (e instanceof AuditFailure ? AUDIT_NEXT_STEP[e.code] : undefined) ?? nextStep(e.code),
    ...(verbose ? { causes: causeChain(e, secrets) } : {}),
  };
}

function cliReport(e: CliError, verbose: boolean, secrets: readonly string[]): ErrorReport {
  return {
    code: e.code,
    exitCode: e.exitCode,
    message: e.message,
    ...(e.path !== undefined ? { path: e.path } : {}),
    next: e.next,
    ...(verbose ? { causes: causeChain(e, secrets) } : {}),
  };
}

export function formatErrorReport(r: ErrorReport, paint: (s: string) => string): string {
  const lines = [`${paint(`error ${r.code}`)}: ${r.message}`];
  if (r.keyUri !== undefined) lines.push(`  key:        ${r.keyUri}`);
  if (r.path !== undefined) lines.push(`  path:       ${quotePath(r.path)}`);
  if (r.provider !== undefined) lines.push(`  provider:   ${r.provider}`);
  if (r.requestId !== undefined) lines.push(`  request id: ${r.requestId}`);
  lines.push(`  next:       ${r.next}`);
  for (const c of r.causes ?? []) lines.push(`  cause:      ${c}`);
  if (r.causes === undefined) lines.push('  (run with --verbose for the cause)');
  return `${lines.join('\n')}\n`;
}
