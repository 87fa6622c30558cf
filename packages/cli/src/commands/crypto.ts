/**
 * `encrypt`, `decrypt` and `rewrap`: envelope messages (AWS Encryption SDK format v2) through
 * the envelope's streaming API, so memory stays bounded whatever the size. A file output is
 * written to a temp file, fsynced and renamed: a failure leaves no partial file. On stdout,
 * decrypt releases each frame once its tag verifies; a failure mid-way exits non-zero.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { contextKeys, type EncryptionContext, type KeyOperations, KeyportError } from '@keyport/core';
import { type MessageInfo, openStream, rewrapStream, sealStream, type TrustEntry } from '@keyport/envelope';
import type { Command } from 'commander';
import { Option } from 'commander';
import { collect, parsePairs, positiveInt } from '../args.js';
import { writeFileAtomic } from '../atomic-file.js';
import { usageError } from '../errors.js';
import { writeChunk, writeText } from '../io.js';
import type { Act } from '../program.js';
import type { Session } from '../session.js';

const isStd = (p: string | undefined): boolean => p === undefined || p === '-';

function input(s: Session, path: string | undefined): AsyncIterable<Uint8Array> {
  const stream: Readable = isStd(path) ? s.io.stdin : createReadStream(s.path(path as string));
  return stream as AsyncIterable<Uint8Array>;
}

/** Sends the produced bytes to a file (atomically) or stdout; returns the byte count. */
async function output(
  s: Session,
  path: string | undefined,
  data: AsyncIterable<Uint8Array>,
): Promise<number> {
  if (!isStd(path)) return writeFileAtomic(s.path(path as string), data);
  let bytes = 0;
  for await (const chunk of data) {
    await writeChunk(s.io.stdout, chunk);
    bytes += chunk.length;
  }
  return bytes;
}

function refuseBinaryOnTerminal(s: Session, path: string | undefined, what: string): void {
  if (isStd(path) && s.io.stdoutIsTTY) {
    throw usageError(`refusing to write ${what} to a terminal: use -o <file> or a pipe`);
  }
}

/** The JSON summary goes to stderr when stdout carries the data. */
async function summary(
  s: Session,
  outPath: string | undefined,
  value: unknown,
  human: string,
): Promise<void> {
  if (isStd(outPath)) {
    if (s.out.json) await writeText(s.io.stderr, `${JSON.stringify(value)}\n`);
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
  trustConfigured: boolean,
  command: string,
): Promise<{ trust: TrustEntry[]; keys: KeyOperations }> {
  if (keyUris.length > 0 && trustConfigured) {
    throw usageError(`${command}: give either -k/--key <uri> or --trust-configured, not both`);
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
  return { trust: schemes.map((anyKeyOf) => ({ anyKeyOf })), keys };
}

const TRUST_CONFIGURED_HELP =
  'trust any key of a configured provider that the message names (discovery); without it, name the keys with -k';

function exactContextCheck(required: EncryptionContext): (info: MessageInfo) => void {
  return (info) => {
    const extra = Object.keys(info.context).filter(
      (k) => !k.startsWith('aws-crypto-') && !Object.hasOwn(required, k),
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
  program
    .command('encrypt')
    .description('seal a file or stdin into an envelope message for one or more recipients')
    .argument('[input]', 'file to encrypt (default: stdin)')
    .option('-o, --output <file>', 'where the message goes (default: stdout)')
    .option(
      '-r, --recipient <uri>',
      'key URI of a recipient (repeatable; default: defaults.recipients)',
      collect,
      [],
    )
    .option('--context <k=v>', 'encryption context pair (repeatable); authenticated, not secret', collect, [])
    .addOption(new Option('--suite <id>', 'algorithm suite').choices(['0x0478', '0x0578']).default('0x0478'))
    .option('--frame-length <bytes>', 'frame length')
    .action(
      act(async (s, cmd) => {
        const o = cmd.opts<{
          output?: string;
          recipient: string[];
          context: string[];
          suite: string;
          frameLength?: string;
        }>();
        const recipients = o.recipient.length > 0 ? o.recipient : ((await s.defaults()).recipients ?? []);
        if (recipients.length === 0) throw usageError('encrypt needs at least one --recipient <uri>');
        refuseBinaryOnTerminal(s, o.output, 'ciphertext');
        const context = parsePairs(o.context, '--context');
        const keys = await s.keys(recipients);
        const sealed = sealStream(input(s, cmd.args[0]), {
          recipients,
          context,
          keys,
          suite: o.suite === '0x0578' ? 0x0578 : 0x0478,
          ...(o.frameLength !== undefined
            ? { frameLength: positiveInt(o.frameLength, '--frame-length') }
            : {}),
          ...(s.io.signal !== undefined ? { signal: s.io.signal } : {}),
        });
        const bytes = await output(s, o.output, sealed);
        await summary(
          s,
          o.output,
          { ok: true, output: o.output ?? '-', bytes, recipients, contextKeys: contextKeys(context) },
          `encrypted -> ${o.output} (${bytes} bytes, ${recipients.length} recipient${recipients.length > 1 ? 's' : ''})`,
        );
        return undefined;
      }),
    );

  program
    .command('decrypt')
    .description('open an envelope message (file or stdin)')
    .argument('[input]', 'message file (default: stdin)')
    .option('-o, --output <file>', 'where the plaintext goes (default: stdout)')
    .option(
      '-k, --key <uri>',
      'a key you trust to open the message (repeatable; tried in order)',
      collect,
      [],
    )
    .option('--trust-configured', TRUST_CONFIGURED_HELP, false)
    .option('--context <k=v>', 'pair the message context must contain (repeatable)', collect, [])
    .option('--require-context', 'the message context must be exactly the --context pairs', false)
    .action(
      act(async (s, cmd) => {
        const o = cmd.opts<{
          output?: string;
          key: string[];
          trustConfigured: boolean;
          context: string[];
          requireContext: boolean;
        }>();
        refuseBinaryOnTerminal(s, o.output, 'plaintext');
        const required = parsePairs(o.context, '--context');
        if (o.requireContext && Object.keys(required).length === 0) {
          throw usageError('--require-context needs the expected pairs as --context k=v');
        }
        const { trust, keys } = await trustAndKeys(s, o.key, o.trustConfigured, 'decrypt');
        let info: MessageInfo | undefined;
        const check = o.requireContext ? exactContextCheck(required) : undefined;
        const plain = openStream(input(s, cmd.args[0]), {
          trust,
          keys,
          requiredContext: required,
          onHeader: (i) => {
            check?.(i);
            info = i;
          },
          ...(s.io.signal !== undefined ? { signal: s.io.signal } : {}),
        });
        const bytes = await output(s, o.output, plain);
        await summary(
          s,
          o.output,
          {
            ok: true,
            output: o.output ?? '-',
            bytes,
            contextKeys: contextKeys(info?.context),
            recipients: info?.providerIds ?? [],
          },
          `decrypted -> ${o.output} (${bytes} bytes)`,
        );
        return undefined;
      }),
    );

  program
    .command('rewrap')
    .description('add and/or remove recipients of a message without touching its body')
    .argument('<input>', 'message file ("-" for stdin)')
    .option(
      '-o, --output <file>',
      'where the new message goes (default: replace the input file; stdout for stdin)',
    )
    .option('--add <uri>', 'recipient to add (repeatable)', collect, [])
    .option('--remove <uri>', 'recipient to remove (repeatable)', collect, [])
    .option('-k, --key <uri>', 'a key you trust to unwrap the data key (repeatable)', collect, [])
    .option('--trust-configured', TRUST_CONFIGURED_HELP, false)
    .action(
      act(async (s, cmd) => {
        const o = cmd.opts<{
          output?: string;
          add: string[];
          remove: string[];
          key: string[];
          trustConfigured: boolean;
        }>();
        if (o.add.length === 0 && o.remove.length === 0)
          throw usageError('rewrap needs --add <uri> and/or --remove <uri>');
        const inPath = cmd.args[0] as string;
        const outPath = o.output ?? (isStd(inPath) ? undefined : inPath);
        refuseBinaryOnTerminal(s, outPath, 'ciphertext');
        const { trust, keys } = await trustAndKeys(s, o.key, o.trustConfigured, 'rewrap');
        await s.keys([...o.add, ...o.remove]);
        const rewrapped = rewrapStream(input(s, inPath), {
          trust,
          keys,
          add: o.add,
          remove: o.remove,
          ...(s.io.signal !== undefined ? { signal: s.io.signal } : {}),
        });
        const bytes = await output(s, outPath, rewrapped);
        await summary(
          s,
          outPath,
          { ok: true, output: outPath ?? '-', bytes, added: o.add, removed: o.remove },
          `rewrapped -> ${outPath} (+${o.add.length} -${o.remove.length} recipients, body unchanged)`,
        );
        return undefined;
      }),
    );
}
