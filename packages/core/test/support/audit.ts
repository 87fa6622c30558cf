/** Fixtures for the audit tests: events, a written log and its anchor, tamper helpers. */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuditEvent, JsonlAuditSink } from '../../src/index.js';

export const KEY = new Uint8Array(32).fill(7);

export function event(i: number): AuditEvent {
  return {
    ts: new Date(1_700_000_000_000 + i).toISOString(),
    op: 'encrypt',
    provider: 'local',
    keyUri: `local://k.kp#key${i}`,
    keyVersion: '1',
    outcome: 'success',
    errorCode: undefined,
    durationMs: 1.25,
    attempts: 1,
    requestId: undefined,
    contextKeys: ['tenant'],
    contextDigest: 'ab'.repeat(32),
  };
}

export async function tempLog(): Promise<string> {
  return join(await mkdtemp(join(tmpdir(), 'kp-audit-')), 'audit.jsonl');
}

export interface WrittenLog {
  readonly path: string;
  readonly text: string;
  readonly anchor: string;
  readonly lines: string[];
}

export async function writeLog(n: number, path?: string): Promise<WrittenLog> {
  const log = path ?? (await tempLog());
  const sink = await JsonlAuditSink.open(log, { hmacKey: KEY });
  for (let i = 0; i < n; i++) await sink.write(event(i));
  await sink.close();
  return readLog(log);
}

export async function readLog(path: string): Promise<WrittenLog> {
  const text = await readFile(path, 'utf8');
  const anchor = await readFile(`${path}.anchor`, 'utf8');
  return { path, text, anchor, lines: text.trimEnd().split('\n') };
}

export const joinLines = (lines: readonly string[]): string => lines.map((l) => `${l}\n`).join('');
