// No plaintext in an error's cause chain: an answer to a call whose request or answer carries a
// plaintext (encrypt, decrypt, data keys) may echo it — a proxy quoting the request body, a server
// that is not quite Vault — and node-vault makes the error's message of the answer's `errors[0]`,
// which `cause` keeps and `console.error` / `util.inspect` print. A stand-in server, as OpenBao
// never answers so. Malformed bodies are checked too (the transport never parses them into a
// SyntaxError quoting the body).
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VaultTransitProvider } from '../src/index.js';
import { bytes, call, json, keyAnswer, rejection, send, standInVault } from './helpers.js';

const secret = randomBytes(32);
const b64 = secret.toString('base64');
const hex = secret.toString('hex');

type Answer = (requestBody: string) => [status: number, text: string];

describe('a plaintext echoed by the answer stays out of the error (a stand-in server)', () => {
  let answer: Answer = () => [404, '{}'];
  let p: VaultTransitProvider;
  let base: string;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({
      provider: p,
      base,
      close,
    } = await standInVault((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method === 'GET' && /\/keys\/k$/.test(req.url ?? '')) return json(res, keyAnswer());
        const [status, text] = answer(Buffer.concat(chunks).toString());
        send(res, text, status);
      });
    }));
  });
  afterAll(() => close());

  const calls: Record<string, (uri: string) => Promise<unknown>> = {
    encrypt: (uri) => p.encrypt({ uri }, secret, {}, call()),
    encryptBatch: (uri) => p.encryptBatch({ uri }, [{ plaintext: secret }]),
    decrypt: (uri) => p.decrypt({ uri }, bytes('vault:v1:AAAA'), {}, call()),
    generateDataKey: (uri) => p.generateDataKey({ uri }, {}, call()),
  };
  const answers: Array<[string, keyof typeof calls, Answer, string]> = [
    [
      'encrypt: a 400 quoting the request',
      'encrypt',
      (b) => [400, JSON.stringify({ errors: [`refused ${b}`] })],
      'InvalidArgument',
    ],
    [
      'encrypt: a 502 quoting the request',
      'encrypt',
      (b) => [502, JSON.stringify({ errors: [`upstream: ${b}`] })],
      'Unavailable',
    ],
    ['encrypt: an HTML 502 quoting the request', 'encrypt', (b) => [502, `<pre>${b}</pre>`], 'Unavailable'],
    [
      'encryptBatch: a 400 quoting the request',
      'encryptBatch',
      (b) => [400, JSON.stringify({ errors: [`refused ${b}`] })],
      'InvalidArgument',
    ],
    [
      'decrypt: a 400 naming the plaintext',
      'decrypt',
      () => [400, JSON.stringify({ errors: [`invalid ciphertext ${b64}`] })],
      'InvalidCiphertext',
    ],
    [
      'decrypt: a 500 with a body cut short',
      'decrypt',
      () => [500, `{"data":{"plaintext":"${b64}"`],
      'Unavailable',
    ],
    [
      'decrypt: a 200 with a body cut short',
      'decrypt',
      () => [200, `{"data":{"plaintext":"${b64}"`],
      'Internal',
    ],
    [
      'decrypt: a 200 with junk after the body',
      'decrypt',
      () => [200, `{"data":{"plaintext":"${b64}"}}}x`],
      'Internal',
    ],
    [
      'generateDataKey: a 503 naming the key',
      'generateDataKey',
      () => [503, JSON.stringify({ errors: [`sealed; key ${b64}`] })],
      'Unavailable',
    ],
    [
      'generateDataKey: a 200 cut short',
      'generateDataKey',
      () => [200, `{"data":{"ciphertext":"vault:v1:AAAA","plaintext":"${b64}"`],
      'Internal',
    ],
  ];
  it.each(answers)('%s', async (_, op, a, code) => {
    answer = a;
    const error = await rejection(p, calls[op]!(`${base}/k`));
    expect(error.code).toBe(code);
    const printed = `${inspect(error, { depth: 10 })}\n${String(error.stack)}\n${JSON.stringify(error)}`;
    expect(printed).not.toContain(b64);
    expect(printed).not.toContain(hex);
  });

  it('the status and the mapped code stay; Vault text of other calls stays in cause', async () => {
    const id = '2c8a0d7e-3f1b-4f7e-9a55-0c1d2e3f4a5b';
    answer = () => [400, JSON.stringify({ errors: ['encryption key not found'], request_id: id })];
    const error = await rejection(p, p.encrypt({ uri: `${base}/k` }, secret, {}, call()));
    expect(error).toMatchObject({ code: 'NotFound', requestId: id });
    // A request id that is not Vault's (a UUID) is server text like any other on these calls.
    answer = () => [400, JSON.stringify({ errors: ['encryption key not found'], request_id: 'req-1' })];
    const odd = await rejection(p, p.encrypt({ uri: `${base}/k` }, secret, {}, call()));
    expect(odd).toMatchObject({ code: 'NotFound', requestId: undefined });
    expect(String((error.cause as Error).message)).toMatch(/^Status 400 \(Vault's text withheld/);
    answer = () => [400, JSON.stringify({ errors: ['encryption key not found'] })];
    const other = await rejection(p, p.rotateKey({ uri: `${base}/k` }, call()));
    expect(String((other.cause as Error).message)).toBe('encryption key not found');
  });
});
