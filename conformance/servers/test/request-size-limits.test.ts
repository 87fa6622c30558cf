// The request-size limits of both servers, held at the boundary on every protocol: the REST
// bodies (1 MiB: Key Vault and Cloud KMS REST), the gRPC message (4 MiB, gRPC's default receive
// limit: RESOURCE_EXHAUSTED beyond) and Cloud KMS's field limits (plaintext and AAD at most
// 64 KiB: INVALID_ARGUMENT). Bodies are written on raw sockets so a test can lie about
// Content-Length, stream chunked bodies across the limit and keep sending after a refusal;
// after each the server must still answer the next request.
import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzureKeyVaultServer, startAzureKeyVaultServer } from '../src/azure/index.js';
import { type CloudKmsServer, startCloudKmsServer } from '../src/gcp/index.js';
import { ADMIN, PRINCIPALS, raw } from './azure-helpers.js';
import { expectCode, grpc, makeClient } from './gcp-support.js';

const MiB = 1 << 20;
const REST_LIMIT = MiB;
const GRPC_LIMIT = 4 * MiB;
const FIELD_LIMIT = 64 * 1024;

type Socketish = ReturnType<typeof tcpConnect>;

interface Exchange {
  /** Status of the first response (0 when none came). */
  status: number;
  /** The first response's JSON body, when it had one. */
  body: Record<string, unknown> | undefined;
  /** Whether the server closed the connection within the wait. */
  closed: boolean;
  /** Body bytes the client managed to write before the connection closed or the wait ended. */
  sent: number;
}

/**
 * Writes `head` then `body` (a fixed list of buffers, or a source pumped until the connection
 * closes), optionally half-closing after; collects what comes back until a whole response came
 * (or, with `awaitClose`, until the server closes the connection) or `waitMs` passes.
 */
function exchange(
  open: () => Socketish,
  head: string,
  body: Buffer[] | { pump: (n: number) => Buffer | undefined },
  opts: { end?: boolean; waitMs?: number; awaitClose?: boolean } = {},
): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = open();
    const received: Buffer[] = [];
    let sent = 0;
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(received).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      const headerEnd = text.indexOf('\r\n\r\n');
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(text)?.[1] ?? -1);
      let parsed: Record<string, unknown> | undefined;
      if (headerEnd >= 0 && length > 0) {
        try {
          parsed = JSON.parse(text.slice(headerEnd + 4, headerEnd + 4 + length)) as Record<string, unknown>;
        } catch {
          parsed = undefined;
        }
      }
      resolve({ status, body: parsed, closed, sent });
    };
    const timer = setTimeout(() => finish(false), opts.waitMs ?? 5_000);
    socket.on('data', (d: Buffer) => {
      received.push(d);
      if (opts.awaitClose) return;
      const text = Buffer.concat(received).toString('latin1');
      const headerEnd = text.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: (\d+)/i.exec(text)?.[1];
      if (headerEnd >= 0 && length !== undefined && text.length >= headerEnd + 4 + Number(length))
        finish(false);
    });
    socket.on('error', () => {}); // a reset after the answer is the server closing: 'close' follows
    socket.on('close', () => finish(true));
    const write = async () => {
      socket.write(head);
      if (Array.isArray(body)) {
        for (const part of body) {
          if (done || socket.destroyed) return;
          sent += part.length;
          if (!socket.write(part)) await new Promise((r) => socket.once('drain', r));
        }
      } else {
        for (let i = 0; ; i++) {
          if (done || socket.destroyed || !socket.writable) return;
          const part = body.pump(i);
          if (part === undefined) break;
          sent += part.length;
          if (!socket.write(part)) {
            // Resolves on drain, or when the server stops reading and closes.
            await new Promise<void>((r) => {
              socket.once('drain', () => r());
              socket.once('close', () => r());
            });
          }
        }
      }
      if (opts.end && !socket.destroyed) socket.end();
    };
    void write().catch(() => {});
  });
}

const chunk = (data: Buffer): Buffer =>
  Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

/** `json` followed by spaces up to exactly `size` bytes: valid JSON whose size alone decides. */
function padded(json: object, size: number): Buffer {
  const text = JSON.stringify(json);
  if (text.length > size) throw new Error('padding target smaller than the JSON');
  return Buffer.from(text + ' '.repeat(size - text.length));
}

/** An endless chunked body: the first chunk fills the limit, then 64 KiB chunks up to `cap`. */
function endlessChunked(limit: number, cap: number) {
  const first = chunk(padded({}, limit));
  const more = chunk(Buffer.alloc(64 * 1024, 0x20));
  return {
    pump: (i: number) => (i === 0 ? first : i * 64 * 1024 > cap ? undefined : more),
  };
}

describe('Key Vault REST: request bodies are limited to 1 MiB', () => {
  let vault: AzureKeyVaultServer;
  let open: () => Socketish;
  beforeAll(async () => {
    vault = await startAzureKeyVaultServer({ principals: PRINCIPALS });
    const ca = readFileSync(vault.caFile);
    const port = Number(new URL(vault.url).port);
    open = () => tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
  });
  afterAll(async () => {
    await vault?.stop();
  });

  const head = (name: string, framing: string) =>
    `POST /keys/${name}/create?api-version=7.6 HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
    `Authorization: Bearer ${ADMIN}\r\nContent-Type: application/json\r\n${framing}\r\n`;

  /** The server still serves an ordinary call. */
  const stillServing = async (name: string) => {
    const r = await raw(vault, 'POST', `/keys/${name}/create?api-version=7.6`, {
      token: ADMIN,
      body: { kty: 'EC' },
    });
    expect(r.status).toBe(200);
  };

  it('a chunked body of exactly 1 MiB is read whole; one byte more is 400 BadParameter', async () => {
    const at = await exchange(open, head('chunked-at', 'Transfer-Encoding: chunked\r\n'), [
      chunk(padded({ kty: 'EC' }, REST_LIMIT - 1)),
      chunk(Buffer.from(' ')),
      LAST_CHUNK,
    ]);
    expect(at.status).toBe(200);
    const over = await exchange(open, head('chunked-over', 'Transfer-Encoding: chunked\r\n'), [
      chunk(padded({ kty: 'EC' }, REST_LIMIT)),
      chunk(Buffer.from(' ')),
      LAST_CHUNK,
    ]);
    expect(over).toMatchObject({ status: 400, body: { error: { code: 'BadParameter' } } });
    await stillServing('after-chunked');
  });

  // The server used to keep the connection open and drain whatever the client kept sending.
  it('a chunked body crossing the limit is refused and the connection closed while the client still sends', async () => {
    const cap = 64 * MiB;
    const r = await exchange(
      open,
      head('endless', 'Transfer-Encoding: chunked\r\n'),
      endlessChunked(REST_LIMIT, cap),
      { waitMs: 10_000, awaitClose: true },
    );
    expect(r).toMatchObject({ status: 400, body: { error: { code: 'BadParameter' } }, closed: true });
    expect(r.sent).toBeLessThan(cap);
    await stillServing('after-endless');
  });

  // The server used to wait for the declared bytes before refusing them.
  it('a declared Content-Length one byte over the limit is refused at once, before any body byte', async () => {
    const r = await exchange(open, head('declared', `Content-Length: ${REST_LIMIT + 1}\r\n`), [], {
      waitMs: 3_000,
      awaitClose: true,
    });
    expect(r).toMatchObject({ status: 400, body: { error: { code: 'BadParameter' } }, closed: true });
    await stillServing('after-declared');
  });

  it('a Content-Length that lies (small then more, or large then less and a close) is refused; the server stays up', async () => {
    const more = await exchange(open, head('lie-small', 'Content-Length: 2\r\n'), [
      Buffer.from(`{}${'A'.repeat(2 * MiB)}`),
    ]);
    expect(more.status).toBe(400);
    expect(more.closed).toBe(true);
    const less = await exchange(
      open,
      head('lie-large', `Content-Length: ${REST_LIMIT}\r\n`),
      [Buffer.from('{}')],
      {
        end: true,
      },
    );
    expect(less.status).toBe(400);
    expect(less.closed).toBe(true);
    await stillServing('after-lies');
  });
});

describe('Cloud KMS: REST bodies (1 MiB), gRPC messages (4 MiB) and the 64 KiB field limits', () => {
  let kms: CloudKmsServer;
  let open: () => Socketish;
  let client: ReturnType<typeof makeClient>;
  let key: string;
  beforeAll(async () => {
    kms = await startCloudKmsServer();
    const url = new URL(kms.restUrl!);
    open = () => tcpConnect(Number(url.port), url.hostname);
    client = makeClient(kms.port);
    const parent = 'projects/p/locations/global';
    await client.createKeyRing({ parent, keyRingId: 'limits', keyRing: {} });
    const [created] = await client.createCryptoKey({
      parent: `${parent}/keyRings/limits`,
      cryptoKeyId: 'k',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
    });
    key = created.name!;
  });
  afterAll(async () => {
    await client?.close();
    await kms?.stop();
  });

  const head = (framing: string) =>
    `POST /v1/${key}:encrypt HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${framing}\r\n`;
  const encryptBody = (plaintext: number, aad = 0) => ({
    plaintext: Buffer.alloc(plaintext, 1).toString('base64'),
    ...(aad > 0 && { additionalAuthenticatedData: Buffer.alloc(aad, 2).toString('base64') }),
  });
  const sized = (body: Buffer) => exchange(open, head(`Content-Length: ${body.length}\r\n`), [body]);
  const stillServing = async () => {
    const [out] = await client.encrypt({ name: key, plaintext: Buffer.from('still here') });
    expect(out.ciphertext).toBeDefined();
  };
  const PAYLOAD_TOO_LARGE = {
    status: 400,
    body: {
      error: {
        code: 400,
        status: 'INVALID_ARGUMENT',
        message: `Request payload size exceeds the limit: ${REST_LIMIT} bytes.`,
      },
    },
  };

  it('REST: a 1 MiB body is read; inside it the field limits apply (65,536 bytes pass, 65,537 are INVALID_ARGUMENT)', async () => {
    expect((await sized(padded(encryptBody(FIELD_LIMIT), REST_LIMIT))).status).toBe(200);
    expect((await sized(padded(encryptBody(1, FIELD_LIMIT), REST_LIMIT))).status).toBe(200);
    expect(await sized(padded(encryptBody(FIELD_LIMIT + 1), REST_LIMIT))).toMatchObject({
      status: 400,
      body: {
        error: { code: 400, status: 'INVALID_ARGUMENT', message: 'plaintext must be no larger than 64KiB.' },
      },
    });
    expect(await sized(padded(encryptBody(1, FIELD_LIMIT + 1), REST_LIMIT))).toMatchObject({
      status: 400,
      body: { error: { code: 400, status: 'INVALID_ARGUMENT' } },
    });
  });

  // The server answered 413 with `error.code` 400: Google's front end answers 400 INVALID_ARGUMENT.
  it('REST: one byte over 1 MiB is 400 INVALID_ARGUMENT "Request payload size exceeds the limit", HTTP status and error.code agreeing', async () => {
    const over = padded(encryptBody(1), REST_LIMIT + 1);
    const r = await exchange(open, head(`Content-Length: ${over.length}\r\n`), [over], { awaitClose: true });
    expect(r).toMatchObject({ ...PAYLOAD_TOO_LARGE, closed: true });
    // Declared only: refused before any body byte arrives.
    const declared = await exchange(open, head(`Content-Length: ${REST_LIMIT + 1}\r\n`), [], {
      waitMs: 3_000,
      awaitClose: true,
    });
    expect(declared).toMatchObject({ ...PAYLOAD_TOO_LARGE, closed: true });
    await stillServing();
  });

  it('REST: chunked bodies at the limit are read, across it refused while the client still sends', async () => {
    const at = await exchange(open, head('Transfer-Encoding: chunked\r\n'), [
      chunk(padded(encryptBody(16), REST_LIMIT - 1)),
      chunk(Buffer.from(' ')),
      LAST_CHUNK,
    ]);
    expect(at.status).toBe(200);
    const cap = 64 * MiB;
    const endless = await exchange(
      open,
      head('Transfer-Encoding: chunked\r\n'),
      endlessChunked(REST_LIMIT, cap),
      {
        waitMs: 10_000,
        awaitClose: true,
      },
    );
    expect(endless).toMatchObject({ ...PAYLOAD_TOO_LARGE, closed: true });
    expect(endless.sent).toBeLessThan(cap);
    await stillServing();
  });

  it('REST: a Content-Length that lies (small then more, or large then less and a close) is refused; the server stays up', async () => {
    const more = await exchange(open, head('Content-Length: 2\r\n'), [
      Buffer.from(`{}${'A'.repeat(2 * MiB)}`),
    ]);
    expect(more.status).toBe(400);
    expect(more.closed).toBe(true);
    const less = await exchange(open, head(`Content-Length: ${REST_LIMIT}\r\n`), [Buffer.from('{}')], {
      end: true,
    });
    expect(less.status).toBe(400);
    expect(less.closed).toBe(true);
    await stillServing();
  });

  // Raw protobuf, so the message size is exact: field 1 (name), then one length-delimited field.
  const varint = (n: number): Buffer => {
    const out: number[] = [];
    let v = n;
    while (v >= 0x80) {
      out.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(v);
    return Buffer.from(out);
  };
  const field = (no: number, data: Buffer) =>
    Buffer.concat([varint((no << 3) | 2), varint(data.length), data]);
  /** An EncryptRequest of exactly `size` bytes: `fill` (a field number) takes up the rest. */
  const encryptRequest = (size: number, fill: number, extra: Buffer[] = []): Buffer => {
    const fixed = Buffer.concat([field(1, Buffer.from(key)), ...extra]);
    const tag = varint((fill << 3) | 2);
    const length = size - fixed.length - tag.length - 4; // the length's varint is 4 bytes here
    const message = Buffer.concat([fixed, field(fill, Buffer.alloc(length, 0x61))]);
    expect(message.length).toBe(size);
    return message;
  };
  const rawEncrypt = (message: Buffer): Promise<{ code: number; details: string }> =>
    new Promise((resolve) => {
      const raw = new grpc.Client(`127.0.0.1:${kms.port}`, grpc.credentials.createInsecure());
      raw.makeUnaryRequest(
        '/google.cloud.kms.v1.KeyManagementService/Encrypt',
        (b: Buffer) => b,
        (b: Buffer) => b,
        message,
        (err) => {
          raw.close();
          resolve({ code: err?.code ?? grpc.status.OK, details: err?.details ?? '' });
        },
      );
    });

  it('gRPC: a message of exactly 4 MiB is read (an unknown field is skipped); one byte more is RESOURCE_EXHAUSTED', async () => {
    const small = field(2, Buffer.from('plaintext'));
    expect(await rawEncrypt(encryptRequest(GRPC_LIMIT, 99, [small]))).toEqual({
      code: grpc.status.OK,
      details: '',
    });
    const over = await rawEncrypt(encryptRequest(GRPC_LIMIT + 1, 99, [small]));
    expect(over.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await stillServing();
  });

  it('gRPC: a 4 MiB plaintext passes the transport and meets the field limit (INVALID_ARGUMENT); 4 MiB + 1 is RESOURCE_EXHAUSTED', async () => {
    const at = await rawEncrypt(encryptRequest(GRPC_LIMIT, 2));
    expect(at).toEqual({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'plaintext must be no larger than 64KiB.',
    });
    expect((await rawEncrypt(encryptRequest(GRPC_LIMIT + 1, 2))).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await stillServing();
  });

  it('gRPC: plaintext and additional_authenticated_data of exactly 65,536 bytes pass, 65,537 are INVALID_ARGUMENT', async () => {
    const at = Buffer.alloc(FIELD_LIMIT, 1);
    const over = Buffer.alloc(FIELD_LIMIT + 1, 1);
    const [sealed] = await client.encrypt({ name: key, plaintext: at, additionalAuthenticatedData: at });
    const [opened] = await client.decrypt({
      name: key,
      ciphertext: sealed.ciphertext ?? null,
      additionalAuthenticatedData: at,
    });
    expect(Buffer.from(opened.plaintext as Uint8Array).equals(at)).toBe(true);
    await expectCode(client.encrypt({ name: key, plaintext: over }), grpc.status.INVALID_ARGUMENT);
    await expectCode(
      client.encrypt({ name: key, plaintext: Buffer.from('x'), additionalAuthenticatedData: over }),
      grpc.status.INVALID_ARGUMENT,
    );
  });

  it('gRPC: MacSign and MacVerify data is at most 64 KiB, and 16 KiB for an HSM key (one byte more is INVALID_ARGUMENT)', async () => {
    const parent = 'projects/p/locations/global/keyRings/limits';
    const version = async (id: string, protectionLevel: 'SOFTWARE' | 'HSM') => {
      const [made] = await client.createCryptoKey({
        parent,
        cryptoKeyId: id,
        cryptoKey: { purpose: 'MAC', versionTemplate: { algorithm: 'HMAC_SHA256', protectionLevel } },
      });
      return made.primary?.name ?? `${made.name}/cryptoKeyVersions/1`;
    };
    for (const [id, level, limit, message] of [
      ['mac-software', 'SOFTWARE', FIELD_LIMIT, 'data must be no larger than 64KiB.'],
      ['mac-hsm', 'HSM', 16 * 1024, 'data must be no larger than 16KiB for HSM keys.'],
    ] as const) {
      const name = await version(id, level);
      const at = Buffer.alloc(limit, 3);
      const [signed] = await client.macSign({ name, data: at });
      const [checked] = await client.macVerify({ name, data: at, mac: signed.mac ?? null });
      expect(checked.success, id).toBe(true);
      const over = Buffer.alloc(limit + 1, 3);
      await expect(client.macSign({ name, data: over }), id).rejects.toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        details: message,
      });
      await expect(client.macVerify({ name, data: over, mac: signed.mac ?? null }), id).rejects.toMatchObject(
        {
          code: grpc.status.INVALID_ARGUMENT,
          details: message,
        },
      );
    }
  });
});
