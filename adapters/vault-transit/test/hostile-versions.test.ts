// Versions in answers, read as an attacker (or a proxy that is not quite Vault) would write them:
// a key read whose `keys` map lists versions the key cannot have, answers for a pinned ref made
// by another version, a key whose type changes between calls, and an import wrapping key that is
// not one. Each is a typed Internal error saying what was wrong, never used silently. A stand-in
// HTTP server answers, as OpenBao never answers so.

import { generateKeyPairSync } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { VaultTransitProvider } from '../src/index.js';
import { bytes, call, json, keyData, rejection, send, standInVault } from './helpers.js';

type Route = (req: IncomingMessage, res: ServerResponse) => void;

describe('versions and types in answers (a stand-in server)', () => {
  let route: Route = (_, res) => json(res, {}, 404);
  let p: VaultTransitProvider;
  let base: string;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ provider: p, base, close } = await standInVault((req, res) => route(req, res)));
  });
  afterAll(() => close());
  beforeEach(() => {
    route = (_, res) => json(res, {}, 404);
  });

  // Raw JSON: JSON.stringify would drop a `__proto__` key set through an object literal.
  const rawKeys = (keys: string, over: Record<string, unknown> = {}) => {
    const body = JSON.stringify({ data: keyData({ keys: '@KEYS@', ...over }) });
    return body.replace('"@KEYS@"', keys);
  };
  it.each([
    ['a __proto__ entry', '{"1":1700000000,"__proto__":{"type":"rsa-2048"}}', {}],
    ['a version that is not an integer', '{"1":1700000000,"1.5":1700000000}', {}],
    ['a version with a leading zero', '{"01":1700000000}', {}],
    ['a version nobody has (huge)', '{"1":1700000000,"99999999999999":1700000000}', {}],
    ['a version past latest_version', '{"1":1700000000,"2":1700000000}', {}],
    [
      'latest_version beyond the versions listed',
      '{"1":1700000000}',
      { latest_version: 3, min_decryption_version: 1 },
    ],
    [
      'a version below the oldest left by trim',
      '{"1":1,"2":2,"3":3}',
      { latest_version: 3, min_available_version: 2 },
    ],
    [
      'a version archived by min_decryption_version',
      '{"1":1,"2":2}',
      { latest_version: 2, min_decryption_version: 2 },
    ],
    ['no versions at all', '{}', {}],
  ])('a key read whose keys map has %s is Internal, never listed', async (_, keys, over) => {
    route = (_, res) => send(res, rawKeys(keys, over));
    const error = await rejection(p, p.describeKey({ uri: `${base}/k` }, call()));
    expect(error.code).toBe('Internal');
    expect(error.message).toMatch(/^Vault answered a key read with an unexpected (entry in )?keys/);
  });

  it("a key read as transit writes it is read: versions from the oldest left by trim, and HMAC keys' without a keys map", async () => {
    route = (_, res) =>
      json(res, {
        data: keyData({
          keys: { '2': 2, '3': 3 },
          latest_version: 3,
          min_available_version: 2,
          min_decryption_version: 2,
        }),
      });
    const info = await p.describeKey({ uri: `${base}/trimmed` }, call());
    expect(info.versions?.map((v) => [v.version, v.state])).toEqual([
      ['1', 'destroyed'],
      ['2', 'enabled'],
      ['3', 'enabled'],
    ]);
    // Versions below min_decryption_version are archived: transit lists them no more.
    route = (_, res) =>
      json(res, { data: keyData({ keys: { '2': 2 }, latest_version: 2, min_decryption_version: 2 }) });
    expect((await p.describeKey({ uri: `${base}/archived` }, call())).versions?.[0]?.state).toBe('disabled');
    route = (_, res) => json(res, { data: keyData({ type: 'hmac', keys: undefined, latest_version: 2 }) });
    expect((await p.describeKey({ uri: `${base}/hmac` }, call())).primaryVersion).toBe('2');
  });

  /** A 70-byte signature shaped as ECDSA's ASN.1 (a DER SEQUENCE), base64. */
  const DER_70 = Buffer.concat([Buffer.from([0x30, 68]), Buffer.alloc(68, 1)]).toString('base64');
  /** Key reads answer `type`; every write answers `answer`. */
  const answering = (type: string, answer: unknown) => {
    route = (req, res) => (req.method === 'GET' ? json(res, { data: keyData({ type }) }) : json(res, answer));
  };
  const pinnedCalls: Array<[string, string, unknown, (uri: string) => Promise<unknown>]> = [
    [
      'encrypt',
      'aes256-gcm96',
      { ciphertext: 'vault:v2:AAAA' },
      (uri) => p.encrypt({ uri }, bytes('x'), {}, call()),
    ],
    [
      'datakey/plaintext',
      'aes256-gcm96',
      { ciphertext: 'vault:v2:AAAA', plaintext: Buffer.alloc(32).toString('base64') },
      (uri) => p.generateDataKey({ uri }, {}, call()),
    ],
    [
      'sign',
      'ecdsa-p256',
      { signature: `vault:v2:${DER_70}` },
      (uri) => p.sign({ uri }, bytes('x'), {}, call()),
    ],
    ['hmac', 'hmac', { hmac: 'vault:v2:AAAA' }, (uri) => p.mac({ uri }, bytes('x'), call())],
  ];
  it.each(pinnedCalls)(
    'transit %s for a ref pinned to version 1, answered by version 2, is Internal',
    async (op, type, data, run) => {
      answering(type, { data });
      const error = await rejection(p, run(`${base}/pinned-${op.replace('/', '-')}?version=1`));
      expect(error.code).toBe('Internal');
      expect(error.message).toBe(`Vault answered transit ${op} naming version 2 where version 1 was pinned`);
      // Unpinned, version 2 is the key's answer to take.
      const ok = (await run(`${base}/pinned-${op.replace('/', '-')}`)) as { keyVersion: string };
      expect(ok.keyVersion).toBe('2');
    },
  );

  it('an encryptBatch item for a pinned ref answered by another version fails alone with Internal', async () => {
    answering('aes256-gcm96', {
      data: { batch_results: [{ ciphertext: 'vault:v1:AAAA' }, { ciphertext: 'vault:v2:AAAA' }] },
    });
    const out = await p.encryptBatch({ uri: `${base}/batch?version=1` }, [
      { data: bytes('a') },
      { data: bytes('b') },
    ]);
    expect(out[0]).toMatchObject({ ok: true, value: { keyVersion: '1' } });
    expect(out[1]).toMatchObject({ ok: false, error: { code: 'Internal' } });
    expect(out[1]?.ok === false && out[1].error.message).toMatch(
      /batch item #1 naming version 2 where version 1 was pinned/,
    );
  });

  it('a key whose type changes between calls is Internal once (the calls since used the old type), then read anew', async () => {
    const uri = `${base}/shifting`;
    answering('ecdsa-p256', {});
    expect((await p.describeKey({ uri }, call())).spec).toBe('EC_P256');
    answering('rsa-2048', {});
    const error = await rejection(p, p.describeKey({ uri }, call()));
    expect(error.code).toBe('Internal');
    expect(error.message).toMatch(/key read of another type than before/);
    expect((await p.describeKey({ uri }, call())).spec).toBe('RSA_2048');
    // A verify reads the key's versions: a type change seen there is refused the same way, never
    // a verification with the parameters of the type remembered.
    answering('ecdsa-p256', { data: { batch_results: [{ valid: true }] } });
    const verified = await rejection(
      p,
      p.verify({ uri }, bytes('m'), bytes('s'), { algorithm: 'RSASSA_PSS_SHA_256' }, call()),
    );
    expect(verified.code).toBe('Internal');
  });

  it('a signature of another type than the key remembered (the key replaced behind this instance) is Internal, never labelled with the old algorithm', async () => {
    const uri = `${base}/replaced-signer`;
    answering('rsa-2048', {});
    expect((await p.describeKey({ uri }, call())).spec).toBe('RSA_2048');
    // Replaced by an ECDSA key: transit signs with it and ignores the RSA parameters.
    answering('ecdsa-p256', { data: { signature: `vault:v1:${DER_70}` } });
    const error = await rejection(
      p,
      p.sign({ uri }, bytes('m'), { algorithm: 'RSASSA_PSS_SHA_256' }, call()),
    );
    expect(error.code).toBe('Internal');
    expect(error.message).toMatch(/signature that no rsa-2048 key makes \(70 bytes\)/);
    // Forgotten: the next call reads the key as it is now.
    const signed = await p.sign({ uri }, bytes('m'), {}, call());
    expect(signed.algorithm).toBe('ECDSA_SHA_256');
    // And an RSA-sized answer to a key remembered as ECDSA is refused the same way.
    answering('rsa-2048', { data: { signature: `vault:v1:${Buffer.alloc(256, 1).toString('base64')}` } });
    expect((await rejection(p, p.sign({ uri }, bytes('m'), {}, call()))).code).toBe('Internal');
  });

  it.each([
    ['no public_key', {}],
    ['a public_key that is not PEM', { public_key: 'not a key' }],
    [
      'an EC public key (transit wraps under RSA)',
      {
        public_key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
          type: 'spki',
          format: 'pem',
        }),
      },
    ],
  ])('an import wrapping key answered with %s is Internal, not a TypeError', async (_, data) => {
    route = (req, res) => (req.url?.endsWith('/wrapping_key') ? json(res, { data }) : json(res, {}, 404));
    const name = `${base}/import-${Math.random().toString(36).slice(2)}`;
    await p.createKey({ name, spec: 'AES_256', external: true }, call());
    const error = await rejection(p, p.getImportParameters({ uri: name }, {}, call()));
    expect(error.code).toBe('Internal');
    expect(error.message).toMatch(/wrapping key read without an RSA public key/);
  });
});
