/**
 * Output for humans and for scripts. `--json` prints one JSON document per command on stdout
 * (errors too); otherwise text, coloured only when stdout is a terminal and NO_COLOR is unset.
 * Diagnostics and progress go to stderr so stdout stays clean for data and JSON.
 */
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

  /** The command's result: `value` as JSON with --json, else `human` (lines of text). */
  async result(value: unknown, human: string | readonly string[]): Promise<void> {
    if (this.json) {
      await writeText(this.io.stdout, `${JSON.stringify(value, jsonReplacer, 2)}\n`);
      return;
    }
    const text = typeof human === 'string' ? human : human.join('\n');
    if (text !== '') await writeText(this.io.stdout, text.endsWith('\n') ? text : `${text}\n`);
  }

  /** A line for humans on stderr (notes, warnings); silent with --json. */
  async note(text: string): Promise<void> {
    if (!this.json) await writeText(this.io.stderr, `${text}\n`);
  }
}

/** Dates as ISO strings, bytes never (a Uint8Array in a result is a bug: print its length). */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: value.length };
  return value;
}

/** Left-aligned columns for tables. */
export function table(rows: readonly (readonly string[])[]): string[] {
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
