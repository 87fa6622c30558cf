/**
 * `keyport audit verify [log]`: checks a JSONL audit log — every record's MAC, the chain, the
 * anchor of the head — and optionally a signed head (`--anchor-signature`).
 * `keyport audit anchor [log] --key <uri>`: has a KMS signing key sign the verified head, so the
 * evidence does not rest on files the log's writer can also edit.
 *
 * Both default to the config's `audit` section (log, key file, anchor key) and never write to
 * the log they examine: their own KMS calls (sign, verify) go through a client without it.
 */

import { stat } from 'node:fs/promises';
import {
  type AuditHead,
  type AuditVerification,
  parseSignedAuditAnchor,
  SIGNING_ALGORITHMS,
  type SigningAlgorithm,
  signAuditAnchor,
  verifyAuditLog,
  verifySignedAuditAnchor,
} from '@keyport/core';
import { type Command, Option } from 'commander';
import { CliError, fileError, quotePath } from '../cli-errors.js';
import { usageError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { sameInode } from '../files/identity.js';
import { writeOutputFile } from '../files/output-file.js';
import { FileTooLarge, readBounded, readFailure } from '../files/read-bounded.js';
import { writeText } from '../io.js';
import type { Act } from '../program.js';
import { auditPaths, readHmacKey, type Session } from '../session.js';

/** A signed anchor is a small JSON document. */
const MAX_ANCHOR_BYTES = 1024 * 1024;

interface AuditTarget {
  readonly log: string;
  readonly keyFile: string;
  readonly key: Uint8Array;
  readonly anchorKey: string | undefined;
}

/**
 * `audit anchor -o <file> --force` naming the log or its key file (a slip of the finger, or a
 * hard link to one) would replace the very thing the anchor vouches for: refused (exit 12).
 */
async function refuseOverwritingAudit(out: string, t: AuditTarget): Promise<void> {
  const outStat = await stat(out).catch(() => undefined);
  if (outStat === undefined) return;
  for (const [path, what] of [
    [t.log, 'the audit log'],
    [t.keyFile, "the audit log's key file"],
  ] as const) {
    const st = await stat(path).catch(() => undefined);
    if (st !== undefined && sameInode(st, outStat)) {
      throw new CliError(
        'FileExists',
        `refusing to write the anchor to ${quotePath(out)}: it is ${what}${path === out ? '' : ` ${quotePath(path)}`} (choose another -o)`,
        { path: out },
      );
    }
  }
}

/** The log, its key and the anchor signing key: from flags, else from the config. */
async function target(
  s: Session,
  logArg: string | undefined,
  keyFileFlag: string | undefined,
): Promise<AuditTarget> {
  const loaded = await s.optionalConfig();
  const configured = loaded?.config.audit;
  const paths =
    configured === undefined || loaded === undefined ? undefined : auditPaths(configured, loaded.dir);
  const log = logArg !== undefined ? s.path(logArg) : paths?.log;
  if (log === undefined) {
    throw usageError('name the audit log (`keyport audit verify <log>`) or configure `audit.log`');
  }
  // A log that is missing, unreadable or a directory is the file error it is (exit 8, 9, 10),
  // not a KMS NotFound whose next step is "check the key URI".
  const st = await stat(log).catch((e: unknown) => {
    throw fileError(e, log, 'cannot read the audit log');
  });
  if (st.isDirectory()) {
    throw new CliError('IsADirectory', `cannot read the audit log ${quotePath(log)}: it is a directory`, {
      path: log,
    });
  }
  // Verifying never generates a key: the log's own (configured, or <log>.key) must exist.
  const keyFile =
    keyFileFlag !== undefined
      ? s.path(keyFileFlag)
      : ((log === paths?.log ? paths.keyFile : undefined) ?? `${log}.key`);
  return { log, keyFile, key: await readHmacKey(keyFile), anchorKey: configured?.anchorKey };
}

function describe(s: Session, v: AuditVerification): string[] {
  if (!v.ok) {
    return [
      `${s.out.paint('red', 'FAILED')}: ${v.problem?.kind} at line ${v.problem?.line}: ${v.problem?.detail}`,
    ];
  }
  const lines = [
    `${s.out.paint('green', 'ok')}: ${v.records} records (${v.events} events), head ${v.head.head.slice(0, 16)}… anchored`,
  ];
  if (v.signed !== undefined)
    lines.push(`  signed head at record ${v.signed.count} verifies and the log extends it`);
  for (const n of v.notices) {
    lines.push(
      n.type === 'audit.recovered'
        ? `  note: line ${n.line}: recovered after a crash at ${n.ts} (${n.tornBytes} torn bytes cut, ${n.adoptedRecords} records re-anchored)`
        : `  note: line ${n.line}: ${n.events} events could not be written at ${n.ts} (their operations failed or warned)`,
    );
  }
  return lines;
}

export function registerAuditCommands(program: Command, act: Act): void {
  const audit = program.command('audit').description('audit logs: verify them, sign their head');
  audit
    .command('verify')
    .description(
      'verify a JSONL audit log: record MACs, chain, anchored head, and a signed head with --anchor-signature (exit 6 when it fails)',
    )
    .argument('[log]', 'the audit log file (default: the config’s audit.log)')
    .option('--key-file <file>', 'the audit key file (default: the config’s audit.keyFile, else <log>.key)')
    .option(
      '--anchor-signature <file>',
      'a signed head written by `keyport audit anchor`: the log must extend it',
    )
    .option('--signing-key <uri>', 'the key that must have signed it (default: the config’s audit.anchorKey)')
    .action(
      act(async (s, cmd) => {
        const o = cmd.opts<{ keyFile?: string; anchorSignature?: string; signingKey?: string }>();
        const t = await target(s, cmd.args[0], o.keyFile);
        let signed: AuditHead | undefined;
        try {
          if (o.anchorSignature !== undefined) {
            const expected = o.signingKey ?? t.anchorKey;
            if (expected === undefined) {
              throw usageError(
                'say which key must have signed the anchor: --signing-key <uri> or audit.anchorKey',
              );
            }
            const path = s.path(o.anchorSignature);
            const text = await readBounded(path, MAX_ANCHOR_BYTES).catch((e: unknown) => {
              throw e instanceof FileTooLarge
                ? usageError(`the signed anchor ${path} is ${readFailure(e)}: not a signed anchor`)
                : fileError(e, path, 'cannot read the signed anchor');
            });
            const document = parseSignedAuditAnchor(text.toString('utf8'));
            const keys = await s.keysUnaudited([expected]);
            signed = await verifySignedAuditAnchor(keys, document, expected, s.callOptions);
          }
          const result = await verifyAuditLog(t.log, t.key, signed === undefined ? {} : { signed });
          await s.out.result({ log: t.log, ...result }, describe(s, result));
          return result.ok ? EXIT.ok : EXIT.integrity;
        } finally {
          t.key.fill(0);
        }
      }),
    );

  audit
    .command('anchor')
    .description('sign the verified head of an audit log (count + head MAC) with a KMS signing key')
    .argument('[log]', 'the audit log file (default: the config’s audit.log)')
    .option('--key-file <file>', 'the audit key file (default: the config’s audit.keyFile, else <log>.key)')
    .option('-k, --key <uri>', 'the signing key (default: the config’s audit.anchorKey)')
    .addOption(
      new Option('--algorithm <alg>', 'signing algorithm (default: the key’s)').choices(SIGNING_ALGORITHMS),
    )
    .option(
      '-o, --out <file>',
      'write the signed head here (default: stdout); keep it where the log’s writer cannot',
    )
    .option('-f, --force', 'replace the output file if it exists (a regular file only)', false)
    .action(
      act(async (s, cmd) => {
        const o = cmd.opts<{
          keyFile?: string;
          key?: string;
          algorithm?: SigningAlgorithm;
          out?: string;
          force: boolean;
        }>();
        const t = await target(s, cmd.args[0], o.keyFile);
        // Before any signing: a refused output costs no provider call.
        if (o.out !== undefined) {
          await refuseOverwritingAudit(s.path(o.out), t).catch((e: unknown) => {
            t.key.fill(0);
            throw e;
          });
        }
        const keyUri = o.key ?? t.anchorKey;
        if (keyUri === undefined) throw usageError('say which key signs: --key <uri> or audit.anchorKey');
        let verified: AuditVerification;
        try {
          verified = await verifyAuditLog(t.log, t.key);
        } finally {
          t.key.fill(0);
        }
        if (!verified.ok) {
          await s.out.result({ log: t.log, ...verified }, [
            ...describe(s, verified),
            'refusing to sign the head of a log that does not verify',
          ]);
          return EXIT.integrity;
        }
        const keys = await s.keysUnaudited([keyUri]);
        const signed = await signAuditAnchor(keys, keyUri, verified.head, {
          ...s.callOptions,
          ...(o.algorithm !== undefined ? { algorithm: o.algorithm } : {}),
        });
        const document = `${JSON.stringify(signed, null, 2)}\n`;
        if (o.out === undefined) {
          await writeText(s.io.stdout, document);
          return EXIT.ok;
        }
        await writeOutputFile(
          s.path(o.out),
          (async function* () {
            yield Buffer.from(document);
          })(),
          { force: o.force, mode: 0o644 },
        );
        await s.out.result(
          { log: t.log, out: s.path(o.out), ...signed },
          `${s.out.paint('green', 'signed')} head at record ${signed.count} with ${keyUri} -> ${o.out}`,
        );
        return EXIT.ok;
      }),
    );
}
