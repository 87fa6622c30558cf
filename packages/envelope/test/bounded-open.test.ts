/**
 * Bounded opens (#22): an EDK flood costs a bounded number of unwraps, a signed message without
 * a usable verification key is refused at the header, and strings from a message or a caller
 * reach error messages quoted, escaped and capped, with provider errors reduced.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { type KeyOperations, KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { serializeContext } from '../src/context-codec.js';
import { FrameSealer } from '../src/frames.js';
import { CONTENT_FRAMED, type EncryptedDataKey, parseHeader, serializeHeaderBody } from '../src/header.js';
import {
  DataKeyUnavailableError,
  DEFAULT_LIMITS,
  openEnvelope,
  openStream,
  type Recipient,
  rawAesRecipient,
  rawRsaRecipient,
  rewrapEnvelope,
  sealEnvelope,
} from '../src/index.js';
import { deriveKeys } from '../src/kdf.js';
import { resolveLimits } from '../src/limits.js';
import { generateSigningKey } from '../src/signing.js';
import { SUITES } from '../src/suites.js';
import { gcmSeal } from './helpers/gcm.js';
import { aes } from './helpers/keys.js';

const rsa4096 = generateKeyPairSync('rsa', { modulusLength: 4096 });
const rsa = rawRsaRecipient({
  namespace: 'keyport-test',
  name: 'rsa-4096',
  privateKey: rsa4096.privateKey,
  padding: 'oaep-sha256',
});

/** The same recipient, counting its unwrap calls. */
function counted(r: Recipient): { recipient: Recipient; unwraps: () => number } {
  let n = 0;
  return {
    recipient: {
      id: r.id,
      wrap: (k, c, e) => r.wrap(k, c, e),
      matches: (edk) => r.matches(edk),
      unwrap: (edk, c, e) => {
        n++;
        return r.unwrap(edk, c, e);
      },
    },
    unwraps: () => n,
  };
}

/** A real message re-serialized with other EDKs (the header tag no longer matches: never reached). */
async function withEdks(make: (edk: EncryptedDataKey) => EncryptedDataKey[]): Promise<Buffer> {
  const msg = Buffer.from(await sealEnvelope(Buffer.from('hello'), { recipients: [rsa], frameLength: 64 }));
  const h = parseHeader(msg, resolveLimits({ maxEncryptedDataKeys: 0xffff }));
  if (h === undefined) throw new Error('no header');
  const body = serializeHeaderBody({
    ...h,
    encryptedDataKeys: make(h.encryptedDataKeys[0] as EncryptedDataKey),
  });
  return Buffer.concat([body, h.headerTag, msg.subarray(h.length)]);
}

const corrupt = (edk: EncryptedDataKey, i: number): EncryptedDataKey => {
  const ciphertext = Uint8Array.from(edk.ciphertext);
  ciphertext[i % ciphertext.length] = (ciphertext[i % ciphertext.length] as number) ^ (1 + (i % 255));
  const j = (i >> 8) % ciphertext.length;
  ciphertext[j] = (ciphertext[j] as number) ^ 0x80;
  return { ...edk, ciphertext };
};

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

describe('EDK flood', () => {
  it('the default maxEncryptedDataKeys is small, and a 1 MiB flood is refused before any unwrap', async () => {
    expect(DEFAULT_LIMITS.maxEncryptedDataKeys).toBe(16);
    // ~520 bytes per EDK: about 2,000 copies of one corrupted RSA-4096 EDK fill a 1 MiB header.
    const msg = await withEdks((edk) => Array.from({ length: 1900 }, () => corrupt(edk, 1)));
    expect(msg.length).toBeGreaterThan(1_000_000);
    expect(msg.length).toBeLessThan(DEFAULT_LIMITS.maxHeaderBytes + 1000);
    const c = counted(rsa);
    const err = await openEnvelope(msg, { trust: [c.recipient] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyportError);
    expect((err as KeyportError).code).toBe('InvalidCiphertext');
    expect((err as Error).message).toMatch(/1900 encrypted data keys \(limit 16\)/);
    expect(c.unwraps()).toBe(0);
  });

  it('with the EDK limit raised, a repeated corrupted EDK is tried once', async () => {
    const msg = await withEdks((edk) => Array.from({ length: 1900 }, () => corrupt(edk, 1)));
    const c = counted(rsa);
    const err = await openEnvelope(msg, { trust: [c.recipient], maxEncryptedDataKeys: 0xffff }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DataKeyUnavailableError);
    expect(c.unwraps()).toBe(1);
  });

  it('distinct corrupted EDKs cost at most maxUnwrapAttempts (default 3) per trusted recipient', async () => {
    const msg = await withEdks((edk) => Array.from({ length: 1900 }, (_, i) => corrupt(edk, i)));
    const c = counted(rsa);
    const other = counted(rawRsaRecipient({ ...rsaOptions(), name: 'rsa-4096' }));
    const err = await openEnvelope(msg, {
      trust: [c.recipient, other.recipient],
      maxEncryptedDataKeys: 0xffff,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataKeyUnavailableError);
    expect(c.unwraps()).toBe(3);
    expect(other.unwraps()).toBe(3);
    expect((err as DataKeyUnavailableError).attempts).toHaveLength(6);
    expect((err as Error).message).toMatch(/more matching EDKs not tried: at most 3 per recipient/);
    const one = counted(rsa);
    await openEnvelope(msg, {
      trust: [one.recipient],
      maxEncryptedDataKeys: 0xffff,
      maxUnwrapAttempts: 1,
    }).catch(() => undefined);
    expect(one.unwraps()).toBe(1);
  });

  it('at defaults, 16 distinct corrupted EDKs before the good one: 3 tries, then refused', async () => {
    const msg = await withEdks((edk) => [...Array.from({ length: 15 }, (_, i) => corrupt(edk, i)), edk]);
    const c = counted(rsa);
    expect(await codeOf(openEnvelope(msg, { trust: [c.recipient] }))).toBe('InvalidCiphertext');
    expect(c.unwraps()).toBe(3);
    // The good EDK within the bound opens (the tag was kept from the original header).
    const good = await withEdks((edk) => [corrupt(edk, 1), edk]);
    const d = counted(rsa);
    expect(await codeOf(openEnvelope(good, { trust: [d.recipient] }))).toBe('Integrity');
    expect(d.unwraps()).toBe(2);
  });

  it('limits are checked: out-of-range values are InvalidArgument', async () => {
    const msg = await sealEnvelope(Buffer.from('x'), { recipients: [aes] });
    for (const bad of [
      { maxEncryptedDataKeys: 0x10000 },
      { maxUnwrapAttempts: 0 },
      { maxFrameLength: 2 ** 32 },
      { maxUnwrapAttempts: Number.NaN },
    ]) {
      expect(await codeOf(openEnvelope(msg, { trust: [aes], ...bad }))).toBe('InvalidArgument');
    }
  });
});

function rsaOptions() {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    namespace: 'keyport-test',
    name: 'other',
    privateKey: pair.privateKey,
    padding: 'oaep-sha256' as const,
  };
}

/** A well-formed 0x0578 message (header tag and frames valid) whose context is `context`. */
async function signedSuiteMessage(
  context: Record<string, string>,
  plaintext: Uint8Array,
  extraEdks: EncryptedDataKey[] = [],
): Promise<Buffer> {
  const suite = SUITES.get(0x0578);
  if (suite === undefined) throw new Error('no suite');
  const dataKey = randomBytes(32);
  const messageId = randomBytes(32);
  const edk = await aes.wrap(dataKey, context, {});
  const derived = deriveKeys(suite, dataKey, messageId);
  const body = serializeHeaderBody({
    suite,
    messageId,
    contextBytes: serializeContext(context),
    encryptedDataKeys: [edk, ...extraEdks],
    contentType: CONTENT_FRAMED,
    frameLength: 16,
    suiteData: derived.commitKey,
  });
  const { tag } = gcmSeal(derived.key, new Uint8Array(12), body, new Uint8Array(0));
  const sealer = new FrameSealer(derived.key, messageId, 16);
  const parts: Uint8Array[] = [body, tag];
  let at = 0;
  for (; plaintext.length - at > 16; at += 16)
    parts.push(sealer.frame(plaintext.subarray(at, at + 16), false));
  parts.push(sealer.frame(plaintext.subarray(at), true));
  parts.push(Buffer.of(0, 4, 1, 2, 3, 4)); // a footer that cannot verify
  return Buffer.concat(parts);
}

describe('signed suite without a usable verification key', () => {
  const validPoint = (async () => {
    const m = await sealEnvelope(Buffer.from('x'), { recipients: [aes], suite: 0x0578 });
    const h = parseHeader(m, resolveLimits());
    return h?.context['aws-crypto-public-key'] as string;
  })();

  it('is refused at the header: the stream releases zero plaintext bytes', async () => {
    const point = await validPoint;
    const contexts: Array<Record<string, string>> = [
      { a: '1' },
      { 'aws-crypto-public-key': '' },
      { 'aws-crypto-public-key': 'AAAA' },
      { 'aws-crypto-public-key': `${point}\n` }, // not canonical base64
      { 'aws-crypto-public-key': `B${point.slice(1)}` }, // prefix byte 0x06, not 2 or 3
      { 'aws-crypto-public-key': Buffer.alloc(97, 4).toString('base64') }, // uncompressed form
    ];
    for (const context of contexts) {
      const msg = await signedSuiteMessage(context, randomBytes(100));
      let released = 0;
      let headerSeen = false;
      const err = await (async () => {
        for await (const p of openStream(
          (async function* () {
            for (let i = 0; i < msg.length; i += 7) yield msg.subarray(i, i + 7);
          })(),
          { trust: [aes], onHeader: () => (headerSeen = true) },
        )) {
          released += p.length;
        }
      })().catch((e: unknown) => e);
      expect(err, JSON.stringify(context)).toBeInstanceOf(KeyportError);
      expect((err as KeyportError).code).toBe('InvalidCiphertext');
      expect(released).toBe(0);
      expect(headerSeen).toBe(false);
    }
  });

  it('is refused before any unwrap', async () => {
    const msg = await signedSuiteMessage({ a: '1' }, randomBytes(10));
    const c = counted(aes);
    expect(await codeOf(openEnvelope(msg, { trust: [c.recipient] }))).toBe('InvalidCiphertext');
    expect(c.unwraps()).toBe(0);
  });
});

const HOSTILE = [
  'evil\nINFO forged log line',
  '\u001b[31mred\u001b[0m\u0007',
  'a\u2028b\u202ec',
  'x'.repeat(60_000),
];

function assertClean(message: string): void {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the point of the check
  expect(message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/);
  expect(message.length).toBeLessThan(2000);
}

describe('clean error messages', () => {
  it('provider ids from the message reach the error quoted, escaped and capped', async () => {
    for (const providerId of HOSTILE) {
      const msg = await withEdks((edk) => [{ ...edk, providerId }]);
      const err = await openEnvelope(msg, { trust: [aes] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DataKeyUnavailableError);
      assertClean((err as Error).message);
      expect((err as Error).message).toContain('"');
    }
    const many = await withEdks((edk) =>
      Array.from({ length: 16 }, (_, i) => ({ ...edk, providerId: `p${i}\n` })),
    );
    const err = await openEnvelope(many, { trust: [aes] }).catch((e: unknown) => e);
    assertClean((err as Error).message);
    expect((err as Error).message).toContain('and 8 more');
  });

  it('recipient ids (caller-controlled) are quoted in the attempts list', async () => {
    const key = randomBytes(32);
    const sealer = rawAesRecipient({ namespace: 'ns\u001b[1m', name: 'k\nINFO x', key });
    const wrong = rawAesRecipient({ namespace: 'ns\u001b[1m', name: 'k\nINFO x', key: randomBytes(32) });
    const msg = await sealEnvelope(Buffer.from('x'), { recipients: [sealer] });
    const err = await openEnvelope(msg, { trust: [wrong] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataKeyUnavailableError);
    assertClean((err as Error).message);
    expect((err as Error).message).toContain('\\u001b[1m');
  });

  it('rewrap names an untrusted provider id quoted', async () => {
    const key = generateSigningKey();
    const hostile = {
      providerId: 'x\n\u001b[2Jevil',
      providerInfo: Buffer.from('i'),
      ciphertext: Buffer.from('c'),
    };
    const msg = await signedSuiteMessage({ 'aws-crypto-public-key': key.publicKeyBase64 }, randomBytes(20), [
      hostile,
    ]);
    const err = await rewrapEnvelope(msg, { trust: [aes] }).catch((e: unknown) => e);
    expect((err as KeyportError).code).toBe('InvalidArgument');
    assertClean((err as Error).message);
    expect((err as Error).message).toContain('\\u001b[2J');
  });

  it('reserved context keys are named quoted', async () => {
    const err = await sealEnvelope(Buffer.from('x'), {
      recipients: [aes],
      context: { 'aws-crypto-\n\u001b[0m': 'v' },
    }).catch((e: unknown) => e);
    expect((err as KeyportError).code).toBe('InvalidArgument');
    assertClean((err as Error).message);
  });

  it('provider errors passed on keep code, message and request id, never the SDK request or response', async () => {
    const sdkError = Object.assign(new Error('User is not authorized\n\u001b[31m'), {
      name: 'AccessDeniedException',
      $metadata: { requestId: 'req-123', httpStatusCode: 400 },
      $response: { headers: { authorization: 'AWS4-HMAC-SHA256 Credential=SECRET' } },
    });
    const failing = (): Promise<never> =>
      Promise.reject(new KeyportError('AccessDenied', 'denied', { requestId: 'req-123', cause: sdkError }));
    const keys = { encrypt: failing, decrypt: failing, generateDataKey: failing } as unknown as KeyOperations;
    const uri = 'hcvault://127.0.0.1:1/transit/keys/k';
    const check = (e: unknown) => {
      const shown = `${inspect(e, { depth: 20 })}\n${JSON.stringify(e)}`;
      expect(shown).not.toContain('SECRET');
      expect(shown).not.toContain('$response');
      expect(shown).not.toContain('\u001b');
      expect(shown).toContain('req-123');
    };

    const sealErr = await sealEnvelope(Buffer.from('x'), { recipients: [uri], keys }).catch(
      (e: unknown) => e,
    );
    expect((sealErr as KeyportError).code).toBe('AccessDenied');
    expect((sealErr as KeyportError).requestId).toBe('req-123');
    expect(((sealErr as Error).cause as Error).message).toBe('User is not authorized\\u000a\\u001b[31m');
    check(sealErr);

    const edkMsg = await withEdks((edk) => [
      { ...edk, providerId: 'keyport:hcvault', providerInfo: Buffer.from(`${uri}?version=1`) },
    ]);
    const openErr = await openEnvelope(edkMsg, { trust: [uri], keys }).catch((e: unknown) => e);
    expect(openErr).toBeInstanceOf(DataKeyUnavailableError);
    const inner = ((openErr as Error).cause as AggregateError).errors[0] as KeyportError;
    expect(inner.code).toBe('AccessDenied');
    expect(inner.requestId).toBe('req-123');
    check(openErr);
  });
});
