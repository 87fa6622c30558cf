// What the adapter reads back, read as an attacker and a careless user would write it: answers of
// unexpected shapes or sizes (from a server that is not quite Vault, or a proxy in front of it —
// a stand-in HTTP server, as OpenBao never answers so), and policies, metadata and contexts
// carrying `__proto__` or fields of the wrong kind (written to the real OpenBao).
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { VaultTransitProvider } from '../src/index.js';
import {
  bytes,
  call,
  json,
  keyAnswer,
  keyName,
  openbao,
  provider,
  rejection,
  rootClient,
  standInVault,
} from './helpers.js';

type Route = (req: IncomingMessage, res: ServerResponse) => void;

describe('answers of unexpected shapes and sizes (a stand-in server)', () => {
  let route: Route = (_, res) => json(res, {}, 404);
  let listAnswer: unknown = {};
  let p: VaultTransitProvider;
  let base: string;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const standIn = await standInVault((req, res) => route(req, res));
    ({ provider: p, base, close } = standIn);
    // Node's parser refuses Vault's LIST verb before the handler runs: answered here, raw.
    standIn.server.on('clientError', (error: Error & { rawPacket?: Buffer }, socket) => {
      if (!String(error.rawPacket ?? '').startsWith('LIST ')) return void socket.destroy();
      const body = JSON.stringify(listAnswer);
      socket.end(
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
  });
  afterAll(() => close());
  beforeEach(() => {
    route = (_, res) => json(res, {}, 404);
  });

  it.each([
    ['a version count nobody has', { latest_version: 1e12 }],
    ['a version count that is not a number', { latest_version: '3' }],
    ['no min_available_version', { min_available_version: undefined }],
    ['a min version above the latest', { min_decryption_version: 9 }],
    ['a rotation period that is not a number', { auto_rotate_period: '1h' }],
    ['keys that are not an object', { keys: 'x' }],
  ])('a key read with %s is Internal, at once', async (_, over) => {
    route = (_, res) => json(res, keyAnswer(over));
    const error = await rejection(p, p.describeKey({ uri: `${base}/k` }, call()));
    expect(error.code).toBe('Internal');
    expect(error.message).toMatch(/unexpected/);
  });

  it('a key read without data is Internal, not a TypeError', async () => {
    route = (_, res) => json(res, { data: null });
    const error = await rejection(p, p.describeKey({ uri: `${base}/k` }, call()));
    expect(error.code).toBe('Internal');
    expect(error.message).toMatch(/unexpected shape/);
  });

  // A 2xx answer to a cryptographic call without what it exists to carry: Internal, naming the
  // missing field, never echoing the body (a plaintext may be in it), never InvalidCiphertext
  // (that blames the caller's input) and never a TypeError.
  const cryptoCalls: Array<[string, string, (uri: string) => Promise<unknown>]> = [
    ['encrypt', 'ciphertext', (uri) => p.encrypt({ uri }, bytes('x'), {}, call())],
    ['decrypt', 'plaintext', (uri) => p.decrypt({ uri }, bytes('vault:v1:AAAA'), {}, call())],
    ['datakey/plaintext', 'ciphertext', (uri) => p.generateDataKey({ uri }, {}, call())],
    ['sign', 'signature', (uri) => p.sign({ uri }, bytes('x'), {}, call())],
    ['hmac', 'hmac', (uri) => p.mac({ uri }, bytes('x'), call())],
    ['rewrap', 'ciphertext', (uri) => p.rewrap({ uri }, bytes('vault:v1:AAAA'))],
  ];
  const keyTypes: Record<string, string> = { sign: 'ecdsa-p256', hmac: 'hmac' };
  const answering = (op: string, body: unknown) => {
    route = (req, res) =>
      req.method === 'GET' ? json(res, keyAnswer({ type: keyTypes[op] ?? 'aes256-gcm96' })) : json(res, body);
  };
  const SECRET = 'c2VjcmV0LXBsYWludGV4dA==';
  it.each(
    cryptoCalls.flatMap(
      ([op, field, run]) =>
        [
          [
            op,
            'no data',
            { warnings: [SECRET] },
            /without the data object of a successful answer/,
            field,
            run,
          ],
          [op, 'data that is a string', { data: SECRET }, /without the data object/, field, run],
          [
            op,
            `data without ${field}`,
            { data: { other: SECRET } },
            new RegExp(`without data\\.${field} \\(a string\\)`),
            field,
            run,
          ],
          [
            op,
            `a ${field} that is a number`,
            { data: { plaintext: SECRET, [field]: 7 } },
            new RegExp(`without data\\.${field}`),
            field,
            run,
          ],
        ] as const,
    ),
  )(
    'transit %s answered with %s is Internal, naming what is missing',
    async (op, _, body, message, _field, run) => {
      answering(op, body);
      // A key of its own per operation: the driver remembers a key's type once read.
      const error = await rejection(p, run(`${base}/k-${op.replace('/', '-')}`));
      expect(error.code).toBe('Internal');
      expect(error.message).toContain(`Vault answered transit ${op} `);
      expect(error.message).toMatch(message);
      expect(`${error.message}${JSON.stringify(error)}`).not.toContain(SECRET);
    },
  );

  it.each([
    [
      'encrypt',
      { data: { ciphertext: 'vault:v1:not base64!' } },
      /data\.ciphertext that is not vault:v<N>:<base64>/,
      (uri: string) => p.encrypt({ uri }, bytes('x'), {}, call()),
    ],
    [
      'decrypt',
      { data: { plaintext: 'c2VjcmV0!!' } },
      /data\.plaintext that is not base64/,
      (uri: string) => p.decrypt({ uri }, bytes('vault:v1:AAAA'), {}, call()),
    ],
    [
      'datakey/plaintext',
      { data: { ciphertext: 'vault:v1:AAAA', plaintext: 'AAAA' } },
      /a key of another size/,
      (uri: string) => p.generateDataKey({ uri }, {}, call()),
    ],
  ])(
    'transit %s answered with a malformed field is Internal, never wrong bytes or InvalidCiphertext',
    async (op, body, message, run) => {
      answering(op, body);
      const error = await rejection(p, run(`${base}/k`));
      expect(error.code).toBe('Internal');
      expect(error.message).toMatch(message);
    },
  );

  it("decrypt answered with an empty plaintext (Vault's answer for an empty message) is an empty message", async () => {
    answering('decrypt', { data: { plaintext: '' } });
    const opened = await p.decrypt({ uri: `${base}/k` }, bytes('vault:v1:AAAA'), {}, call());
    expect(opened.plaintext).toEqual(new Uint8Array(0));
  });

  it('a grant token answered without its lease duration is Internal, and the token is taken back', async () => {
    const revoked: string[] = [];
    route = (req, res) => {
      if (req.url === '/v1/auth/token/create-orphan') {
        return json(res, { auth: { client_token: 's.granted-token', accessor: 'acc1' } });
      }
      if (req.url === '/v1/auth/token/revoke-accessor') revoked.push('acc1');
      return json(res, {}, 204);
    };
    const expiresAt = new Date(Date.now() + 3_600_000);
    const error = await rejection(
      p,
      p.createGrant({ uri: `${base}/k` }, { grantee: 'g', operations: ['encrypt'], expiresAt }, call()),
    );
    expect(error.code).toBe('Internal');
    expect(error.message).toMatch(/without a valid lease duration/);
    expect(`${error.message}${JSON.stringify(error)}`).not.toContain('s.granted-token');
    expect(revoked).toEqual(['acc1']);
  });

  it.each([
    ['no lease duration', undefined],
    ['a lease beyond any max TTL', 1e15],
  ])(
    'a grant token made without an expiry and answered with %s is Internal, and the token is taken back',
    async (_, lease) => {
      const revoked: string[] = [];
      route = (req, res) => {
        if (req.url === '/v1/auth/token/create-orphan') {
          return json(res, {
            auth: { client_token: 's.granted-token', accessor: 'acc1', lease_duration: lease },
          });
        }
        if (req.url === '/v1/auth/token/revoke-accessor') revoked.push('acc1');
        return json(res, {}, 204);
      };
      const error = await rejection(
        p,
        p.createGrant({ uri: `${base}/k` }, { grantee: 'g', operations: ['encrypt'] }, call()),
      );
      expect(error.code).toBe('Internal');
      expect(error.message).toMatch(/without a valid lease duration/);
      expect(revoked).toEqual(['acc1']);
    },
  );

  it('a version without a creation time that is a date has no createdAt (never an Invalid Date)', async () => {
    route = (_, res) => json(res, keyAnswer({ keys: { '1': { creation_time: 'not a date' } } }));
    const info = await p.describeKey({ uri: `${base}/k` }, call());
    expect(info.createdAt).toBeUndefined();
    expect(info.versions?.[0]?.createdAt).toBeUndefined();
  });

  it('a key listing lists every name, and one transit cannot address only as unmodeled, with no request for it', async () => {
    const names = ['..', 'a b', '../../sys/x', 'a/', '%2e%2e', 'good', '-lead', '\u00e9', 'x\u001b[2Jy', '.'];
    listAnswer = { data: { keys: names } };
    const asked: string[] = [];
    route = (req, res) => {
      asked.push(`${req.method} ${req.url}`);
      return req.url === '/v1/transit/keys/good'
        ? json(res, keyAnswer({ name: 'good' }))
        : json(res, { errors: [] }, 404);
    };
    const listed: Array<{ uri: string; unmodeled?: string }> = [];
    for await (const entry of p.listKeys(call())) listed.push(entry);
    expect(listed.map((e) => e.uri)).toEqual([
      `${base}/%2E%2E`,
      `${base}/a%20b`,
      `${base}/%2E%2E%2F%2E%2E%2Fsys%2Fx`,
      `${base}/a%2F`,
      `${base}/%252e%252e`,
      `${base}/good`,
      `${base}/-lead`,
      `${base}/%C3%A9`,
      `${base}/x%1B%5B2Jy`,
      `${base}/%2E`,
    ]);
    expect(listed.filter((e) => e.unmodeled === undefined).map((e) => e.uri)).toEqual([`${base}/good`]);
    expect(listed.find((e) => e.uri === `${base}/a%2F`)?.unmodeled).toMatch(
      /stands for the keys stored below it/,
    );
    // Only the one addressable key was read: no name became a request path.
    expect(asked).toEqual(['GET /v1/transit/keys/good']);
  });

  it.each([
    ['entries that are not names', { data: { keys: ['good', 42] } }, /entry that is not a key name/],
    ['no list', { data: { keys: { 0: 'x' } } }, /without a list of key names/],
    ['no data', {}, /without a list of key names/],
  ])(
    'a key listing with %s is Internal (keys it may hide are never read as none)',
    async (_, answer, why) => {
      listAnswer = answer;
      route = (_, res) => json(res, keyAnswer({ name: 'good' }));
      const error = await rejection(
        p,
        (async () => {
          for await (const _entry of p.listKeys(call()));
        })(),
      );
      expect(error.code).toBe('Internal');
      expect(error.message).toMatch(why);
    },
  );

  it.each([
    ['no list', { data: { policies: { length: 1, 0: 42 } }, policies: 'keyport-grant-x' }, /without a list/],
    ['no data', {}, /without a list/],
    [
      'an entry that is not a name',
      { data: { policies: ['default', 42] } },
      /entry that is not a policy name/,
    ],
  ])(
    'a policy listing with %s is Internal (grants it may hide are never read as none)',
    async (_, answer, why) => {
      route = (_, res) => json(res, answer);
      const error = await rejection(
        p,
        (async () => {
          for await (const _grant of p.listGrants({ uri: `${base}/k` }, call()));
        })(),
      );
      expect(error.code).toBe('Internal');
      expect(error.message).toMatch(why);
    },
  );

  it('a batch answered with fewer results than items is Internal (outcomes never shifted onto other items)', async () => {
    route = (_, res) => json(res, { data: { batch_results: [{ ciphertext: 'vault:v1:AAAA' }] } });
    await expect(
      p.encryptBatch({ uri: `${base}/k` }, [{ data: bytes('a') }, { data: bytes('b') }]),
    ).rejects.toMatchObject({ code: 'Internal', message: expect.stringMatching(/2 items with 1 results/) });
  });

  it.each([200, 400])(
    "a batch answered (HTTP %i) with more results than items is Internal, never read as the items' outcomes",
    async (status) => {
      const good = { ciphertext: 'vault:v1:AAAAAAAAAAAAAAAA' };
      route = (_, res) => json(res, { data: { batch_results: [good, { error: 'x' }, good] } }, status);
      await expect(
        p.encryptBatch({ uri: `${base}/k` }, [{ data: bytes('a') }, { data: bytes('b') }]),
      ).rejects.toMatchObject({ code: 'Internal', message: expect.stringMatching(/2 items with 3 results/) });
    },
  );

  it.each([200, 400])(
    "a batch answered (HTTP %i) with each item's result but out of order is Internal, never handed to the other items",
    async (status) => {
      // A proxy reordering the results: each result is its own item's (reference copied as
      // transit copies it), and there are as many as items, so only the order is wrong.
      route = (req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => {
          body += c;
        });
        req.on('end', () => {
          const items = (
            JSON.parse(body) as { batch_input: Array<{ plaintext: string; reference?: unknown }> }
          ).batch_input;
          const results = items.map((item) => ({
            ciphertext: `vault:v1:${item.plaintext}`,
            ...(item.reference !== undefined ? { reference: item.reference } : {}),
          }));
          json(res, { data: { batch_results: results.reverse() } }, status);
        });
      };
      await expect(
        p.encryptBatch({ uri: `${base}/k` }, [{ data: bytes('aaa') }, { data: bytes('bbb') }]),
      ).rejects.toMatchObject({ code: 'Internal', message: expect.stringMatching(/results out of order/) });
    },
  );

  it('a batch answer far larger than its items can be answered with is refused before it is read', async () => {
    const good = { ciphertext: 'vault:v1:AAAAAAAAAAAAAAAA' };
    // Results that line up, padded to 4 MiB: well within 128 MiB, far beyond two one-byte items.
    route = (_, res) =>
      json(res, { data: { batch_results: [good, good] }, warnings: ['x'.repeat(4 * 1024 * 1024)] });
    await expect(
      p.encryptBatch({ uri: `${base}/k` }, [{ data: bytes('a') }, { data: bytes('b') }]),
    ).rejects.toMatchObject({
      code: 'Internal',
      retryable: false,
      message: expect.stringMatching(/larger than \d+ bytes, the most its request can be answered with/),
    });
  });

  it.each([
    ['decrypt', (uri: string) => p.decrypt({ uri }, bytes('vault:v1:AAAAAAAAAAAAAAAA'), {}, call())],
    ['encrypt', (uri: string) => p.encrypt({ uri }, bytes('a'), {}, call())],
    ['mac', (uri: string) => p.mac({ uri }, bytes('a'), call())],
  ])(
    'a %s answer far larger than its request can be answered with is refused before it is read',
    async (_, run) => {
      // Well-formed and within 128 MiB, but megabytes for a one-line request: every small call
      // answered so (many at once) would otherwise each buffer up to 128 MiB.
      const big = 'QUFB'.repeat(512 * 1024); // 2 MiB of base64
      route = (req, res) =>
        req.method === 'GET'
          ? json(res, keyAnswer({ type: 'hmac', keys: undefined }))
          : json(res, { data: { plaintext: big, ciphertext: `vault:v1:${big}`, hmac: `vault:v1:${big}` } });
      await expect(run(`${base}/big-${_}`)).rejects.toMatchObject({
        code: 'Internal',
        retryable: false,
        message: expect.stringMatching(/larger than \d+ bytes, the most its request can be answered with/),
      });
    },
  );

  it("a batch result far longer than its own item's input fails that item with Internal before it is decoded", async () => {
    // The answer as a whole stays within what the batch can be answered with (the other item is
    // large); the large result is on the wrong item.
    const huge = 'QUFB'.repeat(2 * 1024 * 1024); // 8 MiB of base64
    const good = 'vault:v1:AAAAAAAAAAAAAAAA';
    route = (_, res) =>
      json(res, { data: { batch_results: [{ ciphertext: `vault:v1:${huge}` }, { ciphertext: good }] } });
    const large = new Uint8Array(6 * 1024 * 1024); // 8 MiB as base64
    const sealed = await p.encryptBatch({ uri: `${base}/k` }, [{ data: bytes('a') }, { data: large }]);
    expect(sealed[0]).toMatchObject({
      ok: false,
      error: {
        code: 'Internal',
        retryable: false,
        message: expect.stringMatching(
          /batch_results\[0\]\.ciphertext of 8388617 chars, more than its input allows/,
        ),
      },
    });
    expect(sealed[1]?.ok).toBe(true);
    route = (_, res) => json(res, { data: { batch_results: [{ plaintext: huge }, { plaintext: 'b25l' }] } });
    const opened = await p.decryptBatch({ uri: `${base}/k` }, [
      { data: bytes(good) },
      { data: bytes(`vault:v1:${huge}`) },
    ]);
    expect(opened[0]).toMatchObject({
      ok: false,
      error: {
        code: 'Internal',
        message: expect.stringMatching(
          /batch_results\[0\]\.plaintext of 8388608 chars, more than its input allows/,
        ),
      },
    });
    expect(opened[1]?.ok).toBe(true);
  });

  it('batch results of the wrong shape fail their own item with Internal; the others keep their outcomes', async () => {
    const good = 'vault:v1:AAAAAAAAAAAAAAAA';
    route = (_, res) =>
      json(res, {
        data: { batch_results: [{ ciphertext: good }, {}, { ciphertext: 'garbage' }, 'x', { error: '' }] },
      });
    const sealed = await p.encryptBatch(
      { uri: `${base}/k` },
      ['a', 'b', 'c', 'd', 'e'].map((d) => ({ data: bytes(d) })),
    );
    expect(sealed.map((r) => r.ok)).toEqual([true, false, false, false, false]);
    const errors = sealed.flatMap((r) => (r.ok ? [] : [r.error]));
    for (const e of errors) expect(e).toMatchObject({ code: 'Internal', retryable: false });
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/batch item #1 without batch_results\[1\]\.ciphertext/),
      expect.stringMatching(/batch item #2 with batch_results\[2\]\.ciphertext that is not vault:v<N>/),
      expect.stringMatching(/batch item #3 with a result that is not an object/),
      expect.stringMatching(/batch item #4 without batch_results\[4\]\.ciphertext/),
    ]);
    expect(errors.map((e) => e.message).join(' ')).not.toContain('garbage');
  });

  it('a batch decrypt plaintext that is not base64 fails its item, never decoding to other bytes', async () => {
    route = (_, res) =>
      json(res, { data: { batch_results: [{ plaintext: 'b25l' }, { plaintext: 'not base64!' }] } });
    const ct = bytes('vault:v1:AAAAAAAAAAAAAAAA');
    const opened = await p.decryptBatch({ uri: `${base}/k` }, [{ data: ct }, { data: ct }]);
    expect(opened[0]?.ok && new TextDecoder().decode(opened[0].value.plaintext)).toBe('one');
    expect(opened[1]).toMatchObject({
      ok: false,
      error: {
        code: 'Internal',
        message: expect.stringMatching(/batch_results\[1\]\.plaintext that is not base64/),
      },
    });
  });

  it('a token creation answered without a token is a typed error saying so', async () => {
    route = (_, res) => json(res, { auth: null });
    const error = await rejection(
      p,
      p.createGrant({ uri: `${base}/k` }, { grantee: 'g', operations: ['encrypt'] }, call()),
    );
    expect(error.code).toBe('Internal');
    expect(error.message).toMatch(/without a token/);
  });

  // A key read is held to the bound of every answer (a crypto call to its request's, tighter).
  it('an answer declaring more than 128 MiB is refused before it is read', async () => {
    route = (_, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(2 ** 31) });
      res.write('{"data":');
    };
    const error = await rejection(p, p.describeKey({ uri: `${base}/k` }, call()));
    expect(error).toMatchObject({ code: 'Internal', message: expect.stringMatching(/larger than 128 MiB/) });
  });

  it('an answer streaming past 128 MiB is cut off there, not buffered to the end', async () => {
    let sent = 0;
    route = (_, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      const more = () => {
        // Bounded: 1 GiB, far past the limit; a reader that kept going would be seen reading it all.
        while (sent < 1024 && !res.destroyed) {
          sent++;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    };
    const error = await rejection(p, p.describeKey({ uri: `${base}/k` }, call()));
    expect(error).toMatchObject({ code: 'Internal', message: expect.stringMatching(/larger than 128 MiB/) });
    expect(sent).toBeLessThan(1024);
  });
});

describe('policies, metadata and contexts with `__proto__` and fields of the wrong kind (OpenBao)', () => {
  const root = rootClient();
  let p: VaultTransitProvider;
  let uri: string;
  let name: string;
  const prefix = () =>
    `keyport-grant-${createHash('sha256').update(`transit/${name}`).digest('hex').slice(0, 16)}-`;
  beforeAll(async () => {
    p = provider();
    name = keyName('hostile');
    uri = (await p.createKey({ name, spec: 'AES_256' }, call())).uri;
  });
  afterAll(() => p.close());

  it('a grant pinned to a context with a `__proto__` key lists it back prototype-free', async () => {
    const contextEquals = Object.defineProperty(Object.setPrototypeOf({ tenant: 'a' }, null), '__proto__', {
      value: 'v',
      enumerable: true,
      writable: true,
      configurable: true,
    }) as Record<string, string>;
    const grant = await p.createGrant(
      { uri },
      { grantee: 'g', operations: ['encrypt'], constraints: { contextEquals } },
      call(),
    );
    let listed: Record<string, string> | undefined;
    for await (const g of p.listGrants({ uri }, call())) {
      if (g.id === grant.id) listed = g.constraints?.contextEquals as Record<string, string>;
    }
    expect(listed).toBeDefined();
    expect(Object.getPrototypeOf(listed)).toBeNull();
    expect(Object.keys(listed ?? {}).sort()).toEqual(['__proto__', 'tenant']);
    expect(Object.getOwnPropertyDescriptor(listed, '__proto__')?.value).toBe('v');
    await p.revokeGrant({ uri }, grant.id, call());
  });

  it('a policy under a grant name whose header is not a grant keyport wrote is not listed, and revoking it is NotFound', async () => {
    const meta = (m: Record<string, unknown>) =>
      `# keyport-grant v1 ${Buffer.from(JSON.stringify(m)).toString('base64url')}\npath "x" { capabilities = ["read"] }\n`;
    const good = {
      keyUri: uri,
      grantee: 'g',
      operations: ['encrypt'],
      createdAt: new Date().toISOString(),
      accessor: 'abc',
    };
    const forged: Array<[string, Record<string, unknown>]> = [
      ['0000000000000001', { ...good, id: '0000000000000001', operations: 'encrypt' }],
      ['0000000000000002', { ...good, id: '0000000000000002', operations: ['everything'] }],
      ['0000000000000003', { ...good, id: '0000000000000003', accessor: { __proto__: 1 } }],
      ['0000000000000004', { ...good, id: '0000000000000004', createdAt: 'yesterday' }],
      ['0000000000000005', { ...good, id: 'ffffffffffffffff' }],
      ['0000000000000006', { ...good, id: '0000000000000006', contextEquals: { a: 1 } }],
    ];
    try {
      for (const [id, m] of forged) await root.write(`sys/policy/${prefix()}${id}`, { policy: meta(m) });
      const listed: string[] = [];
      for await (const g of p.listGrants({ uri }, call())) listed.push(g.id);
      expect(listed).toEqual([]);
      for (const [id] of forged)
        expect((await rejection(p, p.revokeGrant({ uri }, id, call()))).code).toBe('NotFound');
    } finally {
      for (const [id] of forged) await root.delete(`sys/policy/${prefix()}${id}`);
    }
  });

  it('labels from the metadata store keep only string values, prototype-free; a description that is not a string is left out', async () => {
    const kvPrefix = `hostile-${keyName('kv').replace(/[^a-z0-9-]/g, '')}`;
    const q = provider({ metadataStore: { kvMount: 'secret', prefix: kvPrefix } });
    try {
      // Raw JSON: node-vault's own client would drop the `__proto__` key on the way.
      const env = openbao();
      const written = await fetch(`${env.addr}/v1/secret/data/${kvPrefix}/transit/${name}`, {
        method: 'POST',
        headers: { 'X-Vault-Token': env.token, 'content-type': 'application/json' },
        body: '{"data":{"labels":{"__proto__":"x","team":5,"ok":"y"},"description":42,"usage":"encrypt_decrypt"}}',
      });
      expect(written.ok).toBe(true);
      const info = await q.describeKey({ uri }, call());
      expect(Object.getPrototypeOf(info.labels)).toBeNull();
      expect({ ...info.labels }).toEqual(JSON.parse('{"__proto__":"x","ok":"y"}'));
      expect(Object.keys(info.labels).sort()).toEqual(['__proto__', 'ok']);
      expect(info.description).toBeUndefined();
    } finally {
      await root.delete(`secret/metadata/${kvPrefix}/transit/${name}`);
      await q.close();
    }
  });
});
