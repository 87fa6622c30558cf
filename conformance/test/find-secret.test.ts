/**
 * The walker every adapter's no-key-material test relies on: it must find a secret wherever an
 * error could keep it out of util.inspect's sight, in every encoding a log could show, and find
 * nothing in clean values (or every "no leak" assertion would pass for nothing).
 */
import { randomBytes } from 'node:crypto';
import { KeyportError } from '@keyport/core';
import { expect, it } from 'vitest';
import { findSecret, reachableBytes } from '../src/index.js';

const secret = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);
const b64 = Buffer.from(secret).toString('base64');

/**
 * An error holding `value` where inspect does not look: a non-enumerable field of a cause (a
 * plain Error chain: a KeyportError's constructor would reduce its cause and drop the field).
 */
const hidden = (value: unknown) => {
  const e = new Error('failed');
  Object.defineProperty(e, 'request', { value, enumerable: false });
  return new Error('y', { cause: new Error('z', { cause: e }) });
};
const body = (text: string) => hidden({ headers: new Map([['x', 'y']]), body: text });

it.each([
  ['raw bytes after other bytes', hidden(Buffer.concat([Buffer.from('{'), secret]))],
  ['an ArrayBuffer', hidden(secret.buffer.slice(0))],
  ['base64url in JSON', body(JSON.stringify({ value: Buffer.from(secret).toString('base64url') }))],
  ['base64 at another alignment', body(`x${Buffer.concat([Buffer.alloc(1), secret]).toString('base64')}`)],
  [
    'base64 at the third alignment',
    body(Buffer.concat([Buffer.alloc(2), secret, randomBytes(4)]).toString('base64')),
  ],
  ['hex', body(Buffer.from(secret).toString('hex'))],
  ['upper-case hex', body(Buffer.from(secret).toString('hex').toUpperCase())],
  ['a Set in a Map in a cause', new Error('outer', { cause: new Map([['k', new Set([body(b64)])]]) })],
  [
    'a getter under a symbol key',
    {
      [Symbol('s')]: {
        get inner() {
          return secret.buffer.slice(0);
        },
      },
    },
  ],
  ['a Buffer as JSON', hidden(JSON.parse(JSON.stringify(Buffer.from(secret))))],
  ['axios-like request options', hidden({ config: { data: JSON.stringify({ plaintext: b64 }) } })],
  ['a prototype data field', hidden(Object.create({ body: b64 }))],
])('finds a secret kept as %s', (_, value) => {
  expect(findSecret(value, secret)).not.toEqual([]);
});

it('finds nothing in clean values, and ends on cycles', () => {
  expect(findSecret(body('nothing here'), secret)).toEqual([]);
  expect(findSecret(new KeyportError('Internal', 'clean'), secret)).toEqual([]);
  const a: { self?: unknown; b: { a?: unknown } } = { b: {} };
  a.self = a;
  a.b.a = a;
  expect(findSecret(a, secret)).toEqual([]);
});

it('reachableBytes lists the buffers the walk meets, for a search by shape', () => {
  const key = randomBytes(32);
  expect(reachableBytes(hidden({ key })).some((b) => b.equals(key))).toBe(true);
  expect(reachableBytes(new KeyportError('Internal', 'clean')).filter((b) => b.length === 32)).toEqual([]);
});
