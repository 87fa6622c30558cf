/**
 * Every public driver method called directly (not through Keyport, which checks first) with each
 * kind of bad argument: a missing `o`, a `null` request, a string where bytes belong, a ref that
 * is not `{ uri: string }`, a signal that is not an AbortSignal. Each is InvalidArgument naming
 * the argument, and no PKCS#11 function runs; the same calls with good arguments still work.
 */
import { createHash } from 'node:crypto';
import type { KeyInfo } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pkcs11Provider } from '../src/index.js';
import { countCalls, openProvider, signal, uniqueName } from './support.js';

/** The pkcs11js functions a call would reach first: any of them running means the check came too late. */
const P11_FUNCTIONS = [
  'C_FindObjectsInit',
  'C_FindObjects',
  'C_FindObjectsFinal',
  'C_GetAttributeValue',
  'C_OpenSession',
  'C_EncryptInit',
  'C_DecryptInit',
  'C_SignInit',
  'C_VerifyInit',
  'C_GenerateRandom',
  'C_GenerateKey',
  'C_GenerateKeyPair',
  'C_WrapKey',
  'C_UnwrapKey',
] as const;

type Call = (p: Pkcs11Provider) => unknown;

describe('public driver methods refuse bad arguments before any PKCS#11 call', () => {
  let provider: Pkcs11Provider;
  let aes: KeyInfo;
  let ec: KeyInfo;
  let hmac: KeyInfo;
  let spare: KeyInfo;
  let sealed: Uint8Array;
  let signature: Uint8Array;
  let tag: Uint8Array;
  const bytes = new Uint8Array([1, 2, 3]);
  const digest = createHash('sha256').update('m').digest();

  beforeAll(async () => {
    provider = await openProvider();
    const o = { signal: signal() };
    aes = await provider.createKey({ name: uniqueName('direct-aes'), spec: 'AES_256', exportable: true }, o);
    ec = await provider.createKey({ name: uniqueName('direct-ec'), spec: 'EC_P256' }, o);
    hmac = await provider.createKey({ name: uniqueName('direct-hmac'), spec: 'HMAC_256' }, o);
    // What disableKey would act on, were a check missing (the old code disabled it): not a key the good calls use.
    spare = await provider.createKey({ name: uniqueName('direct-spare'), spec: 'AES_256' }, o);
    sealed = (await provider.encrypt({ uri: aes.uri }, bytes, {}, o)).ciphertext;
    signature = (await provider.sign({ uri: ec.uri }, digest, { messageType: 'digest' }, o)).signature;
    tag = (await provider.mac({ uri: hmac.uri }, bytes, o)).mac;
  });
  afterAll(() => provider.close());

  /** Each public method with good arguments, as a function of (ref, bytes, req, o) overrides. */
  interface Args {
    ref?: unknown;
    bytes?: unknown;
    req?: unknown;
    o?: unknown;
  }
  const good = () => ({ signal: signal() });
  const pick = (a: Args, key: keyof Args, fallback: unknown): unknown => (key in a ? a[key] : fallback);
  // biome-ignore lint/suspicious/noExplicitAny: the point is to call with the wrong types
  const any = (v: unknown): any => v;
  const methods: Record<string, { call: (a: Args) => Call; has: ReadonlyArray<keyof Args> }> = {
    describeKey: {
      has: ['ref', 'o'],
      call: (a) => (p) => p.describeKey(any(pick(a, 'ref', { uri: aes.uri })), any(pick(a, 'o', good()))),
    },
    rotateKey: {
      has: ['ref', 'o'],
      call: (a) => (p) => p.rotateKey(any(pick(a, 'ref', { uri: aes.uri })), any(pick(a, 'o', good()))),
    },
    enableKey: {
      has: ['ref', 'o'],
      call: (a) => (p) => p.enableKey(any(pick(a, 'ref', { uri: aes.uri })), any(pick(a, 'o', good()))),
    },
    disableKey: {
      has: ['ref', 'o'],
      call: (a) => (p) => p.disableKey(any(pick(a, 'ref', { uri: spare.uri })), any(pick(a, 'o', good()))),
    },
    destroyKeyVersion: {
      has: ['ref', 'o'],
      call: (a) => (p) =>
        p.destroyKeyVersion(any(pick(a, 'ref', { uri: aes.uri, version: '99' })), any(pick(a, 'o', good()))),
    },
    createKey: {
      has: ['req', 'o'],
      call: (a) => (p) =>
        p.createKey(
          any(pick(a, 'req', { name: uniqueName('direct-new'), spec: 'AES_256' })),
          any(pick(a, 'o', good())),
        ),
    },
    listKeys: {
      has: ['o'],
      call: (a) => async (p) => {
        for await (const _ of p.listKeys(any(pick(a, 'o', good())))) break;
      },
    },
    encrypt: {
      has: ['ref', 'bytes', 'req', 'o'],
      call: (a) => (p) =>
        p.encrypt(
          any(pick(a, 'ref', { uri: aes.uri })),
          any(pick(a, 'bytes', bytes)),
          any(pick(a, 'req', {})),
          any(pick(a, 'o', good())),
        ),
    },
    decrypt: {
      has: ['ref', 'bytes', 'req', 'o'],
      call: (a) => (p) =>
        p.decrypt(
          any(pick(a, 'ref', { uri: aes.uri })),
          any(pick(a, 'bytes', sealed)),
          any(pick(a, 'req', {})),
          any(pick(a, 'o', good())),
        ),
    },
    generateDataKey: {
      has: ['ref', 'req', 'o'],
      call: (a) => (p) =>
        p.generateDataKey(
          any(pick(a, 'ref', { uri: aes.uri })),
          any(pick(a, 'req', {})),
          any(pick(a, 'o', good())),
        ),
    },
    sign: {
      has: ['ref', 'bytes', 'req', 'o'],
      call: (a) => (p) =>
        p.sign(
          any(pick(a, 'ref', { uri: ec.uri })),
          any(pick(a, 'bytes', digest)),
          any(pick(a, 'req', { messageType: 'digest' })),
          any(pick(a, 'o', good())),
        ),
    },
    verify: {
      has: ['ref', 'bytes', 'req', 'o'],
      call: (a) => (p) =>
        p.verify(
          any(pick(a, 'ref', { uri: ec.uri })),
          any(pick(a, 'bytes', digest)),
          signature,
          any(pick(a, 'req', { messageType: 'digest', algorithm: 'ECDSA_SHA_256' })),
          any(pick(a, 'o', good())),
        ),
    },
    'verify (signature)': {
      has: ['bytes'],
      call: (a) => (p) =>
        p.verify(
          { uri: ec.uri },
          digest,
          any(pick(a, 'bytes', signature)),
          { messageType: 'digest', algorithm: 'ECDSA_SHA_256' },
          good(),
        ),
    },
    mac: {
      has: ['ref', 'bytes', 'o'],
      call: (a) => (p) =>
        p.mac(
          any(pick(a, 'ref', { uri: hmac.uri })),
          any(pick(a, 'bytes', bytes)),
          any(pick(a, 'o', good())),
        ),
    },
    verifyMac: {
      has: ['ref', 'bytes', 'o'],
      call: (a) => (p) =>
        p.verifyMac(
          any(pick(a, 'ref', { uri: hmac.uri })),
          any(pick(a, 'bytes', bytes)),
          tag,
          any(pick(a, 'o', good())),
        ),
    },
    'verifyMac (mac)': {
      has: ['bytes'],
      call: (a) => (p) => p.verifyMac({ uri: hmac.uri }, bytes, any(pick(a, 'bytes', tag)), good()),
    },
    getImportParameters: {
      has: ['ref', 'req', 'o'],
      call: (a) => (p) =>
        p.getImportParameters(
          any(pick(a, 'ref', { uri: aes.uri })),
          any(pick(a, 'req', {})),
          any(pick(a, 'o', good())),
        ),
    },
    importKeyMaterial: {
      has: ['ref', 'req', 'o'],
      call: (a) => (p) =>
        p.importKeyMaterial(
          any(pick(a, 'ref', { uri: aes.uri })),
          any(pick(a, 'req', { wrappedMaterial: bytes, algorithm: 'RSAES_OAEP_SHA_256' })),
          any(pick(a, 'o', good())),
        ),
    },
    getPublicKey: {
      has: ['ref', 'o'],
      call: (a) => (p) => p.getPublicKey(any(pick(a, 'ref', { uri: ec.uri })), any(pick(a, 'o', good()))),
    },
    wrapKeyForExport: {
      has: ['ref', 'o'],
      call: (a) => (p) =>
        p.wrapKeyForExport(
          any(pick(a, 'ref', { uri: aes.uri })),
          { wrappingPublicKeySpki: bytes, algorithm: 'RSAES_OAEP_SHA_256' },
          any(pick(a, 'o', good())),
        ),
    },
  };

  /** Bad values of each argument kind, and the name the error must give. */
  const bad: Record<keyof Args, Array<[string, unknown, string]>> = {
    ref: [
      ['undefined ref', undefined, 'ref'],
      ['null ref', null, 'ref'],
      ['a bare URI string', 'pkcs11:object=x', 'ref'],
      ['a number', 42, 'ref'],
      ['uri not a string', { uri: 42 }, 'ref.uri'],
      ['uri missing', { version: '1' }, 'ref.uri'],
      ['version not a string', { uri: 'pkcs11:object=x', version: 1 }, 'ref.version'],
      [
        'a throwing getter',
        {
          get uri(): string {
            throw new TypeError('boom');
          },
        },
        'ref.uri',
      ],
    ],
    bytes: [
      ['a string', 'plain text', ''],
      ['an array', [1, 2, 3], ''],
      ['null', null, ''],
      ['undefined', undefined, ''],
      ['an ArrayBuffer', new ArrayBuffer(4), ''],
    ],
    req: [
      ['null request', null, 'req'],
      ['a string request', 'x', 'req'],
    ],
    o: [
      ['missing o', undefined, 'o'],
      ['null o', null, 'o'],
      ['a string o', 'fast', 'o'],
      ['a signal that is not an AbortSignal', { signal: { aborted: false } }, 'o.signal'],
      ['a signal that is a string', { signal: 'abort' }, 'o.signal'],
    ],
  };
  const optionalO = new Set(['getPublicKey', 'wrapKeyForExport']);
  /** Request-less or request-optional methods: `undefined` req is fine where the contract lets it be. */
  const cases: Array<[string, string, Call, string]> = [];
  for (const [method, { call, has }] of Object.entries(methods)) {
    for (const kind of has) {
      for (const [label, value, named] of bad[kind]) {
        if (kind === 'o' && value === undefined && optionalO.has(method)) continue;
        cases.push([method, label, call({ [kind]: value }), named]);
      }
    }
  }

  it.each(cases)(
    '%s with %s is InvalidArgument naming it; no PKCS#11 call',
    async (_method, _label, call, named) => {
      let error: unknown;
      const counts = await countCalls(provider, P11_FUNCTIONS, async () => {
        try {
          await call(provider);
        } catch (e) {
          error = e;
        }
      });
      expect(error).toMatchObject({ name: 'KeyportError', code: 'InvalidArgument', provider: 'pkcs11' });
      expect((error as Error).message).toContain(named);
      expect(
        Object.values(counts).reduce((a, b) => a + b, 0),
        JSON.stringify(counts),
      ).toBe(0);
    },
  );

  it('bytes errors name the argument: plaintext, ciphertext, message, signature, mac', async () => {
    const named: Array<[string, Call]> = [
      ['plaintext', methods.encrypt?.call({ bytes: 'x' }) as Call],
      ['ciphertext', methods.decrypt?.call({ bytes: 'x' }) as Call],
      ['message', methods.sign?.call({ bytes: 'x' }) as Call],
      ['signature', methods['verify (signature)']?.call({ bytes: 'x' }) as Call],
      ['mac', methods['verifyMac (mac)']?.call({ bytes: 'x' }) as Call],
    ];
    for (const [name, call] of named)
      await expect(call(provider), name).rejects.toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringMatching(new RegExp(`^${name}: expected a Uint8Array`)),
      });
  });

  it('a bad argument is a rejected promise, not a synchronous throw', () => {
    const p = provider.encrypt(null as never, 'x' as never, null as never, undefined as never);
    expect(p).toBeInstanceOf(Promise);
    return expect(p).rejects.toMatchObject({ code: 'InvalidArgument' });
  });

  it('parseUri, formatUri and uriFor refuse wrong types with InvalidArgument', () => {
    for (const call of [
      () => provider.parseUri(42 as never),
      () => provider.parseUri(undefined as never),
      () => provider.formatUri(null as never),
      () => provider.formatUri({ uri: 1 } as never),
      () => provider.uriFor(undefined as never),
      () => provider.uriFor('k', Number.NaN),
    ])
      expect(call).toThrow(expect.objectContaining({ code: 'InvalidArgument', provider: 'pkcs11' }));
    expect(provider.parseUri(aes.uri).uri).toBe(aes.uri);
  });

  it('good calls still work (o without a signal too; wrapKeyForExport and getPublicKey without o)', async () => {
    const o = { signal: signal() };
    const sealed2 = await provider.encrypt({ uri: aes.uri }, bytes, { context: { a: 'b' } }, o);
    const opened = await provider.decrypt(
      { uri: aes.uri },
      sealed2.ciphertext,
      { context: { a: 'b' } },
      {} as never,
    );
    expect([...opened.plaintext]).toEqual([...bytes]);
    expect((await provider.describeKey({ uri: aes.uri, version: '1' }, o)).uri).toBe(aes.uri);
    expect((await provider.generateDataKey({ uri: aes.uri }, { bytes: 16 }, o)).plaintext.length).toBe(16);
    expect(
      await provider.verify(
        { uri: ec.uri },
        digest,
        signature,
        { messageType: 'digest', algorithm: 'ECDSA_SHA_256' },
        o,
      ),
    ).toBe(true);
    expect(await provider.verifyMac({ uri: hmac.uri }, bytes, tag, o)).toBe(true);
    expect((await provider.getPublicKey({ uri: ec.uri })).length).toBeGreaterThan(0);
    const names: string[] = [];
    for await (const k of provider.listKeys({ signal: signal(), pageSize: 10 })) names.push(k.uri);
    expect(names).toContain(aes.uri);
  });
});
