/**
 * Promises of the README that no other test pinned down, one test each, named after the
 * promise. KMS recipients use the real @keyport/local keystore behind core's Keyport client.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type KeyOperations, KeyportError } from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHeader } from '../src/header.js';
import {
  DataKeyUnavailableError,
  kmsRecipient,
  type MessageInfo,
  openEnvelope,
  openStream,
  type Recipient,
  rawAesRecipient,
  rawRsaRecipient,
  rewrapStream,
  sealEnvelope,
  sealStream,
} from '../src/index.js';
import { resolveLimits } from '../src/limits.js';
import { counting } from './helpers/counting.js';
import { aes, aesOther, chunked, collect, rsaPair } from './helpers/keys.js';
import { type LocalKms, localKms } from './helpers/local-kms.js';

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof KeyportError ? e.code : `not a KeyportError: ${String(e)}`),
  );

let kms: LocalKms;
beforeAll(async () => {
  kms = await localKms(3);
});
afterAll(async () => {
  await kms?.close();
});

/**
 * The real keystore, each call held back `delayMs` before it is made, recording which calls
 * were in flight together (what "at once" and "round trips" mean, without timing anything).
 */
function delayed(inner: KeyOperations, delayMs: number) {
  const log: Array<{ method: string; inFlightAtStart: number }> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const keys = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return async (...args: unknown[]) => {
        log.push({ method: String(prop), inFlightAtStart: inFlight });
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          await new Promise((r) => setTimeout(r, delayMs));
          return await v.apply(target, args);
        } finally {
          inFlight--;
        }
      };
    },
  });
  return { keys, log, maxInFlight: () => maxInFlight };
}

describe('README: seal', () => {
  it('seals with suite 0x0478 and 1 MiB frames by default', async () => {
    const pt = randomBytes(1024 * 1024 + 1);
    const msg = await sealEnvelope(pt, { recipients: [aes] });
    const opened = await openEnvelope(msg, { trust: [aes] });
    expect(opened.suiteId).toBe(0x0478);
    expect(opened.frameLength).toBe(1024 * 1024);
    expect(Buffer.from(opened.plaintext).equals(pt)).toBe(true);
  });

  it('v1 is never written: sealing with any v1 suite is InvalidArgument, whole and streamed', async () => {
    for (const suite of [0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378]) {
      const options = { recipients: [aes], suite: suite as 0x0478 };
      expect(await codeOf(sealEnvelope(randomBytes(10), options)), suite.toString(16)).toBe(
        'InvalidArgument',
      );
      expect(await codeOf(collect(sealStream([randomBytes(10)], options))), suite.toString(16)).toBe(
        'InvalidArgument',
      );
    }
  });

  it("dataKeySource 'local': keyport draws the data key even for a single KMS recipient", async () => {
    const [a] = kms.uris as [string];
    const pt = randomBytes(100);
    const c = counting(kms.keys);
    const msg = await sealEnvelope(pt, { recipients: [a], keys: c.keys, dataKeySource: 'local' });
    expect(c.calls).toEqual({ encrypt: 1 });
    expect(Buffer.from((await openEnvelope(msg, { trust: [a], keys: kms.keys })).plaintext).equals(pt)).toBe(
      true,
    );
  });

  it("a seal to several recipients waits for one round trip ('auto'), two with 'first-recipient'", async () => {
    const uris = kms.uris as [string, string, string];
    const pt = randomBytes(100);
    // auto: every recipient wraps keyport's data key at the same time.
    const auto = delayed(kms.keys, 50);
    const one = await sealEnvelope(pt, { recipients: uris, keys: auto.keys });
    expect(auto.log.map((l) => l.method)).toEqual(['encrypt', 'encrypt', 'encrypt']);
    expect(auto.maxInFlight()).toBe(3);
    // first-recipient: generateDataKey alone, then the others at once.
    const first = delayed(kms.keys, 50);
    const two = await sealEnvelope(pt, {
      recipients: uris,
      keys: first.keys,
      dataKeySource: 'first-recipient',
    });
    expect(first.log).toEqual([
      { method: 'generateDataKey', inFlightAtStart: 0 },
      { method: 'encrypt', inFlightAtStart: 0 },
      { method: 'encrypt', inFlightAtStart: 1 },
    ]);
    for (const msg of [one, two]) {
      for (const uri of uris) {
        const out = await openEnvelope(msg, { trust: [uri], keys: kms.keys });
        expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
      }
    }
  });

  it('kmsRecipient(uri) is the same recipient as the URI string, to seal and to trust', async () => {
    const [a] = kms.uris as [string];
    const pt = randomBytes(64);
    const viaRecipient = await sealEnvelope(pt, { recipients: [kmsRecipient(a)], keys: kms.keys });
    const viaString = await sealEnvelope(pt, { recipients: [a], keys: kms.keys });
    const edk = (m: Uint8Array) => parseHeader(m, resolveLimits())?.encryptedDataKeys[0];
    expect(edk(viaRecipient)?.providerId).toBe(edk(viaString)?.providerId);
    expect(Buffer.from(edk(viaRecipient)?.providerInfo ?? []).toString()).toBe(
      Buffer.from(edk(viaString)?.providerInfo ?? []).toString(),
    );
    for (const msg of [viaRecipient, viaString]) {
      for (const trust of [[kmsRecipient(a)], [a]]) {
        const out = await openEnvelope(msg, { trust, keys: kms.keys });
        expect(Buffer.from(out.plaintext).equals(pt)).toBe(true);
      }
    }
  });

  it("rawRsaRecipient's default padding is OAEP-SHA256", async () => {
    const byDefault = rawRsaRecipient({ namespace: 'ns', name: 'rsa', publicKey: rsaPair.publicKey });
    const msg = await sealEnvelope(randomBytes(10), { recipients: [byDefault] });
    const withPadding = (padding: 'oaep-sha256' | 'oaep-sha1') =>
      rawRsaRecipient({ namespace: 'ns', name: 'rsa', privateKey: rsaPair.privateKey, padding });
    expect((await openEnvelope(msg, { trust: [withPadding('oaep-sha256')] })).plaintext.length).toBe(10);
    expect(await codeOf(openEnvelope(msg, { trust: [withPadding('oaep-sha1')] }))).toBe('InvalidCiphertext');
  });
});

describe('README: open', () => {
  it('openEnvelope and onHeader report suite, format, frame length, framing and provider ids; onHeader comes before any plaintext', async () => {
    const pt = randomBytes(3 * 100 + 7);
    const context = { tenant: 't-42' };
    const msg = await sealEnvelope(pt, {
      recipients: [aesOther, aes],
      suite: 0x0578,
      frameLength: 100,
      context,
    });
    const opened = await openEnvelope(msg, { trust: [aes] });
    const expected = {
      suiteId: 0x0578,
      messageFormat: 2,
      frameLength: 100,
      framed: true,
      providerIds: ['keyport-test', 'keyport-test'],
    };
    expect(opened).toMatchObject(expected);
    expect(opened.context).toMatchObject(context);
    expect(typeof opened.context['aws-crypto-public-key']).toBe('string');

    const events: Array<'header' | number> = [];
    let info: MessageInfo | undefined;
    for await (const p of openStream(chunked(msg, 37), {
      trust: [aes],
      onHeader: (i) => {
        info = i;
        events.push('header');
      },
    })) {
      events.push(p.length);
    }
    expect(events[0]).toBe('header');
    expect(events.filter((e) => e === 'header')).toHaveLength(1);
    expect(events.slice(1).reduce<number>((n, e) => n + (e as number), 0)).toBe(pt.length);
    expect(info).toMatchObject({ ...expected, context: opened.context });
  });

  it("DataKeyUnavailableError's code is the attempts' common code, InvalidCiphertext when they differ", async () => {
    const msg = await sealEnvelope(randomBytes(10), { recipients: [aes] });
    /** Matches `aes`'s EDK but is refused by its (hypothetical) KMS. */
    const denied = (id: string): Recipient => ({
      id,
      matches: (edk) => aes.matches(edk),
      wrap: () => Promise.reject(new KeyportError('AccessDenied', 'no')),
      unwrap: () => Promise.reject(new KeyportError('AccessDenied', 'denied')),
    });
    const impostor = { ...aesOther, id: 'impostor', matches: aes.matches };

    const same = await openEnvelope(msg, { trust: [denied('d1'), denied('d2')] }).catch((e: unknown) => e);
    expect(same).toBeInstanceOf(DataKeyUnavailableError);
    expect((same as DataKeyUnavailableError).code).toBe('AccessDenied');
    expect((same as DataKeyUnavailableError).attempts.map((a) => a.code)).toEqual([
      'AccessDenied',
      'AccessDenied',
    ]);

    const mixed = await openEnvelope(msg, { trust: [denied('d1'), impostor] }).catch((e: unknown) => e);
    expect(mixed).toBeInstanceOf(DataKeyUnavailableError);
    expect((mixed as DataKeyUnavailableError).attempts.map((a) => a.code)).toEqual([
      'AccessDenied',
      'InvalidCiphertext',
    ]);
    expect((mixed as DataKeyUnavailableError).code).toBe('InvalidCiphertext');
  });

  describe('requireUnsigned refuses the signed v1 suites too, before any unwrap', () => {
    const dir = new URL('./fixtures/esdk-vectors/', import.meta.url);
    const manifest = JSON.parse(readFileSync(new URL('manifest.json', dir), 'utf8')) as {
      tests: Record<
        string,
        { ciphertext: string; algorithmSuiteId: string; decryptKeyDescription: Record<string, string> }
      >;
    };
    const keys = JSON.parse(readFileSync(new URL('keys.json', dir), 'utf8')).keys as Record<
      string,
      { material: string }
    >;
    for (const [suite, signed] of [
      ['0214', true],
      ['0346', true],
      ['0378', true],
      ['0178', false],
    ] as const) {
      it(`suite 0x${suite}: ${signed ? 'refused' : 'opens'}`, async () => {
        const v = Object.values(manifest.tests).find(
          (t) => t.algorithmSuiteId === suite && t.decryptKeyDescription['encryption-algorithm'] === 'aes',
        );
        if (v === undefined) throw new Error(`the fixture has no raw AES 0x${suite} vector`);
        const d = v.decryptKeyDescription;
        const inner = rawAesRecipient({
          namespace: d['provider-id'] as string,
          name: d.key as string,
          key: Buffer.from((keys[d.key as string] as { material: string }).material, 'base64'),
        });
        let unwraps = 0;
        const recipient: Recipient = {
          id: inner.id,
          matches: (edk) => inner.matches(edk),
          wrap: (k, c, e) => inner.wrap(k, c, e),
          unwrap: (edk, c, e) => {
            unwraps++;
            return inner.unwrap(edk, c, e);
          },
        };
        const msg = readFileSync(new URL(v.ciphertext.replace('file://', ''), dir));
        // Without the option it opens (so a refusal below is the option's doing).
        expect((await openEnvelope(msg, { trust: [recipient] })).suiteId).toBe(Number.parseInt(suite, 16));
        unwraps = 0;
        const whole = await codeOf(openEnvelope(msg, { trust: [recipient], requireUnsigned: true }));
        const released: Uint8Array[] = [];
        const streamed = await codeOf(
          (async () => {
            for await (const p of openStream(chunked(msg, 64), {
              trust: [recipient],
              requireUnsigned: true,
            })) {
              released.push(p);
            }
          })(),
        );
        if (signed) {
          expect(whole).toBe('InvalidCiphertext');
          expect(streamed).toBe('InvalidCiphertext');
          expect(unwraps).toBe(0);
          expect(released).toEqual([]);
        } else {
          expect(whole).toBe('ok');
          expect(streamed).toBe('ok');
        }
      });
    }
  });
});

describe('README: a source that throws', () => {
  /** Yields `bytes` in 100-byte chunks up to `upTo`, then throws `error`. */
  async function* failingAfter(bytes: Uint8Array, upTo: number, error: unknown): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < upTo; i += 100) yield bytes.subarray(i, Math.min(i + 100, upTo));
    throw error;
  }

  it('fails the stream with its own error, as thrown; a seal has emitted no complete message', async () => {
    const F = 256;
    const pt = randomBytes(10 * F);
    // With a signal the source is read through an abortable wrapper: the same promise holds.
    const signals = [{}, { signal: new AbortController().signal }];
    for (const suite of [0x0478, 0x0578] as const) {
      for (const concurrency of [1, 2]) {
        for (const withSignal of signals) {
          const boom = new Error(`the caller's own error (${suite}, ${concurrency})`);
          const emitted: Uint8Array[] = [];
          const err = await (async () => {
            for await (const p of sealStream(failingAfter(pt, 6 * F + 50, boom), {
              recipients: [aes],
              frameLength: F,
              suite,
              concurrency,
              ...withSignal,
            })) {
              emitted.push(p);
            }
          })().catch((e: unknown) => e);
          expect(err).toBe(boom);
          // Whatever was emitted (header and some regular frames) does not open.
          expect(await codeOf(openEnvelope(Buffer.concat(emitted), { trust: [aes] }))).toBe(
            'InvalidCiphertext',
          );
        }
      }
    }

    const msg = await sealEnvelope(pt, { recipients: [aes], frameLength: F });
    const notAnError = { reason: 'a thrown plain object is passed on too' };
    for (const thrown of [new TypeError('disk gone'), notAnError]) {
      for (const withSignal of signals) {
        const open = await collect(
          openStream(failingAfter(msg, 1000, thrown), { trust: [aes], ...withSignal }),
        ).catch((e: unknown) => e);
        expect(open).toBe(thrown);
        const rewrap = await collect(
          rewrapStream(failingAfter(msg, 1000, thrown), { trust: [aes], add: [aesOther], ...withSignal }),
        ).catch((e: unknown) => e);
        expect(rewrap).toBe(thrown);
      }
    }
  });
});

describe('README: chunks held as views', () => {
  it('a source yielding the same unchanged buffer again is fine, one frame at a time and in flight', async () => {
    const F = 64 * 1024;
    const block = randomBytes(10_000);
    const times = 30;
    const expected = Buffer.concat(Array.from({ length: times }, () => block));
    function* again(): Generator<Uint8Array> {
      for (let i = 0; i < times; i++) yield block;
    }
    for (const concurrency of [1, 2]) {
      const msg = await collect(sealStream(again(), { recipients: [aes], frameLength: F, concurrency }));
      const opened = await openEnvelope(msg, { trust: [aes] });
      expect(Buffer.from(opened.plaintext).equals(expected), `concurrency ${concurrency}`).toBe(true);
      expect(opened.frameLength).toBe(F);
    }
  });
});
