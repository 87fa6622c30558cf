/**
 * Interop with the AWS Encryption SDK in three more languages (the first, ESDK-JS, is
 * interop-esdk.test.ts), each installed by the harness and run as a child process: Python
 * (aws-encryption-sdk from PyPI, through its raw master key providers and, separately, the
 * Material Providers Library's raw keyrings), Java
 * (aws-encryption-sdk-java from Maven Central, through the Material Providers Library's raw
 * keyrings and, separately, the SDK's own JceMasterKey) and Go (the encryption-sdk module from
 * the Go module proxy, through the Material Providers Library's raw keyrings). Both directions: raw AES-128/192/256
 * and raw RSA with each OAEP hash, both v2 suites, at frame boundaries, multi-key messages,
 * contexts whose order differs between UTF-16 and UTF-8, keyport's default frame length; and
 * what ESDK-JS cannot write: non-framed bodies (frame length 0) and v1 messages of all nine v1
 * suites. With the Python, Java and Go ESDKs' Required Encryption Context CMM: context pairs
 * authenticated but not stored, both ways (keyport's `contextNotStored` and `reproducedContext`);
 * and their raw ECDH keyring on P-256/384/521, both ways.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import {
  openEnvelope,
  openStream,
  rawAesRecipient,
  rawEcdhRecipient,
  rawRsaRecipient,
  sealEnvelope,
} from '../src/index.js';
import {
  type EsdkChild,
  type EsdkKeyring,
  esdkGo,
  esdkJavaKeyrings,
  esdkJavaMasterKeys,
  esdkPython,
  esdkPythonKeyrings,
} from './helpers/esdk.js';
import { chunked, collect, rsaPair, rsaPrivatePem, rsaPublicPem } from './helpers/keys.js';
import { storedPair } from './helpers/layout.js';

/** `framedOnly`: the SDK writes no non-framed body (the Go SDK's frame length is 1 to 2^32). */
const implementations: ReadonlyArray<{ name: string; esdk: EsdkChild; framedOnly?: boolean }> = [
  { name: 'the Python ESDK (raw master key providers)', esdk: esdkPython },
  { name: 'the Python ESDK (Material Providers keyrings)', esdk: esdkPythonKeyrings },
  { name: 'the Java ESDK (Material Providers keyrings)', esdk: esdkJavaKeyrings },
  { name: 'the Java ESDK (JceMasterKey)', esdk: esdkJavaMasterKeys },
  { name: 'the Go ESDK (Material Providers keyrings)', esdk: esdkGo, framedOnly: true },
];
afterAll(() => Promise.all(implementations.map((i) => i.esdk.stop())));

const FRAME = 256;
const SIZES = [0, 1, FRAME - 1, FRAME, FRAME + 1, 3 * FRAME + 17];
// 'Tenant' < 'app' in UTF-8 but not by localeCompare; U+FF71 < U+1F600 as code points (UTF-8)
// but not as UTF-16 units (the emoji's surrogate 0xD83D sorts first).
const context = { purpose: 'interop', tenant: 'ü-42', Tenant: 'T', app: 'a', ｱ: 'half-width', '😀': 'emoji' };

interface Pair {
  readonly name: string;
  readonly python: EsdkKeyring;
  readonly ours: ReturnType<typeof rawAesRecipient>;
}

function aesPair(bytes: 16 | 24 | 32): Pair {
  const key = randomBytes(bytes);
  const name = `aes-${bytes * 8}`;
  return {
    name: `raw AES-${bytes * 8}`,
    python: { type: 'aes', namespace: 'keyport-py', name, key: key.toString('base64') },
    ours: rawAesRecipient({ namespace: 'keyport-py', name, key }),
  };
}

function rsaKeyPair(padding: 'oaep-sha1' | 'oaep-sha256' | 'oaep-sha384' | 'oaep-sha512'): Pair {
  const name = `rsa-${padding}`;
  return {
    name: `raw RSA ${padding}`,
    python: {
      type: 'rsa',
      namespace: 'keyport-py',
      name,
      privateKey: rsaPrivatePem,
      publicKey: rsaPublicPem,
      padding,
    },
    ours: rawRsaRecipient({ namespace: 'keyport-py', name, privateKey: rsaPair.privateKey, padding }),
  };
}

const aes256 = aesPair(32);
const rsa256 = rsaKeyPair('oaep-sha256');
const suites = [0x0478, 0x0578] as const;

describe.each(implementations)('interop with $name', ({ esdk }) => {
  for (const k of [aes256, rsa256]) {
    for (const suite of suites) {
      const label = `${k.name}, suite 0x0${suite.toString(16)}`;
      it(`keyport seals, the SDK opens (${label})`, async () => {
        for (const size of SIZES) {
          const pt = randomBytes(size);
          const msg = await sealEnvelope(pt, { recipients: [k.ours], context, suite, frameLength: FRAME });
          const out = await esdk.decrypt([k.python], msg);
          expect(out.plaintext.equals(pt), `size ${size}`).toBe(true);
          expect(out.suiteId).toBe(suite);
          expect(out.frameLength).toBe(FRAME);
          expect(out.context).toMatchObject(context);
        }
      });
      it(`the SDK seals, keyport opens (${label})`, async () => {
        for (const size of SIZES) {
          const pt = randomBytes(size);
          const msg = await esdk.encrypt([k.python], pt, {
            context,
            suiteId: suite,
            frameLength: FRAME,
          });
          const out = await openEnvelope(msg, { trust: [k.ours], requiredContext: context });
          expect(Buffer.from(out.plaintext).equals(pt), `size ${size}`).toBe(true);
          expect(out.suiteId).toBe(suite);
          expect(out.frameLength).toBe(FRAME);
          // The streaming path reads the same message in small pieces.
          const streamed = await collect(openStream(chunked(msg, 97), { trust: [k.ours] }));
          expect(streamed.equals(pt), `size ${size}, streamed`).toBe(true);
        }
      });
    }
  }

  it('every raw AES key size and RSA OAEP hash, both ways', async () => {
    const pairs = [
      aesPair(16),
      aesPair(24),
      rsaKeyPair('oaep-sha1'),
      rsaKeyPair('oaep-sha384'),
      rsaKeyPair('oaep-sha512'),
    ];
    for (const k of pairs) {
      const pt = randomBytes(600);
      const ours = await sealEnvelope(pt, { recipients: [k.ours], context, frameLength: FRAME });
      expect((await esdk.decrypt([k.python], ours)).plaintext.equals(pt), k.name).toBe(true);
      const theirs = await esdk.encrypt([k.python], pt, { context, frameLength: FRAME });
      expect(
        Buffer.from((await openEnvelope(theirs, { trust: [k.ours] })).plaintext).equals(pt),
        k.name,
      ).toBe(true);
    }
  });

  it('multi-key messages open with either key, both ways', async () => {
    const pt = randomBytes(5000);
    const ours = await sealEnvelope(pt, {
      recipients: [aes256.ours, rsa256.ours],
      suite: 0x0578,
      frameLength: FRAME,
    });
    const theirs = await esdk.encrypt([aes256.python, rsa256.python], pt, { context });
    for (const k of [aes256, rsa256]) {
      expect((await esdk.decrypt([k.python], ours)).plaintext.equals(pt), k.name).toBe(true);
      const out = await openEnvelope(theirs, { trust: [k.ours] });
      expect(Buffer.from(out.plaintext).equals(pt), k.name).toBe(true);
      expect(out.frameLength).toBe(4096); // the default of both SDKs
    }
  });

  it("keyport's defaults (1 MiB frames, several frames) open in the SDK", async () => {
    const pt = randomBytes(2 * 1024 * 1024 + 3);
    const msg = await sealEnvelope(pt, { recipients: [aes256.ours], context });
    const out = await esdk.decrypt([aes256.python], msg);
    expect(out.plaintext.equals(pt)).toBe(true);
    expect(out.frameLength).toBe(1024 * 1024);
  });

  it('a message keyport refuses to open is refused by the SDK too (one flipped ciphertext bit)', async () => {
    const pt = randomBytes(700);
    const msg = Buffer.from(await sealEnvelope(pt, { recipients: [aes256.ours], frameLength: FRAME }));
    msg[msg.length - 40] = (msg[msg.length - 40] as number) ^ 1;
    await expect(openEnvelope(msg, { trust: [aes256.ours] })).rejects.toMatchObject({ code: 'Integrity' });
    await expect(esdk.decrypt([aes256.python], msg)).rejects.toThrow(/failed/);
  });
});

describe.each(implementations)(
  'messages ESDK-JS cannot write, from $name, open in keyport',
  ({ esdk, framedOnly }) => {
    // An SDK that cannot write a non-framed body gets no such test (nothing to skip: it has none).
    const frameLengths = framedOnly ? [FRAME] : [FRAME, 0];
    if (framedOnly)
      it('the SDK refuses to write a non-framed body (so it has no test of one)', async () => {
        await expect(
          esdk.encrypt([aes256.python], randomBytes(10), { context, frameLength: 0 }),
        ).rejects.toThrow(/failed/);
      });
    if (!framedOnly)
      it('non-framed bodies (frame length 0), both v2 suites, whole and streamed', async () => {
        for (const suite of suites) {
          for (const size of [0, 1, 4096, 70_000]) {
            const pt = randomBytes(size);
            const msg = await esdk.encrypt([aes256.python], pt, {
              context,
              suiteId: suite,
              frameLength: 0,
            });
            const out = await openEnvelope(msg, { trust: [aes256.ours], requiredContext: context });
            expect(Buffer.from(out.plaintext).equals(pt), `0x0${suite.toString(16)} size ${size}`).toBe(true);
            expect(out.frameLength).toBe(0);
            const streamed = await collect(openStream(chunked(msg, 1000), { trust: [aes256.ours] }));
            expect(streamed.equals(pt), `0x0${suite.toString(16)} size ${size}, streamed`).toBe(true);
          }
        }
      });

    // Every v1 suite: AES-128, AES-192 and AES-256; no KDF, HKDF-SHA256, HKDF-SHA384; unsigned,
    // ECDSA P-256 (0x0214) and P-384 signed.
    for (const suite of [0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378]) {
      it(`v1 messages, suite 0x0${suite.toString(16)}, framed and non-framed`, async () => {
        for (const frameLength of frameLengths) {
          for (const size of [0, FRAME - 1, 3 * FRAME + 17]) {
            const pt = randomBytes(size);
            const msg = await esdk.encrypt([rsa256.python], pt, {
              context,
              suiteId: suite,
              frameLength,
              policy: 'legacy',
            });
            const out = await openEnvelope(msg, { trust: [rsa256.ours] });
            expect(Buffer.from(out.plaintext).equals(pt), `frame ${frameLength} size ${size}`).toBe(true);
            expect(out.messageFormat).toBe(1);
            expect(out.suiteId).toBe(suite);
            await expect(
              openEnvelope(msg, { trust: [rsa256.ours], requireCommitment: true }),
            ).rejects.toMatchObject({
              code: 'InvalidCiphertext',
            });
          }
        }
      });
    }
  },
);

/** The SDKs whose Material Providers Library offers the Required Encryption Context CMM and raw ECDH. */
const mplChildren = [
  { name: 'Python', esdk: esdkPythonKeyrings },
  { name: 'Java', esdk: esdkJavaKeyrings },
  { name: 'Go', esdk: esdkGo },
] as const;

describe.each(mplChildren)(
  'the Required Encryption Context CMM of the $name ESDK (pairs authenticated, not stored)',
  ({ esdk }) => {
    const full = { tenant: 't-42', user: 'u-7', purpose: 'interop' };
    for (const k of [aes256, rsa256]) {
      for (const suite of suites) {
        const label = `${k.name}, suite 0x0${suite.toString(16)}`;
        it(`the SDK seals with required keys, keyport opens with them reproduced (${label})`, async () => {
          const pt = randomBytes(3 * FRAME + 5);
          const msg = await esdk.encrypt([k.python], pt, {
            context: full,
            suiteId: suite,
            frameLength: FRAME,
            requiredContextKeys: ['user', 'tenant'],
          });
          // The pair as a header stores it (u16 length, key, u16 length, value): three bytes alone
          // turn up in random ciphertext now and then.
          expect(msg.includes(storedPair('user', 'u-7'))).toBe(false);
          const reproducedContext = { user: 'u-7', tenant: 't-42' };
          const out = await openEnvelope(msg, { trust: [k.ours], reproducedContext });
          expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
          expect(out.context).toMatchObject(full);
          const streamed = await collect(
            openStream(chunked(msg, 97), { trust: [k.ours], reproducedContext }),
          );
          expect(streamed.equals(pt)).toBe(true);
          await expect(openEnvelope(msg, { trust: [k.ours] })).rejects.toBeInstanceOf(Error);
          await expect(
            openEnvelope(msg, { trust: [k.ours], reproducedContext: { ...reproducedContext, user: 'u-8' } }),
          ).rejects.toBeInstanceOf(Error);
        });
        it(`keyport seals with contextNotStored, the SDK opens with the pairs reproduced (${label})`, async () => {
          const pt = randomBytes(3 * FRAME + 5);
          const msg = await sealEnvelope(pt, {
            recipients: [k.ours],
            context: full,
            contextNotStored: ['user', 'tenant'],
            suite,
            frameLength: FRAME,
          });
          expect(Buffer.from(msg).includes(storedPair('user', 'u-7'))).toBe(false);
          const out = await esdk.decrypt([k.python], msg, 'require', {
            reproducedContext: { user: 'u-7', tenant: 't-42' },
          });
          expect(out.plaintext.equals(pt)).toBe(true);
          await expect(esdk.decrypt([k.python], msg)).rejects.toThrow(/failed/);
          await expect(
            esdk.decrypt([k.python], msg, 'require', { reproducedContext: { user: 'u-8', tenant: 't-42' } }),
          ).rejects.toThrow(/failed/);
        });
      }
    }
  },
);

describe.each(mplChildren)('the raw ECDH keyring of the $name ESDK, both ways', ({ esdk }) => {
  for (const [curve, spec] of [
    ['prime256v1', 'ECC_NIST_P256'],
    ['secp384r1', 'ECC_NIST_P384'],
    ['secp521r1', 'ECC_NIST_P521'],
  ] as const) {
    const party = () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      return {
        pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        der: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
      };
    };
    const alice = party();
    const bob = party();
    const theirs = {
      static: {
        type: 'ecdh',
        scheme: 'static',
        curve: spec,
        senderPrivateKey: alice.pem,
        recipientPublicKey: bob.der,
      },
      ephemeral: { type: 'ecdh', scheme: 'ephemeral', curve: spec, recipientPublicKey: bob.der },
      discovery: { type: 'ecdh', scheme: 'discovery', curve: spec, recipientPrivateKey: bob.pem },
    } as const;
    const ours = {
      static: rawEcdhRecipient({
        scheme: 'static',
        senderPrivateKey: alice.pem,
        recipientPublicKey: Buffer.from(bob.der, 'base64'),
      }),
      ephemeral: rawEcdhRecipient({
        scheme: 'ephemeral',
        recipientPublicKey: Buffer.from(bob.der, 'base64'),
      }),
      discovery: rawEcdhRecipient({ scheme: 'discovery', recipientPrivateKey: bob.pem }),
      // Bob's side of the static pair: his private key, Alice's public key.
      bobStatic: rawEcdhRecipient({
        scheme: 'static',
        senderPrivateKey: bob.pem,
        recipientPublicKey: Buffer.from(alice.der, 'base64'),
      }),
    };
    for (const suite of suites) {
      const label = `${spec}, suite 0x0${suite.toString(16)}`;
      it(`keyport seals (static and ephemeral), the SDK opens (${label})`, async () => {
        const pt = randomBytes(2 * FRAME + 3);
        for (const [sealer, openers] of [
          [ours.static, [theirs.static, theirs.discovery]],
          [ours.ephemeral, [theirs.discovery]],
        ] as const) {
          const msg = await sealEnvelope(pt, { recipients: [sealer], context, suite, frameLength: FRAME });
          for (const opener of openers) {
            expect((await esdk.decrypt([opener], msg)).plaintext.equals(pt), opener.scheme).toBe(true);
          }
        }
      });
      it(`the SDK seals (static and ephemeral), keyport opens (${label})`, async () => {
        const pt = randomBytes(2 * FRAME + 3);
        for (const [sealer, openers] of [
          [theirs.static, [ours.static, ours.discovery, ours.bobStatic]],
          [theirs.ephemeral, [ours.discovery]],
        ] as const) {
          const msg = await esdk.encrypt([sealer], pt, { context, suiteId: suite, frameLength: FRAME });
          for (const opener of openers) {
            const out = await openEnvelope(msg, { trust: [opener], requiredContext: context });
            expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
          }
          // An ephemeral recipient opens nothing: it holds no private key.
          await expect(openEnvelope(msg, { trust: [ours.ephemeral] })).rejects.toMatchObject({
            name: 'DataKeyUnavailableError',
          });
        }
      });
    }
  }
});
