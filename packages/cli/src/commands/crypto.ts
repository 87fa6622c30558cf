/**
 * `encrypt`, `decrypt` and `rewrap`: envelope messages (AWS Encryption SDK format v2) through
 * the envelope's streaming API, so memory stays bounded whatever the size. A file output is
 * written to a temp file, fsynced and renamed: a failure leaves no partial file; decrypt's gets
 * no group or other permission bits, even when it replaces a file that had them. On stdout,
 * decrypt releases each frame once its tag verifies; a failure mid-way exits non-zero.
 */

import { stat } from 'node:fs/promises';
import {
  contextKeys,
  type EncryptionContext,
  escapeControl,
  type KeyOperations,
  KeyportError,
  quote,
} from '@keyport/core';
import {
  DEFAULT_LIMITS,
  type EncryptedDataKey,
  isAwsAccountId,
  isAwsPartition,
  isGcpProject,
  kmsRecipient,
  type MessageInfo,
  openStream,
  rewrapStream,
  sealStream,
  type TrustEntry,
} from '@keyport/envelope';
import type { Command } from 'commander';
import { Option } from 'commander';
import { collect, parsePairs, positiveInt, REPRODUCED_CONTEXT_HELP, reproducedContext } from '../args.js';
import { CliError, findCliError, quotePath } from '../cli-errors.js';
import { parseInstanceKey } from '../config/schema.js';
import { usageError } from '../errors.js';
import { abortable } from '../files/abortable.js';
import { NOTHING_WRITTEN, type OpenedInput, openInputFile, stdinInput } from '../files/input-file.js';
import { checkOutput, writeOutputFile } from '../files/output-file.js';
import { writeChunk, writeText } from '../io.js';
import { peekPrefix } from '../migrate/header-peek.js';
import type { Act } from '../program.js';
import { counted, startProgress } from '../progress.js';
import type { Session } from '../session.js';

const isStd = (p: string | undefined): boolean => p === undefined || p === '-';

/** An output path in the human summary: control characters escaped (a file name may hold any). */
const shownPath = (p: string | undefined): string => escapeControl(p ?? '-');

interface OutputFlags {
  readonly output?: string;
  readonly force: boolean;
  readonly inPlace: boolean;
  readonly progress: boolean;
}

/**
 * A file path of the command line, absolute, keeping a trailing "/": resolve() drops it, so
 * `a.txt/` was read as the file a.txt (where the system says ENOTDIR) and `-o backups/`, meant
 * as a directory that did not exist, created a file named backups holding the output.
 */
function filePath(s: Session, p: string): string {
  const full = s.path(p);
  return p.endsWith('/') && !full.endsWith('/') ? `${full}/` : full;
}

/** Where the bytes go: undefined for stdout, else the file path (the input's with --in-place). */
function outputPath(
  s: Session,
  inPath: string | undefined,
  o: OutputFlags,
  command: string,
): string | undefined {
  // '' (an unset shell variable) would name the working directory: a mistake, said as one.
  if (inPath === '' || o.output === '')
    throw usageError(`${command}: an empty file name (use "-" for ${inPath === '' ? 'stdin' : 'stdout'})`);
  if (o.inPlace) {
    if (isStd(inPath)) throw usageError(`${command} --in-place needs an input file, not stdin`);
    if (o.output !== undefined) throw usageError(`${command}: give either -o or --in-place, not both`);
    return filePath(s, inPath as string);
  }
  if (isStd(o.output)) return undefined;
  const out = filePath(s, o.output as string);
  if (out.endsWith('/')) {
    throw new CliError(
      'IsADirectory',
      `refusing to write ${quotePath(out)}: a name ending in "/" is a directory (name the file in it)`,
      { path: out },
    );
  }
  return out;
}

async function openInput(s: Session, path: string | undefined, inPlace: boolean): Promise<OpenedInput> {
  return isStd(path)
    ? stdinInput(s.io.stdin)
    : openInputFile(filePath(s, path as string), { toReplace: inPlace });
}

/** Checks the output before any provider work, then runs `produce` and writes its bytes. */
async function withOutput(
  command: string,
  s: Session,
  inPath: string | undefined,
  outPath: string | undefined,
  o: OutputFlags,
  produce: (input: OpenedInput) => AsyncIterable<Uint8Array>,
  /** The bytes are plaintext: an output file gets no group or other access (output-file.ts). */
  plaintext = false,
): Promise<number> {
  // Opening a FIFO (or a device) may block until a writer comes, so one whose output can only
  // be refused (--in-place on the FIFO itself, an existing -o without --force) would hang: the
  // output is checked first, against the input's stat(2), which does not block. Checked again
  // below with the opened input's identity. A missing or unreadable input is reported when it
  // is opened, as for regular files.
  if (outPath !== undefined && !isStd(inPath)) {
    const inputStat = await stat(filePath(s, inPath as string)).catch(() => undefined);
    if (inputStat !== undefined && !inputStat.isFile() && !inputStat.isDirectory()) {
      await checkOutput(outPath, { force: o.force, inPlace: o.inPlace, input: inputStat });
    }
  }
  const input = await openInput(s, inPath, o.inPlace);
  try {
    // The input's state is fstat(2) of the descriptor read: with --in-place, the file is replaced
    // only if it is still in that state right before the rename (output-file.ts).
    const fileOptions = {
      force: o.force,
      inPlace: o.inPlace,
      plaintext,
      ...(input.stat !== undefined ? { input: input.stat } : {}),
      ...(s.io.signal !== undefined ? { signal: s.io.signal } : {}),
      onNote: (text: string) => void s.out.note(text),
    };
    if (outPath !== undefined) await checkOutput(outPath, fileOptions);
    const signal = s.io.signal;
    const progress = await startProgress(s, {
      command,
      unit: 'bytes',
      total: input.size,
      enabled: o.progress,
    });
    const read = counted(abortable(input.data, signal), progress);
    const data = abortable(produce({ ...input, data: read }), signal);
    try {
      if (outPath !== undefined) return await writeOutputFile(outPath, data, fileOptions);
      let bytes = 0;
      try {
        for await (const chunk of data) {
          await writeChunk(s.io.stdout, chunk);
          bytes += chunk.length;
        }
      } catch (error) {
        throw bytes > 0 ? afterPartialOutput(error, command, bytes) : error;
      }
      return bytes;
    } finally {
      progress.finish();
    }
  } finally {
    await input.close();
  }
}

/**
 * A failure after part of the output reached stdout (a later frame's tag, or a signed message's
 * footer signature, fails): the reader already has those bytes, so the error says how many and
 * that they are void. Without this, `decrypt m.enc > out` of a signed message whose signature
 * fails left all but its last frame in `out` with only "the message signature does not verify"
 * on stderr. Signals and file-system errors (CliError) keep their own report.
 */
function afterPartialOutput(error: unknown, command: string, bytes: number): unknown {
  const what = command === 'decrypt' ? 'bytes of plaintext' : 'bytes';
  // An input that changed while read says "nothing was written": true of an output file, not of
  // stdout, where the reader already has part of a message (or plaintext) that must be dropped.
  const changed = findCliError(error);
  if (changed?.code === 'FileChanged' && changed.message.endsWith(NOTHING_WRITTEN)) {
    return new CliError(
      'FileChanged',
      `${changed.message.slice(0, -NOTHING_WRITTEN.length)}${bytes} ${what} had already been written to stdout: discard that output; run again once nothing writes to it`,
      { ...(changed.path !== undefined ? { path: changed.path } : {}), cause: error },
    );
  }
  if (!(error instanceof KeyportError) || findCliError(error) !== undefined) return error;
  return new KeyportError(
    error.code,
    `${error.message} (${bytes} ${what} had already been written to stdout before this failure: discard that output)`,
    {
      cause: error,
      provider: error.provider,
      keyUri: error.keyUri,
      requestId: error.requestId,
      retryable: error.retryable,
    },
  );
}

function addOutputOptions(cmd: Command, what: string, plaintext = false): Command {
  return cmd
    .option('-o, --output <file>', `where ${what} goes ("-" or none: stdout)`)
    .option('-f, --force', 'replace the output file if it exists (a regular file only)', false)
    .option(
      '--in-place',
      plaintext
        ? "replace the input file (its owner's permission bits are kept; none for group or others)"
        : 'replace the input file (its mode is kept)',
      false,
    )
    .option('--no-progress', 'no progress display (a bar on a terminal, events with --json)');
}

/** More than any header keyport reads (the envelope's own bound on a header is smaller). */
const MAX_PEEKED_HEADER = 1024 * 1024;

/**
 * `source` as it is, telling `found` the message's encrypted data keys once its first bytes hold
 * the header (nothing when they never do: the envelope then reports what is wrong).
 */
async function* tapEdks(
  source: AsyncIterable<Uint8Array>,
  found: (edks: readonly EncryptedDataKey[]) => void,
): AsyncGenerator<Uint8Array, void, undefined> {
  let head: Buffer | undefined = Buffer.alloc(0);
  for await (const chunk of source) {
    if (head !== undefined) {
      head = Buffer.concat([head, chunk]);
      const peeked = peekPrefix(head, false);
      if (peeked?.kind === 'envelope') found(peeked.edks);
      if (peeked !== undefined || head.length > MAX_PEEKED_HEADER) head = undefined;
    }
    yield chunk;
  }
}

function refuseBinaryOnTerminal(s: Session, path: string | undefined, what: string): void {
  if (path === undefined && s.io.stdoutIsTTY) {
    throw usageError(`refusing to write ${what} to a terminal: use -o <file> or a pipe`);
  }
}

/**
 * A message is binary: one read from a terminal (`keyport decrypt -k <uri> -o out`, the file
 * name forgotten) can only be a mistake, and the command sat waiting for input no one can type,
 * a progress bar at 0 B on stderr. Refused before any key is unlocked. (`encrypt` still reads a
 * terminal: typed text, ended by Ctrl-D, is a plaintext like any other.)
 */
function refuseMessageFromTerminal(s: Session, inPath: string | undefined, command: string): void {
  if (isStd(inPath) && (s.io.stdin as { isTTY?: unknown }).isTTY === true) {
    throw usageError(
      `${command}: refusing to read a message from a terminal: name the message file, or pipe or redirect it to stdin`,
    );
  }
}

/** The JSON summary goes to stderr when stdout carries the data. */
async function summary(
  s: Session,
  outPath: string | undefined,
  value: Readonly<Record<string, unknown>>,
  human: string,
): Promise<void> {
  if (outPath === undefined) {
    if (s.out.json) await writeText(s.io.stderr, `${JSON.stringify({ result: value })}\n`);
    return;
  }
  await s.out.result(value, human);
}

/**
 * The keys a caller trusts, always named by the caller: `--key` URIs, or with
 * `--trust-configured` any key of a configured provider that the message names (discovery).
 * Neither is a usage error: an envelope is opened only with keys the caller chose, never with
 * "whatever key the message names".
 */
async function trustAndKeys(
  s: Session,
  keyUris: readonly string[],
  o: DiscoveryFlags,
  command: string,
): Promise<{ trust: TrustEntry[]; keys: KeyOperations }> {
  const trustConfigured = o.trustConfigured;
  if (keyUris.length > 0 && trustConfigured) {
    throw usageError(`${command}: give either -k/--key <uri> or --trust-configured, not both`);
  }
  const filtered = o.discoveryAccount.length > 0 || o.discoveryPartition !== undefined;
  const projects = o.discoveryProject;
  if ((filtered || projects.length > 0) && !trustConfigured) {
    throw usageError(
      `${command}: --discovery-account, --discovery-partition and --discovery-project narrow --trust-configured`,
    );
  }
  // Checked here, by flag, before any provider is built or the output looked at (the envelope
  // checks them again, naming its own options).
  for (const account of o.discoveryAccount) {
    if (!isAwsAccountId(account)) {
      throw usageError(
        `${command}: --discovery-account ${quote(account)} is not an AWS account id (12 digits)`,
      );
    }
  }
  if (o.discoveryPartition !== undefined && !isAwsPartition(o.discoveryPartition)) {
    throw usageError(
      `${command}: --discovery-partition ${quote(o.discoveryPartition)} is not an AWS partition (aws, aws-cn, aws-us-gov, ...)`,
    );
  }
  for (const project of projects) {
    if (!isGcpProject(project)) {
      throw usageError(
        `${command}: --discovery-project ${quote(project)} is not a Cloud KMS project id or number`,
      );
    }
  }
  if (filtered && o.discoveryAccount.length === 0) {
    throw usageError(`${command}: --discovery-partition needs the accounts too (--discovery-account <id>)`);
  }
  if (keyUris.length > 0) return { trust: [...keyUris], keys: await s.keys(keyUris) };
  if (!trustConfigured) {
    throw usageError(
      `${command} needs the keys you trust: -k/--key <uri> (repeatable), or --trust-configured to accept any key of a configured provider that the message names`,
    );
  }
  const { keys, failures } = await s.allKeys();
  const { config } = await s.config();
  const schemes = Object.keys(config.providers).filter((p) => !failures.has(p));
  if (schemes.length === 0) throw [...failures.values()][0] ?? usageError('no provider could be built');
  // `aws-kms` and its named instances (`aws-kms+dr`): each one discovers through itself.
  const isAws = (name: string) => parseInstanceKey(name)?.scheme === 'aws-kms';
  if (filtered && !schemes.some(isAws)) {
    // Configured but not built: its own error, not "not configured".
    const failed = [...failures.keys()].find(isAws);
    if (failed !== undefined) throw failures.get(failed);
    throw usageError(
      `${command}: --discovery-account filters aws-kms keys, and no aws-kms provider is configured`,
    );
  }
  const isGcp = (name: string) => parseInstanceKey(name)?.scheme === 'gcp-kms';
  if (projects.length > 0 && !schemes.some(isGcp)) {
    const failed = [...failures.keys()].find(isGcp);
    if (failed !== undefined) throw failures.get(failed);
    throw usageError(
      `${command}: --discovery-project filters gcp-kms keys, and no gcp-kms provider is configured`,
    );
  }
  // Discovery limited to the given AWS accounts (the ESDK's discovery filter) and Cloud KMS
  // projects: a message cannot make this command call another account's or project's key with
  // the caller's credentials.
  const awsFilter = filtered
    ? { accounts: o.discoveryAccount, partition: o.discoveryPartition ?? 'aws' }
    : {};
  const gcpFilter = projects.length > 0 ? { projects } : {};
  return {
    trust: schemes.map((anyKeyOf) =>
      isAws(anyKeyOf)
        ? { anyKeyOf, ...awsFilter }
        : isGcp(anyKeyOf)
          ? { anyKeyOf, ...gcpFilter }
          : { anyKeyOf },
    ),
    keys,
  };
}

interface DiscoveryFlags {
  trustConfigured: boolean;
  discoveryAccount: string[];
  discoveryPartition?: string;
  discoveryProject: string[];
}

/** The flags of `--trust-configured` and its aws-kms discovery filter, on decrypt and rewrap. */
function discoveryOptions(command: Command): Command {
  return command
    .option('--trust-configured', TRUST_CONFIGURED_HELP, false)
    .option(
      '--discovery-account <id>',
      'with --trust-configured: only aws-kms keys of this AWS account (repeatable; the ESDK discovery filter)',
      collect,
      [],
    )
    .option('--discovery-partition <name>', 'with --discovery-account: the AWS partition (default aws)')
    .option(
      '--discovery-project <id>',
      'with --trust-configured: only gcp-kms keys of this Cloud KMS project (repeatable)',
      collect,
      [],
    );
}

const TRUST_CONFIGURED_HELP =
  'trust any key of a configured provider that the message names (discovery); without it, name the keys with -k';

/**
 * `--require-context`: every pair of the message's context was given. A `--reproduced-context`
 * pair is given too: the message does not store it, the caller supplied it (and the key and the
 * header's tag proved it), so it is never "a key not given".
 */
function exactContextCheck(
  required: EncryptionContext,
  reproduced: EncryptionContext = {},
): (info: MessageInfo) => void {
  return (info) => {
    const extra = Object.keys(info.context).filter(
      (k) => !k.startsWith('aws-crypto-') && !Object.hasOwn(required, k) && !Object.hasOwn(reproduced, k),
    );
    if (extra.length > 0) {
      throw new KeyportError(
        'InvalidCiphertext',
        `the message's context has keys not given with --context: ${extra.join(', ')}`,
      );
    }
  };
}

export function registerCryptoCommands(program: Command, act: Act): void {
  addOutputOptions(
    program
      .command('encrypt')
      .description('seal a file or stdin into an envelope message for one or more recipients')
      .argument('[input]', 'file to encrypt (default: stdin)'),
    'the message',
  )
    .option(
      '-r, --recipient <uri>',
      'key URI of a recipient (repeatable; default: defaults.recipients)',
      collect,
      [],
    )
    .option('--context <k=v>', 'encryption context pair (repeatable); authenticated, not secret', collect, [])
    .option(
      '--context-not-stored <key>',
      'a --context key whose pair is authenticated but not written into the message (repeatable); decrypt then needs it as --reproduced-context',
      collect,
      [],
    )
    .addOption(new Option('--suite <id>', 'algorithm suite').choices(['0x0478', '0x0578']).default('0x0478'))
    .option('--frame-length <bytes>', 'frame length')
    .action(
      act(async (s, cmd) => {
        const o = cmd.opts<
          OutputFlags & {
            recipient: string[];
            context: string[];
            contextNotStored: string[];
            suite: string;
            frameLength?: string;
          }
        >();
        const given = o.recipient.length > 0 ? o.recipient : ((await s.defaults()).recipients ?? []);
        if (given.length === 0) throw usageError('encrypt needs at least one --recipient <uri>');
        // Each key once: a key named twice (`-r k -r k`, or by a relative and an absolute path)
        // was wrapped for twice, a KMS call and an EDK more, toward the 16 EDKs open reads.
        const recipients = [...new Set(await s.uris(given, o.recipient.length > 0 ? 'cwd' : 'config'))];
        const inPath = cmd.args[0];
        const outPath = outputPath(s, inPath, o, 'encrypt');
        refuseBinaryOnTerminal(s, outPath, 'ciphertext');
        const context = parsePairs(o.context, '--context');
        // Refused by flag before any key is unlocked or file created (the envelope would name
        // its option, `contextNotStored[0]`).
        for (const key of o.contextNotStored) {
          if (!Object.hasOwn(context, key)) {
            throw usageError(
              `--context-not-stored ${quote(key)} names no --context key (give the pair as --context <key>=<value>)`,
            );
          }
        }
        const frameLength =
          o.frameLength !== undefined
            ? positiveInt(o.frameLength, '--frame-length', DEFAULT_LIMITS.maxFrameLength)
            : undefined;
        const keys = await s.keys(recipients);
        const bytes = await withOutput(cmd.name(), s, inPath, outPath, o, (input) =>
          sealStream(input.data, {
            recipients,
            context,
            ...(o.contextNotStored.length > 0 ? { contextNotStored: o.contextNotStored } : {}),
            keys,
            suite: o.suite === '0x0578' ? 0x0578 : 0x0478,
            ...(frameLength !== undefined ? { frameLength } : {}),
            ...s.callOptions,
          }),
        );
        await summary(
          s,
          outPath,
          { ok: true, output: outPath ?? '-', bytes, recipients, contextKeys: contextKeys(context) },
          `encrypted -> ${shownPath(outPath)} (${bytes} bytes, ${recipients.length} recipient${recipients.length > 1 ? 's' : ''})`,
        );
        return undefined;
      }),
    );

  discoveryOptions(
    addOutputOptions(
      program
        .command('decrypt')
        .description('open an envelope message (file or stdin)')
        .argument('[input]', 'message file (default: stdin)'),
      'the plaintext',
      true,
    ).option(
      '-k, --key <uri>',
      'a key you trust to open the message (repeatable; tried in order)',
      collect,
      [],
    ),
  )
    .option('--context <k=v>', 'pair the message context must contain (repeatable)', collect, [])
    .option('--require-context', 'the message context must be exactly the --context pairs', false)
    .option('--reproduced-context <k=v>', REPRODUCED_CONTEXT_HELP, collect, [])
    .action(
      act(async (s, cmd) => {
        const o = cmd.opts<
          OutputFlags &
            DiscoveryFlags & {
              key: string[];
              context: string[];
              requireContext: boolean;
              reproducedContext: string[];
            }
        >();
        const inPath = cmd.args[0];
        const outPath = outputPath(s, inPath, o, 'decrypt');
        refuseBinaryOnTerminal(s, outPath, 'plaintext');
        refuseMessageFromTerminal(s, inPath, 'decrypt');
        const required = parsePairs(o.context, '--context');
        const reproduced = reproducedContext(o.reproducedContext);
        if (
          o.requireContext &&
          Object.keys(required).length === 0 &&
          reproduced.reproducedContext === undefined
        ) {
          throw usageError(
            '--require-context needs the expected pairs as --context k=v (or --reproduced-context k=v)',
          );
        }
        const { trust, keys } = await trustAndKeys(s, await s.uris(o.key), o, 'decrypt');
        let info: MessageInfo | undefined;
        const check = o.requireContext
          ? exactContextCheck(required, reproduced.reproducedContext)
          : undefined;
        const bytes = await withOutput(
          cmd.name(),
          s,
          inPath,
          outPath,
          o,
          (input) =>
            openStream(input.data, {
              trust,
              keys,
              requiredContext: required,
              ...reproduced,
              onHeader: (i) => {
                check?.(i);
                info = i;
              },
              ...s.callOptions,
            }),
          true,
        );
        await summary(
          s,
          outPath,
          {
            ok: true,
            output: outPath ?? '-',
            bytes,
            contextKeys: contextKeys(info?.context),
            recipients: info?.providerIds ?? [],
          },
          `decrypted -> ${shownPath(outPath)} (${bytes} bytes)`,
        );
        return undefined;
      }),
    );

  discoveryOptions(
    addOutputOptions(
      program
        .command('rewrap')
        .description('add and/or remove recipients of a message without touching its body')
        .argument('<input>', 'message file ("-" for stdin)'),
      'the new message',
    )
      .option('--add <uri>', 'recipient to add (repeatable)', collect, [])
      .option('--remove <uri>', 'recipient to remove (repeatable)', collect, [])
      .option('-k, --key <uri>', 'a key you trust to unwrap the data key (repeatable)', collect, []),
  )
    .option('--reproduced-context <k=v>', REPRODUCED_CONTEXT_HELP, collect, [])
    .action(
      act(async (s, cmd) => {
        const o = cmd.opts<
          OutputFlags &
            DiscoveryFlags & {
              add: string[];
              remove: string[];
              key: string[];
              reproducedContext: string[];
            }
        >();
        if (o.add.length === 0 && o.remove.length === 0)
          throw usageError('rewrap needs --add <uri> and/or --remove <uri>');
        const inPath = cmd.args[0] as string;
        const outPath = outputPath(s, inPath, o, 'rewrap');
        refuseBinaryOnTerminal(s, outPath, 'ciphertext');
        refuseMessageFromTerminal(s, inPath, 'rewrap');
        const add = [...new Set(await s.uris(o.add))];
        const remove = [...new Set(await s.uris(o.remove))];
        const { trust, keys } = await trustAndKeys(s, await s.uris(o.key), o, 'rewrap');
        await s.keys([...add, ...remove]);
        let edks: readonly EncryptedDataKey[] | undefined;
        const bytes = await withOutput(cmd.name(), s, inPath, outPath, o, (input) =>
          rewrapStream(
            tapEdks(input.data, (found) => (edks = found)),
            {
              trust,
              keys,
              add,
              remove,
              ...reproducedContext(o.reproducedContext),
              ...s.callOptions,
            },
          ),
        );
        // What was removed is what the message carried: a `--remove` naming no recipient of it (a
        // typo, another key's URI) removed nothing, and the summary said "-1 recipients" while
        // whoever the rewrap was meant to shut out could still open the message.
        const removed = remove.filter((uri) => edks?.some((e) => kmsRecipient(uri).matches(e)) ?? true);
        const notRecipients = remove.filter((uri) => !removed.includes(uri));
        for (const uri of notRecipients)
          await s.out.note(
            `--remove ${quote(uri)} is not a recipient of the message: nothing was removed for it`,
          );
        await summary(
          s,
          outPath,
          {
            ok: true,
            output: outPath ?? '-',
            bytes,
            added: add,
            removed,
            ...(notRecipients.length > 0 ? { notRecipients } : {}),
          },
          `rewrapped -> ${shownPath(outPath)} (+${add.length} -${removed.length} recipients, body unchanged)`,
        );
        return undefined;
      }),
    );
}
