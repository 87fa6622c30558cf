/**
 * The SHA-256 the provider gives its SDK clients on Node 24/25 (src/sha256.ts): the same digests
 * and HMACs as node:crypto for every input form the SDK may pass, and on every request a SigV4
 * signature that node:crypto, with byte keys, recomputes from the request as it was sent.
 */
import { createHash, createHmac } from 'node:crypto';
import { BYTE_KEYS_THROW } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import { KeyObjectSha256 } from '../src/sha256.js';
import { type CapturedRequest, keyMetadata, stubTransport } from './support/stub-transport.js';
import { call, TEST_CREDENTIALS, utf8 } from './support/targets.js';

const KEY = 'aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const hex = async (h: { digest(): Promise<Uint8Array> }) => Buffer.from(await h.digest()).toString('hex');

/** The same inputs in every shape the SDK's SourceData allows. */
function shapes(text: string): Array<string | ArrayBuffer | ArrayBufferView> {
  const bytes = Buffer.from(text, 'utf8');
  const padded = new Uint8Array(bytes.length + 7);
  padded.set(bytes, 3);
  const own = new Uint8Array(bytes);
  return [
    text,
    bytes,
    padded.subarray(3, 3 + bytes.length),
    own.buffer,
    new DataView(padded.buffer, 3, bytes.length),
  ];
}

describe('KeyObjectSha256', () => {
  it('hashes and MACs as node:crypto does, whatever shape the data and the secret take', async () => {
    const data = ['', 'AWS4-HMAC-SHA256', 'ü'.repeat(100)];
    for (const text of data) {
      const want = createHash('sha256').update(text, 'utf8').digest('hex');
      for (const shape of shapes(text)) {
        const h = new KeyObjectSha256();
        h.update(shape);
        expect(await hex(h)).toBe(want);
      }
    }
    const secret = 'AWS4wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    const want = createHmac('sha256', Buffer.from(secret)).update('20261205').digest('hex');
    for (const s of shapes(secret)) {
      const h = new KeyObjectSha256(s);
      h.update('2026');
      h.update(utf8('1205'));
      expect(await hex(h)).toBe(want);
      h.reset();
      h.update('20261205');
      expect(await hex(h)).toBe(want);
    }
  });

  it('an empty secret is a plain hash, as with the SDK’s own', async () => {
    const h = new KeyObjectSha256('');
    h.update('x');
    expect(await hex(h)).toBe(createHash('sha256').update('x').digest('hex'));
  });
});

/**
 * SigV4 recomputed from the request as it was sent, with node:crypto and byte keys (the
 * documented algorithm: canonical request, string to sign, the four-step signing key).
 */
function expectedSignature(r: CapturedRequest['signed'], secret: string): string {
  const auth = r.headers.authorization ?? '';
  const names = (/SignedHeaders=([^,]+)/.exec(auth)?.[1] ?? '').split(';');
  const scope = /Credential=[^/]+\/([^,]+)/.exec(auth)?.[1] ?? '';
  const lower = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v]));
  const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
  const canonical = [
    r.method,
    r.path,
    '',
    ...names.map((n) => `${n}:${String(lower[n]).trim()}`),
    '',
    names.join(';'),
    sha(r.body),
  ].join('\n');
  const date = lower['x-amz-date'] ?? '';
  const toSign = ['AWS4-HMAC-SHA256', date, scope, sha(canonical)].join('\n');
  let key: Buffer = Buffer.from(`AWS4${secret}`);
  for (const part of scope.split('/')) key = createHmac('sha256', key).update(part).digest();
  return createHmac('sha256', key).update(toSign).digest('hex');
}

describe('signed requests', () => {
  it(`carry valid SigV4 signatures (Node ${process.versions.node}: ${BYTE_KEYS_THROW ? "the provider's KeyObject hash" : "the SDK's own hash"})`, async () => {
    const stub = stubTransport((op) =>
      op === 'DescribeKey'
        ? { json: keyMetadata('SYMMETRIC_DEFAULT') }
        : { json: { CiphertextBlob: 'AAEC', KeyId: KEY.slice('aws-kms://'.length) } },
    );
    const provider = new AwsKmsProvider({
      region: 'us-east-1',
      credentials: TEST_CREDENTIALS,
      clientConfig: stub.clientConfig,
    });
    await provider.encrypt({ uri: KEY }, utf8('data key'), { context: { a: 'b' } }, call());
    await provider.close();
    expect(stub.requests.map((r) => r.operation)).toEqual(['DescribeKey', 'Encrypt']);
    for (const { signed } of stub.requests) {
      const given = /Signature=([0-9a-f]{64})$/.exec(signed.headers.authorization ?? '')?.[1];
      expect(given).toBe(expectedSignature(signed, TEST_CREDENTIALS.secretAccessKey));
    }
  });
});
