/**
 * A client for ESDK-JS running in a child Node process (see esdk-child.cjs for why). The
 * child is started on first use and stopped by `stopEsdk()` in afterAll.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export type EsdkKeyring =
  | { type: 'aes'; namespace: string; name: string; key: string; utf8Sorting?: boolean }
  | { type: 'rsa'; namespace: string; name: string; privateKey: string; publicKey: string }
  | { type: 'kms'; arn: string; secret: string };

interface Answer {
  id: number;
  ok: boolean;
  error?: string;
  data?: string;
  suiteId?: number;
  context?: Record<string, string>;
  frameLength?: number;
}

let child: ChildProcessWithoutNullStreams | undefined;
const waiting = new Map<number, (a: Answer) => void>();
let nextId = 1;

function start(): ChildProcessWithoutNullStreams {
  if (child !== undefined) return child;
  const script = fileURLToPath(new URL('./esdk-child.cjs', import.meta.url));
  child = spawn(process.execPath, [script], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '' },
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    const a = JSON.parse(line) as Answer;
    waiting.get(a.id)?.(a);
    waiting.delete(a.id);
  });
  return child;
}

async function call(req: Record<string, unknown>): Promise<Answer> {
  const c = start();
  const id = nextId++;
  const answer = new Promise<Answer>((resolve) => waiting.set(id, resolve));
  c.stdin.write(`${JSON.stringify({ ...req, id })}\n`);
  const a = await answer;
  if (!a.ok) throw new Error(`ESDK-JS failed: ${a.error}`);
  return a;
}

export async function esdkEncrypt(
  keyrings: EsdkKeyring[],
  plaintext: Uint8Array,
  opts: {
    context?: Record<string, string>;
    suiteId?: number;
    frameLength?: number;
    policy?: 'require' | 'legacy';
  } = {},
): Promise<Buffer> {
  const a = await call({ op: 'encrypt', keyrings, data: Buffer.from(plaintext).toString('base64'), ...opts });
  return Buffer.from(a.data as string, 'base64');
}

export async function esdkDecrypt(
  keyrings: EsdkKeyring[],
  message: Uint8Array,
  policy: 'require' | 'legacy' = 'require',
): Promise<{ plaintext: Buffer; suiteId: number; context: Record<string, string>; frameLength: number }> {
  const a = await call({ op: 'decrypt', keyrings, data: Buffer.from(message).toString('base64'), policy });
  return {
    plaintext: Buffer.from(a.data as string, 'base64'),
    suiteId: a.suiteId as number,
    context: a.context as Record<string, string>,
    frameLength: a.frameLength as number,
  };
}

export async function stopEsdk(): Promise<void> {
  const c = child;
  child = undefined;
  if (c === undefined) return;
  const exited = new Promise((resolve) => c.once('exit', resolve));
  c.stdin.end();
  c.kill();
  await exited;
}
