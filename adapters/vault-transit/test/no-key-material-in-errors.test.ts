/**
 * No plaintext, data key or imported key material in a failed call's error, searched over
 * everything the error reaches (@keyport/conformance's findSecret: hidden and symbol-keyed properties, the
 * `cause` chain, arrays, Maps, buffers) in any encoding. Over OpenBao for the failures it gives
 * (a missing key, a context mismatch, material that does not unwrap, an abort), and a stand-in
 * server for the answers it never gives: one echoing the request into its error text, its
 * request id, its warnings or an HTML page, a connection dropped after the request was read,
 * no answer at all. Both with the transport keyport builds and a node-vault client given in the
 * options (node-vault's own axios transport, whose errors keep the request body in `config`).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { findSecret } from '@keyport/conformance';
import NodeVault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VaultTransitProvider, wrapForImport } from '../src/index.js';
import {
  call,
  disableUpsert,
  json,
  keyAnswer,
  keyName,
  provider,
  rejection,
  send,
  standInVault,
} from './helpers.js';

const secret = randomBytes(32);
const b64 = secret.toString('base64');
/** A public key the stand-in's import material is wrapped under (the stand-in cannot open it). */
const importerSpki = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({
  type: 'spki',
  format: 'der',
});

describe('over OpenBao', () => {
  let p: VaultTransitProvider;
  let uri: string;
  beforeAll(async () => {
    await disableUpsert();
    p = provider();
    uri = (await p.createKey({ name: keyName('leak'), spec: 'AES_256' }, call())).uri;
  });
  afterAll(() => p.close());

  it('encrypt to a missing key (400): no plaintext', async () => {
    const error = await rejection(p, p.encrypt({ uri: `${uri}-missing` }, secret, {}, call()));
    expect(error.code).toBe('NotFound');
    expect(findSecret(error, secret)).toEqual([]);
  });

  it('encryptBatch with one item refused: no plaintext', async () => {
    const results = await p
      .encryptBatch({ uri: `${uri}-missing` }, [{ plaintext: secret }])
      .catch((e: unknown) => [e]);
    expect(findSecret(results, secret)).toEqual([]);
  });

  it('decrypt under another context (400): no plaintext', async () => {
    const sealed = await p.encrypt({ uri }, secret, { context: { a: '1' } }, call());
    const error = await rejection(p, p.decrypt({ uri }, sealed.ciphertext, { context: { a: '2' } }, call()));
    expect(error.code).toBe('InvalidCiphertext');
    expect(findSecret(error, secret)).toEqual([]);
  });

  it('an aborted encrypt: no plaintext', async () => {
    const controller = new AbortController();
    const pending = p.encrypt({ uri }, secret, {}, { signal: controller.signal });
    controller.abort();
    const error = await rejection(p, pending);
    expect(error.code).toBe('Aborted');
    expect(findSecret(error, secret)).toEqual([]);
  });

  it('importKeyMaterial of material wrapped for another key (500): no material', async () => {
    const name = keyName('leak-import');
    const key = await p.createKey({ name, spec: 'AES_256', external: true }, call());
    const params = await p.getImportParameters(
      { uri: key.uri },
      { algorithm: 'RSA_AES_KEY_WRAP_SHA_256' },
      call(),
    );
    // The OAEP block changed: transit cannot open it.
    const wrapped = wrapForImport(params.wrappingPublicKey, secret);
    wrapped[10] = (wrapped[10] ?? 0) ^ 0xff;
    const error = await rejection(
      p,
      p.importKeyMaterial(
        { uri: key.uri },
        { algorithm: 'RSA_AES_KEY_WRAP_SHA_256', wrappedMaterial: wrapped },
        call(),
      ),
    );
    expect(error.code).not.toBe('Internal');
    expect(findSecret(error, secret)).toEqual([]);
  });
});

type Answer = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/** Answers echoing the request, or the secret, wherever a server or proxy could put it. */
const hostile: Array<[string, Answer]> = [
  ['a 400 quoting the request', (_q, res, b) => send(res, JSON.stringify({ errors: [`refused ${b}`] }), 400)],
  [
    'a 400 whose request id is the request',
    (_q, res, b) => send(res, JSON.stringify({ errors: ['bad'], request_id: b }), 400),
  ],
  [
    'a 400 whose request id is the secret',
    (_q, res) => send(res, JSON.stringify({ errors: ['bad'], request_id: b64 }), 400),
  ],
  [
    'a 500 with the secret in warnings and data',
    (_q, res, b) => send(res, JSON.stringify({ warnings: [b], data: { plaintext: b64 }, errors: [] }), 500),
  ],
  ['an HTML 502 quoting the request', (_q, res, b) => send(res, `<pre>${b}</pre>`, 502)],
  ['a 200 that is not JSON', (_q, res, b) => send(res, `${b}}}`, 200)],
  ['a dropped connection', (q) => q.socket.destroy()],
];

const calls: Record<string, (p: VaultTransitProvider, uri: string) => Promise<unknown>> = {
  encrypt: (p, uri) => p.encrypt({ uri }, secret, {}, call()),
  encryptBatch: (p, uri) =>
    p.encryptBatch({ uri }, [{ plaintext: secret }]).then((r) => {
      // Per-item failures are answers, not rejections: searched the same way.
      const found = findSecret(r, secret);
      if (found.length > 0) throw new Error(`batch result holds the secret: ${found}`);
      throw new Error('batch settled');
    }),
  decrypt: (p, uri) => p.decrypt({ uri }, new TextEncoder().encode('vault:v1:AAAA'), {}, call()),
  generateDataKey: (p, uri) => p.generateDataKey({ uri }, {}, call()),
  importKeyMaterial: (p, uri) =>
    p.importKeyMaterial(
      { uri },
      { algorithm: 'RSA_AES_KEY_WRAP_SHA_256', wrappedMaterial: wrapForImport(importerSpki, secret) },
      call(),
    ),
};

describe.each(['keyport transport', 'a node-vault client given'])('a hostile stand-in (%s)', (transport) => {
  let answer: Answer = (_q, res) => send(res, '{}', 404);
  let p: VaultTransitProvider;
  let base: string;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method === 'GET' && /\/keys\/k$/.test(req.url ?? ''))
          return json(res, keyAnswer({ imported_key: true }));
        answer(req, res, Buffer.concat(chunks).toString());
      });
    };
    const made = await standInVault(handler);
    if (transport === 'keyport transport') {
      ({ provider: p, base, close } = made);
      return;
    }
    // The same server through node-vault's own transport (axios).
    const endpoint = `http://${made.base.split('/')[2]}`;
    const client = NodeVault({ endpoint, token: 's.stand-in' });
    p = new VaultTransitProvider({
      endpoint,
      client,
      auth: { method: 'token', token: 's.stand-in', renew: false },
    });
    base = made.base;
    close = async () => {
      await p.close();
      await made.close();
    };
  });
  afterAll(() => close());

  for (const [what, a] of hostile) {
    // An import's request carries the material wrapped only, its answer none (a 200 is success,
    // whatever its body): only a server that unwrapped it could name the material, and keyport
    // keeps that server's text of an import (its messages tell the import's mistakes apart).
    const ops = Object.keys(calls).filter(
      (op) => op !== 'importKeyMaterial' || !/is the secret|a 200/.test(what),
    );
    it.each(ops)(`${what}: %s keeps no secret`, async (op) => {
      answer = a;
      const error = await rejection(
        p,
        (calls[op] as (p: VaultTransitProvider, u: string) => Promise<unknown>)(p, `${base}/k`),
      );
      expect(error.message).not.toMatch(/batch result holds the secret/);
      expect(findSecret(error, secret)).toEqual([]);
      // What Keyport hands its caller is built from the same error.
      expect(findSecret(error.cause, secret)).toEqual([]);
    });
  }
});
