/**
 * Output for humans and for scripts; otherwise text, coloured only when stdout is a terminal
 * and NO_COLOR is unset. Diagnostics and progress go to stderr so stdout stays clean.
 *
 * The `--json` contract (README "JSON output"), the same for every command:
 * - stdout: the result, one JSON object with `"ok"`; nothing else. When the command's data
 *   goes to stdout (encrypt/decrypt/rewrap without -o), the result goes to stderr instead, as
 *   `{"result": {...}}`.
 * - stderr: NDJSON, one object per line with one key: `{"progress": {...}}` events of long
 *   commands, `{"note": "..."}`, `{"result": {...}}` (above), and on failure exactly one
 *   `{"error": {"code", "message", "exitCode", ...}}`.
 */
import { escapeControl } from '@keyport/core';
import { type CliIo, writeText } from './io.js';

const ANSI = { red: 31, green: 32, yellow: 33, cyan: 36, dim: 2, bold: 1 } as const;
export type Colour = keyof typeof ANSI;

export class Output {
  readonly colour: boolean;

  constructor(
    private readonly io: CliIo,
    readonly json: boolean,
    colourWanted: boolean,
  ) {
    this.colour = colourWanted && io.stdoutIsTTY && (io.env.NO_COLOR ?? '') === '';
  }

  paint(colour: Colour, text: string): string {
    return this.colour ? `\u001b[${ANSI[colour]}m${text}\u001b[0m` : text;
  }

  /** The command's result: `value` as JSON with --json (`ok: true` unless it says), else `human`. */
  async result(value: Readonly<Record<string, unknown>>, human: string | readonly string[]): Promise<void> {
    if (this.json) {
      await writeText(this.io.stdout, `${JSON.stringify({ ok: true, ...value }, jsonReplacer, 2)}\n`);
      return;
    }
    const text = typeof human === 'string' ? human : human.join('\n');
    if (text !== '') await writeText(this.io.stdout, text.endsWith('\n') ? text : `${text}\n`);
  }

  /** A note on stderr: a line of text, or `{"note": text}` with --json. */
  async note(text: string): Promise<void> {
    await writeText(this.io.stderr, this.json ? `${JSON.stringify({ note: text })}\n` : `keyport: ${text}\n`);
  }

  /** One NDJSON event on stderr (--json only): `{"<kind>": payload}`. */
  event(kind: 'progress' | 'result', payload: Readonly<Record<string, unknown>>): void {
    if (this.json) this.io.stderr.write(`${JSON.stringify({ [kind]: payload }, jsonReplacer)}\n`);
  }
}

/** Dates as ISO strings, bytes never (a Uint8Array in a result is a bug: print its length). */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: value.length };
  return value;
}

/**
 * Text a provider or a user gave (a key's description, labels, a grantee, a name) as it may be
 * printed for a human: control characters escaped, so an escape sequence stored in a cloud
 * key's description cannot retitle the window or clear the screen of whoever lists the keys.
 */
export const shown = (text: string): string => escapeControl(text);

/** Left-aligned columns for tables; every cell is provider or user text, so it is escaped. */
export function table(given: readonly (readonly string[])[]): string[] {
  const rows = given.map((row) => row.map(shown));
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}
