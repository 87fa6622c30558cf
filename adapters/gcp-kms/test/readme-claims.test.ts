/**
 * The README read claim by claim, against keyport's Cloud KMS test server (gRPC and REST): hostile
 * options, labels and context keys, revoking only keyport's own IAM bindings, grants that let the
 * grantee do what they name, CRC32C both ways (a request corrupted on its way out, a response on
 * its way back, a missing checksum), cancellation of the in-flight call, socket failures, bare
 * Cloud KMS ciphertexts, and the README's own code samples.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { credentials } from '@grpc/grpc-js';
import { Keyport } from '@keyport/core';
import { OAuth2Client } from 'google-auth-library';
import { describe, expect, it } from 'vitest';
import { gcpKms } from '../src/index.js';
import {
  type Answer,
  type ClientMethod,
  keyportOf,
  kmsSuite,
  TRANSPORTS,
  wrapClient,
} from './support/suite.js';
import { grpcProvider, signal, staticAuth } from './support/targets.js';

const RING = 'projects/keyport-claims/locations/global/keyRings/claims';
const suite = kmsSuite(RING);
const { name, policyOf, setBindings } = suite;
const flip = (bytes: Uint8Array, at = 0) => {
  const out = Uint8Array.from(bytes);
  out[at] = (out[at] as number) ^ 1;
  return out;
};

/** A provider on the test server whose client method `method` is wrapped (request and/or response altered in flight). */
async function tampered(
  method: string,
  change: {
    request?: (r: Answer) => object;
    response?: (r: Answer) => void;
  },
) {
  const p = suite.providerOn();
  await wrapClient(p, {
    [method]: (real) => async (request, options) => {
      const sent = change.request ? change.request(request as Answer) : request;
      const result = await real(sent, options);
      change.response?.(result[0] as Answer);
      return result;
    },
  });
  return { p, kp: keyportOf(p) };
}

describe('options are checked when the provider is built', () => {
  it('a keyRing a key URI could not name (.. segments, ?, #, %, spaces) is InvalidArgument', () => {
    for (const keyRing of [
      'projects/../locations/global/keyRings/r',
      'projects/p/locations/../keyRings/r',
      'projects/./locations/global/keyRings/r',
      'projects/p?x=1/locations/global/keyRings/r',
      'projects/p/locations/glo#bal/keyRings/r',
      'projects/p/locations/%2e%2e/keyRings/r',
      'projects/p/locations/a b/keyRings/r',
      'projects/p/locations/global/keyRings/../cryptoKeys/r',
    ]) {
      expect(() => gcpKms({ keyRing }), keyRing).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    }
    expect(() =>
      gcpKms({ keyRing: 'projects/acme.com:p-1/locations/europe-west1/keyRings/app_1' }),
    ).not.toThrow();
  });

  it('numbers given as strings or NaN, and unknown enum values, are refused there too', () => {
    for (const bad of [
      { importJobKeyBits: '4096' },
      { importJobKeyBits: Number.NaN },
      { transport: 'http' },
      { protectionLevel: '__proto__' },
      { dataKeys: 'yes' },
      { keyRing: 42 },
    ]) {
      expect(() => gcpKms(bad as never), JSON.stringify(bad)).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    }
  });
});

describe('unknown options', () => {
  it('a misspelt option is refused naming it, not ignored (apiEndpont would send requests to Google)', () => {
    for (const [bad, named] of [
      [{ apiEndpont: '127.0.0.1' }, '"apiEndpont"'],
      [{ keyring: 'projects/p/locations/global/keyRings/r' }, '"keyring"'],
      [{ location: 'global' }, '"location"'],
      [JSON.parse('{"__proto__": {"transport": "rest"}}'), '"__proto__"'],
    ] as const) {
      expect(() => gcpKms(bad as never), JSON.stringify(bad)).toThrow(
        expect.objectContaining({ code: 'InvalidArgument', message: expect.stringContaining(named) }),
      );
    }
  });

  it('names an unknown key but never its value', () => {
    const secret = 'ya29.not-a-real-token';
    expect(() => gcpKms({ acessToken: secret } as never)).toThrow(
      expect.objectContaining({
        code: 'InvalidArgument',
        message: expect.not.stringContaining(secret),
      }),
    );
  });

  it('options that are not a plain object of data properties are refused, not read', () => {
    let reads = 0;
    const getter = {
      get apiEndpoint() {
        reads++;
        return '127.0.0.1';
      },
    };
    const hidden = Object.defineProperty({}, 'apiEndpoint', { value: '127.0.0.1', enumerable: false });
    // An inherited option is not the caller's own: the old check saw no own keys and used it.
    const inherited = Object.create({ apiEndpoint: 'evil.example' }) as object;
    const throwing = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('trap');
        },
      },
    );
    for (const [what, bad] of [
      ['a getter', getter],
      ['a non-enumerable property', hidden],
      ['an inherited option', inherited],
      ['a symbol key', { [Symbol('apiEndpoint')]: '127.0.0.1' }],
      ['a Map', new Map([['apiEndpoint', '127.0.0.1']])],
      ['an array', []],
      ['a class instance', new (class Options {})()],
      ['null', null],
      ['a string', 'projects/p/locations/global/keyRings/r'],
      ['a Proxy whose trap throws', throwing],
    ] as const) {
      expect(() => gcpKms(bad as never), what).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
    }
    expect(reads).toBe(0);
  });

  it('headers are a plain record of header-safe strings, read once at construction', () => {
    let reads = 0;
    const getter = {
      get 'x-goog-user-project'() {
        reads++;
        return 'p';
      },
    };
    const token = 'ya29.secret-token';
    for (const [what, headers] of [
      ['a getter', getter],
      [
        'a CR LF in a value (a split header)',
        { 'x-goog-user-project': `p\r\nauthorization: Bearer ${token}` },
      ],
      ['a number', { 'x-count': 5 }],
      ['a name with a space', { 'x goog': 'p' }],
      ['binary metadata', { 'x-data-bin': 'AAAA' }],
      ['an array', ['x']],
    ] as const) {
      let error: unknown;
      try {
        gcpKms({ headers } as never);
      } catch (e) {
        error = e;
      }
      expect(error, what).toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringContaining('headers'),
      });
      expect(String((error as Error).message), what).not.toContain(token);
    }
    expect(reads).toBe(0);
    // What is refused above is refused for its shape: ordinary headers are taken.
    void gcpKms({ headers: { 'x-goog-user-project': 'p', 'X-Trace': 'a b\tc' } }).close();
  });

  it('keeps the options it checked: a Proxy cannot answer differently afterwards', async () => {
    const given = { close: async () => undefined };
    const swapped = { close: async () => undefined };
    let checked = false;
    const options = new Proxy({ client: given } as Record<string, unknown>, {
      // after the check, answer with a client the check never saw
      get: (target, key) => (checked && key === 'client' ? swapped : target[key as string]),
    });
    const p = gcpKms(options as never);
    checked = true;
    expect(await p.client()).toBe(given);
    await p.close();
  });
});

describe('labels and context keys', () => {
  for (const [transport, make] of TRANSPORTS) {
    it(`a label Cloud KMS would refuse (__proto__, uppercase) is InvalidArgument over ${transport}, never dropped`, async () => {
      const p = suite.providerOn(make);
      const k = keyportOf(p);
      for (const labels of [JSON.parse('{"__proto__":"x"}'), { Team: 'a' }, { team: 'A' }, { '': 'a' }]) {
        await expect(
          k.createKey('gcp-kms', { name: name('label'), spec: 'AES_256', labels }),
          JSON.stringify(labels),
        ).rejects.toMatchObject({ code: 'InvalidArgument' });
      }
      const ok = await k.createKey('gcp-kms', {
        name: name('label'),
        spec: 'AES_256',
        labels: { constructor: 'x', team: '' },
      });
      expect((await k.describeKey(ok.uri)).labels).toEqual({ constructor: 'x', team: '' });
      await k.close();
    });

    it(`__proto__ as a context key is an ordinary pair, bound as AAD over ${transport}`, async () => {
      const p = suite.providerOn(make);
      const k = keyportOf(p);
      const key = await k.createKey('gcp-kms', { name: name('ctx'), spec: 'AES_256' });
      const context = JSON.parse('{"__proto__":"a"}');
      const { ciphertext } = await k.encrypt(key.uri, randomBytes(8), { context });
      await expect(k.decrypt(key.uri, ciphertext, { context })).resolves.toMatchObject({ keyVersion: '1' });
      for (const other of [JSON.parse('{"__proto__":"b"}'), {}, undefined]) {
        await expect(k.decrypt(key.uri, ciphertext, { context: other })).rejects.toMatchObject({
          code: 'InvalidCiphertext',
        });
      }
      await k.close();
    });
  }

  it('an RSA key refuses a context on decrypt as well as on encrypt', async () => {
    const key = await suite.kp.createKey('gcp-kms', {
      name: name('rsa'),
      spec: 'RSA_2048',
      usage: 'encrypt_decrypt',
    });
    const { ciphertext } = await suite.kp.encrypt(key.uri, randomBytes(16));
    await expect(suite.kp.decrypt(key.uri, ciphertext, { context: { a: 'b' } })).rejects.toMatchObject({
      code: 'Unsupported',
      capability: 'context',
    });
  });
});

describe('grants are IAM bindings', () => {
  it('revokeGrant never removes a binding keyport did not make, even one whose title is the id', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('foreign'), spec: 'AES_256' });
    const read = () => policyOf(key.uri);
    const condition = { title: 'ops-admins', expression: 'request.time < timestamp("2999-01-01T00:00:00Z")' };
    const foreign = [
      { role: 'roles/cloudkms.admin', members: ['group:ops@example.com'], condition },
      // a look-alike title without keyport's grant record
      {
        role: 'roles/cloudkms.viewer',
        members: ['group:audit@example.com'],
        condition: { ...condition, title: 'kpg-0123456789abcdef' },
      },
    ];
    await setBindings(key.uri, foreign);
    for (const id of ['ops-admins', 'kpg-0123456789abcdef']) {
      await expect(suite.kp.revokeGrant(key.uri, id), id).rejects.toMatchObject({ code: 'NotFound' });
    }
    expect((await read()).bindings?.map((b) => b.condition?.title).sort()).toEqual([
      'kpg-0123456789abcdef',
      'ops-admins',
    ]);
  });

  it('sign, mac and verify grants let the grantee sign, MAC and verify (pinned or not)', async () => {
    const asGrantee = async (uri: string, operations: Array<'sign' | 'mac' | 'verify' | 'verify_mac'>) => {
      const principal = `user:${name('grantee')}@example.com`;
      await suite.kp.createGrant(uri, { grantee: principal, operations });
      return keyportOf(suite.providerOn(grpcProvider, { principal }));
    };
    const message = randomBytes(24);
    const ec = await suite.kp.createKey('gcp-kms', { name: name('ec'), spec: 'EC_P256' });
    const signer = await asGrantee(ec.uri, ['sign']);
    const signed = await signer.sign(ec.uri, message, { algorithm: 'ECDSA_SHA_256' });
    await signer.sign({ uri: ec.uri, version: '1' }, message, { algorithm: 'ECDSA_SHA_256' });
    const verifier = await asGrantee(ec.uri, ['verify']);
    expect(await verifier.verify(ec.uri, message, signed.signature, { algorithm: 'ECDSA_SHA_256' })).toBe(
      true,
    );
    await expect(verifier.sign(ec.uri, message, { algorithm: 'ECDSA_SHA_256' })).rejects.toMatchObject({
      code: 'AccessDenied',
    });
    const hmac = await suite.kp.createKey('gcp-kms', { name: name('hmac'), spec: 'HMAC_256' });
    const macer = await asGrantee(hmac.uri, ['mac']);
    const { mac } = await macer.mac(hmac.uri, message);
    const macVerifier = await asGrantee(hmac.uri, ['verify_mac']);
    expect(await macVerifier.verifyMac({ uri: hmac.uri, version: '1' }, message, mac)).toBe(true);
    await expect(macVerifier.mac(hmac.uri, message)).rejects.toMatchObject({ code: 'AccessDenied' });
    await Promise.all([signer, verifier, macer, macVerifier].map((k) => k.close()));
  });

  it('concurrent grants on one key are all kept (etag read-modify-write, no lost update)', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('race'), spec: 'AES_256' });
    const made = await Promise.all(
      [1, 2, 3].map((i) =>
        suite.kp.createGrant(key.uri, { grantee: `user:u${i}@example.com`, operations: ['encrypt'] }),
      ),
    );
    const listed: string[] = [];
    for await (const g of suite.kp.listGrants(key.uri)) listed.push(g.id);
    expect(listed.sort()).toEqual(made.map((g) => g.id).sort());
  });
});

describe('CRC32C both ways', () => {
  it('a public key whose pem_crc32c is missing or does not match is Integrity (retryable)', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('pem'), spec: 'EC_P256' });
    for (const alter of [
      (r: Record<string, unknown>) => {
        delete r.pemCrc32c;
      },
      (r: Record<string, unknown>) => {
        r.pemCrc32c = null;
      },
      (r: Record<string, unknown>) => {
        r.pem = String(r.pem).replace('\n', '\r\n');
      },
    ]) {
      const { p } = await tampered('getPublicKey', { response: alter });
      const error = await p.getPublicKey({ uri: key.uri }, signal()).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'Integrity', retryable: true });
      await p.close();
    }
  });

  it('a response corrupted on the way back (signature, MAC, verified_* flags) is Integrity (retryable)', async () => {
    const ec = await suite.kp.createKey('gcp-kms', { name: name('sig'), spec: 'EC_P256' });
    const hmac = await suite.kp.createKey('gcp-kms', { name: name('mac'), spec: 'HMAC_256' });
    const { mac } = await suite.kp.mac(hmac.uri, Uint8Array.of(1));
    const sign = (k: Keyport) => k.sign(ec.uri, Uint8Array.of(1), { algorithm: 'ECDSA_SHA_256' });
    const cases: Array<[string, (r: Record<string, unknown>) => void, (k: Keyport) => Promise<unknown>]> = [
      [
        'asymmetricSign',
        (r) => {
          r.signature = flip(r.signature as Uint8Array);
        },
        sign,
      ],
      [
        'asymmetricSign',
        (r) => {
          r.verifiedDigestCrc32c = false;
        },
        sign,
      ],
      [
        'macSign',
        (r) => {
          r.mac = flip(r.mac as Uint8Array);
        },
        (k) => k.mac(hmac.uri, Uint8Array.of(1)),
      ],
      [
        'macSign',
        (r) => {
          r.verifiedDataCrc32c = false;
        },
        (k) => k.mac(hmac.uri, Uint8Array.of(1)),
      ],
      [
        'macVerify',
        (r) => {
          r.verifiedSuccessIntegrity = false;
        },
        (k) => k.verifyMac(hmac.uri, Uint8Array.of(1), mac),
      ],
      [
        'macVerify',
        (r) => {
          r.verifiedMacCrc32c = false;
        },
        (k) => k.verifyMac(hmac.uri, Uint8Array.of(1), mac),
      ],
      [
        'encrypt',
        (r) => {
          r.verifiedPlaintextCrc32c = false;
        },
        (k) => k.encrypt(`gcp-kms://${RING}/cryptoKeys/${aes}`, Uint8Array.of(1)),
      ],
    ];
    const aes = name('aes');
    await suite.kp.createKey('gcp-kms', { name: aes, spec: 'AES_256' });
    for (const [method, response, run] of cases) {
      const t = await tampered(method, { response });
      await expect(run(t.kp), `${method} ${response}`).rejects.toMatchObject({
        code: 'Integrity',
        retryable: true,
      });
      await t.kp.close();
    }
  });

  it('every request carries its checksums: bytes corrupted on the way out are refused by the service (Integrity)', async () => {
    const aes = await suite.kp.createKey('gcp-kms', { name: name('out'), spec: 'AES_256' });
    const rsa = await suite.kp.createKey('gcp-kms', {
      name: name('out'),
      spec: 'RSA_2048',
      usage: 'encrypt_decrypt',
    });
    const ec = await suite.kp.createKey('gcp-kms', { name: name('out'), spec: 'EC_P256' });
    const hmac = await suite.kp.createKey('gcp-kms', { name: name('out'), spec: 'HMAC_256' });
    const context = { tenant: 'acme' };
    const sealed = await suite.kp.encrypt(aes.uri, randomBytes(16), { context });
    const rsaSealed = await suite.kp.encrypt(rsa.uri, randomBytes(16));
    const { mac } = await suite.kp.mac(hmac.uri, Uint8Array.of(1));
    const corrupt = (field: string) => (r: Record<string, unknown>) => ({
      ...r,
      [field]: flip(r[field] as Uint8Array),
    });
    const cases: Array<[string, string, (k: Keyport) => Promise<unknown>]> = [
      ['encrypt', 'plaintext', (k) => k.encrypt(aes.uri, randomBytes(16), { context })],
      ['encrypt', 'additionalAuthenticatedData', (k) => k.encrypt(aes.uri, randomBytes(16), { context })],
      ['decrypt', 'ciphertext', (k) => k.decrypt(aes.uri, sealed.ciphertext, { context })],
      ['decrypt', 'additionalAuthenticatedData', (k) => k.decrypt(aes.uri, sealed.ciphertext, { context })],
      ['asymmetricDecrypt', 'ciphertext', (k) => k.decrypt(rsa.uri, rsaSealed.ciphertext)],
      [
        'asymmetricSign',
        'digestBytes',
        (k) => k.sign(ec.uri, Uint8Array.of(1), { algorithm: 'ECDSA_SHA_256' }),
      ],
      ['macSign', 'data', (k) => k.mac(hmac.uri, Uint8Array.of(1))],
      ['macVerify', 'data', (k) => k.verifyMac(hmac.uri, Uint8Array.of(1), mac)],
      ['macVerify', 'mac', (k) => k.verifyMac(hmac.uri, Uint8Array.of(1), mac)],
    ];
    for (const [method, field, run] of cases) {
      const request =
        field === 'digestBytes'
          ? (r: Record<string, unknown>) => {
              const digest = r.digest as { sha256: Uint8Array };
              return { ...r, digest: { sha256: flip(digest.sha256) } };
            }
          : corrupt(field);
      const t = await tampered(method, { request });
      await expect(run(t.kp), `${method}.${field}`).rejects.toMatchObject({ code: 'Integrity' });
      await t.kp.close();
    }
  });
});

describe('cancellation, deadlines and sockets', () => {
  for (const [transport, make] of TRANSPORTS) {
    it(`the AbortSignal cancels the in-flight ${transport} call (provider called directly, no core race)`, async () => {
      const p = suite.providerOn(make);
      const key = await p.createKey({ name: name('abort'), spec: 'AES_256' }, signal());
      suite.server.faults.set({ latencyMs: 8_000, methods: ['Encrypt'] });
      try {
        const controller = new AbortController();
        const started = Date.now();
        setTimeout(() => controller.abort(), 50);
        const error = await p
          .encrypt({ uri: key.uri }, randomBytes(8), {}, { signal: controller.signal })
          .catch((e: unknown) => e);
        expect(error).toMatchObject({ code: 'Aborted' });
        expect(Date.now() - started).toBeLessThan(5_000); // the server would answer after 8 s
      } finally {
        suite.server.faults.clear();
        await p.close();
      }
    });
  }

  it('a refused connection over REST is Unavailable and retryable (a socket error, not an HTTP status)', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const dead = gcpKms({
      transport: 'rest',
      protocol: 'http',
      apiEndpoint: '127.0.0.1',
      port: closed,
      authClient: staticAuth(),
    });
    const error = await dead
      .describeKey({ uri: `gcp-kms://${RING}/cryptoKeys/x` }, signal())
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'Unavailable', retryable: true });
    await dead.close();
  });
});

describe('ciphertexts', () => {
  it('a bare Cloud KMS ciphertext (made by another client) decrypts, with keyVersion undefined', async () => {
    const key = await suite.kp.createKey('gcp-kms', { name: name('bare'), spec: 'AES_256' });
    const kms = await suite.provider.client();
    const plaintext = randomBytes(20);
    const [res] = await kms.encrypt({ name: key.uri.slice('gcp-kms://'.length), plaintext });
    const opened = await suite.kp.decrypt(key.uri, res.ciphertext as Uint8Array);
    expect(Buffer.from(opened.plaintext).equals(plaintext)).toBe(true);
    expect(opened.keyVersion).toBeUndefined();
  });
});

describe('the README samples run as written', () => {
  it('Usage, with the "Reaching a local endpoint" options, over gRPC and REST', async () => {
    const port = suite.server.port;
    const restPort = Number(new URL(suite.server.restUrl ?? '').port);
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: 'test' }); // static token: no metadata-server probing
    const keyRing = 'projects/acme/locations/europe-west1/keyRings/app';
    for (const gcp of [
      gcpKms({ keyRing, apiEndpoint: '127.0.0.1', port, sslCreds: credentials.createInsecure(), authClient }),
      gcpKms({
        keyRing,
        transport: 'rest',
        protocol: 'http',
        apiEndpoint: '127.0.0.1',
        port: restPort,
        authClient,
      }),
    ]) {
      const keys = new Keyport({ providers: [gcp] });
      const data = randomBytes(32);
      const key = await keys.createKey('gcp-kms', {
        name: name('orders'),
        spec: 'AES_256',
        labels: { team: 'billing' },
      });
      const { ciphertext, keyVersion } = await keys.encrypt(key.uri, data, { context: { tenant: 'acme' } });
      const { plaintext } = await keys.decrypt(key.uri, ciphertext, { context: { tenant: 'acme' } });
      expect(Buffer.from(plaintext).equals(data)).toBe(true);
      expect(keyVersion).toBe('1');
      expect(await gcp.client()).toBeDefined();
      await keys.close();
    }
  });
});

describe('hostile answers', () => {
  it('a listing whose server repeats a page token ends Internal, not in an endless loop', async () => {
    const p = suite.providerOn();
    const kp2 = keyportOf(p);
    const key = await kp2.createKey('gcp-kms', { name: name('endless'), spec: 'EC_P256' });
    const kms = (await p.client()) as unknown as Record<string, ClientMethod>;
    let pages = 0;
    /** `method` answers its first page again and again, naming the same next-page token. */
    const endless = (method: string) => {
      const real = kms[method] as ClientMethod;
      kms[method] = async (request, options) => {
        // a listing that never stopped on its own is stopped here, failing otherwise
        if (++pages > 50) throw new Error('still listing after 50 pages');
        const [items, , raw] = await real.call(kms, { ...request, pageToken: '' }, options);
        return [items, { ...request, pageToken: 'again' }, raw];
      };
      return () => {
        kms[method] = real;
      };
    };
    const restore = endless('listCryptoKeyVersions');
    await expect(kp2.describeKey(key.uri)).rejects.toMatchObject({ code: 'Internal' });
    expect(pages).toBe(2);
    restore();
    pages = 0;
    endless('listCryptoKeys');
    const listed: unknown[] = [];
    await expect(
      (async () => {
        for await (const k of kp2.listKeys('gcp-kms')) listed.push(k);
      })(),
    ).rejects.toMatchObject({ code: 'Internal' });
    // the first page was read once, not again under the repeated token
    expect(listed.length).toBeGreaterThan(0);
    expect(pages).toBe(2);
    await kp2.close();
  });
});
