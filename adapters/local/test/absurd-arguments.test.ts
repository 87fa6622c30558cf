/**
 * Absurd arguments across the public API — core's `Keyport` over the local provider, the
 * provider called directly, `openLocalKeystore` and core's helpers. Every case must end in a
 * typed KeyportError (InvalidArgument naming the option unless stated) within a second: no
 * `Internal`, no raw TypeError, no hang, no silently ignored value.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  contextDigest,
  DEFAULT_RETRY_POLICY,
  type ErrorCode,
  encodeContext,
  formatKeyUri,
  isKeyportError,
  Keyport,
  KeyportError,
  MemoryAuditSink,
  parseKeyUri,
  runWithPolicy,
  sleep,
  withKeyVersion,
} from '@keyport/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalProvider, openLocalKeystore } from '../src/index.js';
import { FAST_KDF, PASSPHRASE } from './helpers.js';

// biome-ignore lint/suspicious/noExplicitAny: the point is to pass what the types forbid
type Any = any;

interface Case {
  readonly call: () => unknown;
  /** Expected code; InvalidArgument by default. */
  readonly code?: ErrorCode;
  /** A word the message must contain (the option's name). */
  readonly names?: string;
}

const LIMIT_MS = 1_000;
const bytes = new Uint8Array([1, 2, 3]);
const getter = (): Record<string, unknown> =>
  Object.defineProperty({}, 'a', { get: () => 'x', enumerable: true }) as Record<string, unknown>;
class Ctx {
  a = 'x';
}

let kp: LocalProvider;
let keyport: Keyport;
let path: string;
let dir: string;
let socketServer: Server;
const u: Record<string, string> = {};
const o = { signal: new AbortController().signal };

beforeAll(async () => {
  // Not the helpers' per-test temp dirs and providers: these live for the whole file.
  dir = await mkdtemp(join(tmpdir(), 'keyport-absurd-'));
  path = join(dir, 'keys.keystore');
  kp = await openLocalKeystore({ path, passphrase: PASSPHRASE, kdf: FAST_KDF, create: true });
  keyport = new Keyport({ providers: [kp], retry: { baseDelayMs: 1, maxDelayMs: 1 } });
  u.aes = (await kp.createKey({ name: 'aes', spec: 'AES_256' }, o)).uri;
  u.ec = (await kp.createKey({ name: 'ec', spec: 'EC_P256' }, o)).uri;
  u.hmac = (await kp.createKey({ name: 'hmac', spec: 'HMAC_256' }, o)).uri;
  u.ext = (await kp.createKey({ name: 'ext', spec: 'AES_256', external: true }, o)).uri;
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  await mkdir(join(dir, 'a-directory'));
  socketServer = createServer();
  await new Promise<void>((resolve) => socketServer.listen(join(dir, 'socket'), resolve));
});

afterAll(async () => {
  await new Promise((resolve) => socketServer.close(resolve));
  await kp.close();
  await rm(dir, { recursive: true, force: true });
});

const open = (extra: Record<string, unknown>) =>
  openLocalKeystore({
    path: join(dir, 'x.keystore'),
    passphrase: PASSPHRASE,
    kdf: FAST_KDF,
    ...extra,
  } as Any);
const ctor = (options: unknown) => () => new Keyport(options as Any);
const enc = (opts: unknown) => () => keyport.encrypt(u.aes as string, bytes, opts as Any);
const ctx = (context: unknown) => enc({ context });
const key = (k: unknown) => () => keyport.encrypt(k as Any, bytes);
const create = (req: unknown, opts?: unknown) => () => keyport.createKey('local', req as Any, opts as Any);
const rotation = (policy: unknown) => create({ name: 'r', spec: 'AES_256', rotation: policy });
const grant = (req: unknown) => () => keyport.createGrant(u.aes as string, req as Any);
const collect = async (items: AsyncIterable<unknown>) => {
  for await (const _ of items) {
    // drain
  }
};
const minDate = new Date(-8.64e15);
const maxDate = new Date(8.64e15);

const cases: Record<string, Case> = {
  // ------------------------------------------------------------ Keyport construction
  'Keyport(undefined)': { call: ctor(undefined), names: 'options' },
  'Keyport(null)': { call: ctor(null), names: 'options' },
  'Keyport({}) without providers': { call: ctor({}), names: 'providers' },
  'providers as a string': { call: ctor({ providers: 'local' }), names: 'providers' },
  'providers [null]': { call: ctor({ providers: [null] }), names: 'providers[0]' },
  'providers [{}]': { call: ctor({ providers: [{}] }), names: 'scheme' },
  'a provider scheme with a newline': {
    call: ctor({ providers: [{ scheme: 'lo\ncal', name: 'x', capabilities: {} }] }),
    names: 'scheme',
  },
  'retry.maxAttempts NaN': {
    call: () => ctor({ providers: [], retry: { maxAttempts: Number.NaN } })(),
    names: 'maxAttempts',
  },
  'retry.maxAttempts 0': { call: ctor({ providers: [], retry: { maxAttempts: 0 } }), names: 'maxAttempts' },
  'retry.maxAttempts 101': {
    call: ctor({ providers: [], retry: { maxAttempts: 101 } }),
    names: 'maxAttempts',
  },
  'retry.maxAttempts 1.5': {
    call: ctor({ providers: [], retry: { maxAttempts: 1.5 } }),
    names: 'maxAttempts',
  },
  "retry.maxAttempts '3'": {
    call: ctor({ providers: [], retry: { maxAttempts: '3' } }),
    names: 'maxAttempts',
  },
  'retry.maxAttempts Infinity': {
    call: ctor({ providers: [], retry: { maxAttempts: Number.POSITIVE_INFINITY } }),
    names: 'maxAttempts',
  },
  'retry.baseDelayMs -1': { call: ctor({ providers: [], retry: { baseDelayMs: -1 } }), names: 'baseDelayMs' },
  'retry.maxDelayMs NaN': {
    call: ctor({ providers: [], retry: { maxDelayMs: Number.NaN } }),
    names: 'maxDelayMs',
  },
  'retry.attemptTimeoutMs 3e9': {
    call: ctor({ providers: [], retry: { attemptTimeoutMs: 3e9 } }),
    names: 'attemptTimeoutMs',
  },
  'retry.deadlineMs 0': { call: ctor({ providers: [], retry: { deadlineMs: 0 } }), names: 'deadlineMs' },
  "retry.deadlineMs '200'": {
    call: ctor({ providers: [], retry: { deadlineMs: '200' } }),
    names: 'deadlineMs',
  },
  "retry: 'fast'": { call: ctor({ providers: [], retry: 'fast' }), names: 'retry' },
  'retry with a misspelt option': {
    call: ctor({ providers: [], retry: { maxAtempts: 3 } }),
    names: 'maxAtempts',
  },
  'an unknown client option': { call: ctor({ providers: [], audti: [] }), names: 'audti' },
  'audit [{}]': { call: ctor({ providers: [], audit: [{}] }), names: 'audit[0]' },
  "audit: 'file.jsonl'": { call: ctor({ providers: [], audit: 'file.jsonl' }), names: 'audit' },
  'auditDigestKey as a string': {
    call: ctor({ providers: [], auditDigestKey: 'secret' }),
    names: 'auditDigestKey',
  },
  'random as a number': { call: ctor({ providers: [], random: 0.5 }), names: 'random' },
  'onAuditError as a string': { call: ctor({ providers: [], onAuditError: 'log' }), names: 'onAuditError' },
  'client options as a Map': { call: ctor(new Map([['providers', []]])), names: 'options' },
  'client options with a symbol key': { call: ctor({ providers: [], [Symbol('x')]: 1 }), names: 'symbol' },
  'register(null)': { call: () => new Keyport({ providers: [] }).register(null as Any), names: 'provider' },
  'register a provider without a scheme': {
    call: () => new Keyport({ providers: [] }).register({ name: 'x', capabilities: {} } as Any),
    names: 'scheme',
  },
  "addAuditSink('log')": {
    call: () => new Keyport({ providers: [] }).addAuditSink('log' as Any),
    names: 'sink',
  },

  // ------------------------------------------------------------ call options
  "timeoutMs '200' (a string)": { call: enc({ timeoutMs: '200' }), names: 'timeoutMs' },
  'timeoutMs NaN': { call: enc({ timeoutMs: Number.NaN }), names: 'timeoutMs' },
  'timeoutMs Infinity': { call: enc({ timeoutMs: Number.POSITIVE_INFINITY }), names: 'timeoutMs' },
  'timeoutMs -1': { call: enc({ timeoutMs: -1 }), names: 'timeoutMs' },
  'timeoutMs 0': { call: enc({ timeoutMs: 0 }), names: 'timeoutMs' },
  'timeoutMs 3e9 (overflows a timer)': { call: enc({ timeoutMs: 3e9 }), names: 'timeoutMs' },
  'timeoutMs 2^31': { call: enc({ timeoutMs: 2 ** 31 }), names: 'timeoutMs' },
  'timeoutMs 1.5': { call: enc({ timeoutMs: 1.5 }), names: 'timeoutMs' },
  'timeoutMs null': { call: enc({ timeoutMs: null }), names: 'timeoutMs' },
  'timeoutMs as a BigInt': { call: enc({ timeoutMs: 200n }), names: 'timeoutMs' },
  "signal: 'abort'": { call: enc({ signal: 'abort' }), names: 'signal' },
  'signal as a look-alike object': { call: enc({ signal: { aborted: false } }), names: 'signal' },
  "options: 'fast'": { call: enc('fast'), names: 'options' },
  'options: 42': { call: enc(42), names: 'options' },
  'options: []': { call: enc([]), names: 'options' },
  'options: null': { call: enc(null), names: 'options' },
  'a misspelt option (contxt)': { call: enc({ contxt: { a: 'b' } }), names: 'contxt' },
  'options with a symbol key': { call: enc({ [Symbol('timeoutMs')]: 5 }), names: 'symbol' },
  'options with a getter': {
    call: enc(Object.defineProperty({}, 'timeoutMs', { get: () => 100, enumerable: true })),
    names: 'timeoutMs',
  },

  // ------------------------------------------------------------ contexts
  'context Map with a number value': { call: ctx(new Map([['a', 1]])), names: 'context' },
  'context Map with a symbol key': { call: ctx(new Map([[Symbol('a'), 'x']])), names: 'context' },
  'context Map with an empty key': { call: ctx(new Map([['', 'x']])), names: 'context' },
  'context Map with a number key': { call: ctx(new Map([[1, 'x']])), names: 'context' },
  'context with a symbol key': { call: ctx({ [Symbol('tenant')]: 'a' }), names: 'symbol' },
  'context value a number': { call: ctx({ a: 1 }), names: 'context' },
  'context value null': { call: ctx({ a: null }), names: 'context' },
  'context value undefined': { call: ctx({ a: undefined }), names: 'context' },
  'context value an object': { call: ctx({ a: {} }), names: 'context' },
  'context empty key': { call: ctx({ '': 'x' }), names: 'context' },
  'context value with a lone surrogate': { call: ctx({ a: '\ud800' }), names: 'context' },
  'context key with a lone surrogate': { call: ctx({ '\udc00': 'x' }), names: 'context' },
  "context: 'a=b'": { call: ctx('a=b'), names: 'context' },
  'context as an array': { call: ctx(['a', 'b']), names: 'context' },
  'context null': { call: ctx(null), names: 'context' },
  'context a Date': { call: ctx(new Date()), names: 'context' },
  'context a class instance': { call: ctx(new Ctx()), names: 'context' },
  'context with an inherited prototype': { call: ctx(Object.create({ a: 'x' })), names: 'context' },
  'context with a getter': { call: ctx(getter()), names: 'context' },
  'context value over 65535 characters': { call: ctx({ a: 'x'.repeat(70_000) }), names: 'context' },
  'context of 70000 pairs': {
    call: ctx(Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, 'v']))),
    names: 'context',
  },

  // ------------------------------------------------------------ keys
  'key undefined': { call: key(undefined), names: 'key' },
  'key null': { call: key(null), names: 'key' },
  'key 42': { call: key(42), names: 'key' },
  'key {}': { call: key({}), names: 'key.uri' },
  'key { uri: 42 }': { call: key({ uri: 42 }), names: 'key.uri' },
  'key a symbol': { call: key(Symbol('k')), names: 'key' },
  "key ''": { call: key(''), names: 'key' },
  'key version a number': {
    call: () => keyport.encrypt({ uri: u.aes, version: 1 } as Any, bytes),
    names: 'version',
  },
  "key version ''": {
    call: () => keyport.encrypt({ uri: u.aes as string, version: '' }, bytes),
    names: 'version',
  },
  'key version 2^32': {
    call: () => keyport.encrypt({ uri: u.aes as string, version: '4294967296' }, bytes),
    names: 'version',
  },
  "key version '0'": { call: () => keyport.encrypt({ uri: u.aes as string, version: '0' }, bytes) },
  "key version '-1'": { call: () => keyport.encrypt({ uri: u.aes as string, version: '-1' }, bytes) },
  "key version '1e3'": { call: () => keyport.encrypt({ uri: u.aes as string, version: '1e3' }, bytes) },
  "key version ' 1'": { call: () => keyport.encrypt({ uri: u.aes as string, version: ' 1' }, bytes) },
  'key with a misspelt field': { call: key({ uri: 'x', versoin: '1' }), names: 'versoin' },
  'key URI ?version=2^32': {
    call: () => keyport.encrypt(`${kp.keyUri('aes').replace('#', '?version=4294967296#')}`, bytes),
  },
  'key URI with 30 digits of version': {
    call: () => keyport.encrypt(kp.keyUri('aes').replace('#', `?version=${'9'.repeat(30)}#`), bytes),
  },
  "key 'local://'": { call: key('local://') },
  "key 'nonsense'": { call: key('nonsense') },
  'key of an unknown scheme': { call: key('unknown-scheme://x') },
  'key with an escape sequence': { call: key('local://x\u001b[2J#k') },
  'key URI of 5000 characters': { call: key(`local://${'a'.repeat(5000)}#k`) },
  'key name with a space': { call: () => keyport.encrypt(kp.keyUri('aes').replace('#aes', '#a b'), bytes) },
  'key in another keystore': { call: key('local:///elsewhere.keystore#aes'), code: 'NotFound' },

  // ------------------------------------------------------------ bytes
  'plaintext a string': { call: () => keyport.encrypt(u.aes as string, 'hello' as Any), names: 'plaintext' },
  'plaintext undefined': {
    call: () => keyport.encrypt(u.aes as string, undefined as Any),
    names: 'plaintext',
  },
  'plaintext an array': { call: () => keyport.encrypt(u.aes as string, [1, 2] as Any), names: 'plaintext' },
  'plaintext an ArrayBuffer': {
    call: () => keyport.encrypt(u.aes as string, new ArrayBuffer(3) as Any),
    names: 'plaintext',
  },
  'ciphertext a string': { call: () => keyport.decrypt(u.aes as string, 'abc' as Any), names: 'ciphertext' },
  'ciphertext null': { call: () => keyport.decrypt(u.aes as string, null as Any), names: 'ciphertext' },
  'ciphertext garbage': { call: () => keyport.decrypt(u.aes as string, bytes), code: 'InvalidCiphertext' },
  'ciphertext empty': {
    call: () => keyport.decrypt(u.aes as string, new Uint8Array()),
    code: 'InvalidCiphertext',
  },
  'ciphertext naming version 2^32-1': {
    call: () =>
      keyport.decrypt(u.aes as string, new Uint8Array([1, 255, 255, 255, 255, ...new Uint8Array(40)])),
    code: 'InvalidCiphertext',
  },

  // ------------------------------------------------------------ data keys
  'bytes NaN': {
    call: () => keyport.generateDataKey(u.aes as string, { bytes: Number.NaN }),
    names: 'bytes',
  },
  "bytes '32'": {
    call: () => keyport.generateDataKey(u.aes as string, { bytes: '32' as Any }),
    names: 'bytes',
  },
  'bytes 0': { call: () => keyport.generateDataKey(u.aes as string, { bytes: 0 }), names: 'bytes' },
  'bytes 1e9': { call: () => keyport.generateDataKey(u.aes as string, { bytes: 1e9 }), names: 'bytes' },
  'bytes 16.5': { call: () => keyport.generateDataKey(u.aes as string, { bytes: 16.5 }), names: 'bytes' },
  'bytes -32': { call: () => keyport.generateDataKey(u.aes as string, { bytes: -32 }), names: 'bytes' },
  'data key option misspelt': {
    call: () => keyport.generateDataKey(u.aes as string, { byte: 32 } as Any),
    names: 'byte',
  },
  'data key context a Map of numbers': {
    call: () => keyport.generateDataKey(u.aes as string, { context: new Map([['a', 1]]) as Any }),
    names: 'context',
  },

  // ------------------------------------------------------------ createKey
  'createKey scheme undefined': {
    call: () => keyport.createKey(undefined as Any, { name: 'n', spec: 'AES_256' }),
  },
  'createKey scheme 42': {
    call: () => keyport.createKey(42 as Any, { name: 'n', spec: 'AES_256' }),
    names: 'scheme',
  },
  'createKey scheme unknown': { call: () => keyport.createKey('nope', { name: 'n', spec: 'AES_256' }) },
  'createKey req undefined': { call: create(undefined), names: 'req' },
  'createKey req null': { call: create(null), names: 'req' },
  "createKey req 'k'": { call: create('k'), names: 'req' },
  'createKey name 42': { call: create({ name: 42, spec: 'AES_256' }), names: 'name' },
  "createKey name ''": { call: create({ name: '', spec: 'AES_256' }), names: 'name' },
  "createKey name 'a#b'": { call: create({ name: 'a#b', spec: 'AES_256' }) },
  'createKey name of 3000 characters': {
    call: create({ name: 'x'.repeat(3000), spec: 'AES_256' }),
    names: 'name',
  },
  'createKey name with a newline': { call: create({ name: 'a\nb', spec: 'AES_256' }) },
  "createKey spec 'AES_512'": { call: create({ name: 'n', spec: 'AES_512' }), names: 'spec' },
  'createKey spec missing': { call: create({ name: 'n' }), names: 'spec' },
  'createKey usage not of the spec': { call: create({ name: 'n', spec: 'AES_256', usage: 'sign_verify' }) },
  "createKey usage 'bogus'": { call: create({ name: 'n', spec: 'AES_256', usage: 'bogus' }), names: 'usage' },
  'createKey labels a Map of numbers': {
    call: create({ name: 'n', spec: 'AES_256', labels: new Map([['a', 1]]) }),
    names: 'labels',
  },
  "createKey labels 'team=x'": {
    call: create({ name: 'n', spec: 'AES_256', labels: 'team=x' }),
    names: 'labels',
  },
  'createKey label value a number': {
    call: create({ name: 'n', spec: 'AES_256', labels: { a: 1 } }),
    names: 'labels',
  },
  'createKey description 42': {
    call: create({ name: 'n', spec: 'AES_256', description: 42 }),
    names: 'description',
  },
  'createKey description of 10000 characters': {
    call: create({ name: 'n', spec: 'AES_256', description: 'd'.repeat(10000) }),
    names: 'description',
  },
  "createKey external 'yes'": {
    call: create({ name: 'n', spec: 'AES_256', external: 'yes' }),
    names: 'external',
  },
  'createKey unknown field': { call: create({ name: 'n', spec: 'AES_256', colour: 'red' }), names: 'colour' },
  'createKey timeoutMs NaN': {
    call: create({ name: 'n', spec: 'AES_256' }, { timeoutMs: Number.NaN }),
    names: 'timeoutMs',
  },
  'rotation periodDays NaN': { call: rotation({ periodDays: Number.NaN }), names: 'periodDays' },
  'rotation periodDays 0': { call: rotation({ periodDays: 0 }), names: 'periodDays' },
  'rotation periodDays 1e6': { call: rotation({ periodDays: 1e6 }), names: 'periodDays' },
  "rotation periodDays '30'": { call: rotation({ periodDays: '30' }), names: 'periodDays' },
  'rotation nextRotationAt the minimum Date': {
    call: rotation({ periodDays: 1, nextRotationAt: minDate }),
    names: 'nextRotationAt',
  },
  'rotation nextRotationAt the maximum Date': {
    call: rotation({ periodDays: 1, nextRotationAt: maxDate }),
    names: 'nextRotationAt',
  },
  'rotation nextRotationAt an invalid Date': {
    call: rotation({ periodDays: 1, nextRotationAt: new Date(Number.NaN) }),
    names: 'nextRotationAt',
  },
  'rotation nextRotationAt a string': {
    call: rotation({ periodDays: 1, nextRotationAt: '2030-01-01' }),
    names: 'nextRotationAt',
  },
  'rotation nextRotationAt a number': {
    call: rotation({ periodDays: 1, nextRotationAt: 1_900_000_000_000 }),
    names: 'nextRotationAt',
  },
  'rotation misspelt': { call: rotation({ perodDays: 30 }), names: 'perodDays' },
  "rotation: 'monthly'": { call: rotation('monthly'), names: 'rotation' },

  // ------------------------------------------------------------ rotation policy, deletion, versions
  'setRotationPolicy undefined': {
    call: () => keyport.setRotationPolicy(u.aes as string, undefined as Any),
    names: 'policy',
  },
  'setRotationPolicy null': {
    call: () => keyport.setRotationPolicy(u.aes as string, null as Any),
    names: 'policy',
  },
  'setRotationPolicy periodDays -1': {
    call: () => keyport.setRotationPolicy(u.aes as string, { periodDays: -1 }),
    names: 'periodDays',
  },
  'setRotationPolicy periodDays 1.5': {
    call: () => keyport.setRotationPolicy(u.aes as string, { periodDays: 1.5 }),
    names: 'periodDays',
  },
  'setRotationPolicy at the minimum Date': {
    call: () => keyport.setRotationPolicy(u.aes as string, { periodDays: 1, nextRotationAt: minDate }),
    names: 'nextRotationAt',
  },
  'setRotationPolicy in the past': {
    call: () => keyport.setRotationPolicy(u.aes as string, { periodDays: 1, nextRotationAt: new Date(0) }),
    names: 'nextRotationAt',
  },
  'scheduleKeyDeletion days NaN': {
    call: () => keyport.scheduleKeyDeletion(u.aes as string, { days: Number.NaN }),
    names: 'days',
  },
  'scheduleKeyDeletion days 0': {
    call: () => keyport.scheduleKeyDeletion(u.aes as string, { days: 0 }),
    names: 'days',
  },
  'scheduleKeyDeletion days 1e9': {
    call: () => keyport.scheduleKeyDeletion(u.aes as string, { days: 1e9 }),
    names: 'days',
  },
  "scheduleKeyDeletion days '7'": {
    call: () => keyport.scheduleKeyDeletion(u.aes as string, { days: '7' as Any }),
    names: 'days',
  },
  'scheduleKeyDeletion days 400 (over the local maximum)': {
    call: () => keyport.scheduleKeyDeletion(u.aes as string, { days: 400 }),
  },
  "scheduleKeyDeletion req 'soon'": {
    call: () => keyport.scheduleKeyDeletion(u.aes as string, 'soon' as Any),
    names: 'req',
  },
  'scheduleKeyDeletion misspelt': {
    call: () => keyport.scheduleKeyDeletion(u.aes as string, { dayz: 7 } as Any),
    names: 'dayz',
  },
  'destroyKeyVersion without a version': { call: () => keyport.destroyKeyVersion(u.aes as string) },
  'destroyKeyVersion version 2^32': {
    call: () => keyport.destroyKeyVersion({ uri: u.aes as string, version: '4294967296' }),
  },
  "destroyKeyVersion version 'abc'": {
    call: () => keyport.destroyKeyVersion({ uri: u.aes as string, version: 'abc' }),
  },
  'describeKey options a number': {
    call: () => keyport.describeKey(u.aes as string, 5 as Any),
    names: 'options',
  },
  'enableKey timeoutMs -5': {
    call: () => keyport.enableKey(u.aes as string, { timeoutMs: -5 }),
    names: 'timeoutMs',
  },
  'rotateKey signal a string': {
    call: () => keyport.rotateKey(u.aes as string, { signal: 'x' as Any }),
    names: 'signal',
  },

  // ------------------------------------------------------------ sign, verify, mac
  'sign message a string': { call: () => keyport.sign(u.ec as string, 'x' as Any), names: 'message' },
  "sign algorithm 'MD5'": {
    call: () => keyport.sign(u.ec as string, bytes, { algorithm: 'MD5' as Any }),
    names: 'algorithm',
  },
  'sign algorithm 42': {
    call: () => keyport.sign(u.ec as string, bytes, { algorithm: 42 as Any }),
    names: 'algorithm',
  },
  "sign messageType 'hash'": {
    call: () => keyport.sign(u.ec as string, bytes, { messageType: 'hash' as Any }),
    names: 'messageType',
  },
  'sign option misspelt': {
    call: () => keyport.sign(u.ec as string, bytes, { alg: 'x' } as Any),
    names: 'alg',
  },
  'verify without an algorithm': {
    call: () => keyport.verify(u.ec as string, bytes, bytes, {} as Any),
    names: 'algorithm',
  },
  'verify without options': {
    call: () => keyport.verify(u.ec as string, bytes, bytes, undefined as Any),
    names: 'algorithm',
  },
  'verify signature a string': {
    call: () => keyport.verify(u.ec as string, bytes, 'sig' as Any, { algorithm: 'ECDSA_SHA_256' }),
    names: 'signature',
  },
  'verify message null': {
    call: () => keyport.verify(u.ec as string, null as Any, bytes, { algorithm: 'ECDSA_SHA_256' }),
    names: 'message',
  },
  'mac message undefined': { call: () => keyport.mac(u.hmac as string, undefined as Any), names: 'message' },
  'verifyMac mac a string': {
    call: () => keyport.verifyMac(u.hmac as string, bytes, 'abc' as Any),
    names: 'mac',
  },
  'mac timeoutMs -5': {
    call: () => keyport.mac(u.hmac as string, bytes, { timeoutMs: -5 }),
    names: 'timeoutMs',
  },
  "getPublicKey options 'x'": {
    call: () => keyport.getPublicKey(u.ec as string, 'x' as Any),
    names: 'options',
  },

  // ------------------------------------------------------------ grants
  'grant req undefined': { call: grant(undefined), names: 'req' },
  'grant grantee 42': { call: grant({ grantee: 42, operations: ['decrypt'] }), names: 'grantee' },
  "grant grantee ''": { call: grant({ grantee: '', operations: ['decrypt'] }), names: 'grantee' },
  'grant grantee with a space': {
    call: grant({ grantee: 'a b', operations: ['decrypt'] }),
    names: 'grantee',
  },
  "grant operations 'decrypt'": {
    call: grant({ grantee: 'bob', operations: 'decrypt' }),
    names: 'operations',
  },
  'grant operations []': { call: grant({ grantee: 'bob', operations: [] }), names: 'operations' },
  "grant operations ['fly']": { call: grant({ grantee: 'bob', operations: ['fly'] }), names: 'operations' },
  'grant operations [undefined]': {
    call: grant({ grantee: 'bob', operations: [undefined] }),
    names: 'operations',
  },
  "grant contextEquals 'a=b'": {
    call: grant({ grantee: 'bob', operations: ['decrypt'], constraints: { contextEquals: 'a=b' } }),
    names: 'contextEquals',
  },
  'grant contextSubset a Map of numbers': {
    call: grant({
      grantee: 'bob',
      operations: ['decrypt'],
      constraints: { contextSubset: new Map([['a', 1]]) },
    }),
    names: 'contextSubset',
  },
  'grant contextSubset with a number value': {
    call: grant({ grantee: 'bob', operations: ['decrypt'], constraints: { contextSubset: { a: 1 } } }),
    names: 'contextSubset',
  },
  'grant contextSubset with a symbol key': {
    call: grant({
      grantee: 'bob',
      operations: ['decrypt'],
      constraints: { contextSubset: { [Symbol('a')]: 'x' } },
    }),
    names: 'contextSubset',
  },
  'grant constraints misspelt': {
    call: grant({ grantee: 'bob', operations: ['decrypt'], constraints: { contextSubsett: {} } }),
    names: 'contextSubsett',
  },
  "grant constraints 'tenant'": {
    call: grant({ grantee: 'bob', operations: ['decrypt'], constraints: 'tenant' }),
    names: 'constraints',
  },
  "grant expiresAt 'tomorrow'": {
    call: grant({ grantee: 'bob', operations: ['decrypt'], expiresAt: 'tomorrow' }),
    names: 'expiresAt',
  },
  'grant expiresAt an invalid Date': {
    call: grant({ grantee: 'bob', operations: ['decrypt'], expiresAt: new Date(Number.NaN) }),
    names: 'expiresAt',
  },
  'grant expiresAt the minimum Date': {
    call: grant({ grantee: 'bob', operations: ['decrypt'], expiresAt: minDate }),
    names: 'expiresAt',
  },
  'grant expiresAt in the past': {
    call: grant({ grantee: 'bob', operations: ['decrypt'], expiresAt: new Date('2000-01-01') }),
    names: 'expiresAt',
  },
  'grant name 42': { call: grant({ grantee: 'bob', operations: ['decrypt'], name: 42 }), names: 'name' },
  'grant unknown field': {
    call: grant({ grantee: 'bob', operations: ['decrypt'], role: 'admin' }),
    names: 'role',
  },
  'revokeGrant id 42': { call: () => keyport.revokeGrant(u.aes as string, 42 as Any), names: 'grantId' },
  "revokeGrant id ''": { call: () => keyport.revokeGrant(u.aes as string, ''), names: 'grantId' },
  "listGrants timeoutMs 'x'": {
    call: () => collect(keyport.listGrants(u.aes as string, { timeoutMs: 'x' as Any })),
    names: 'timeoutMs',
  },

  // ------------------------------------------------------------ listing
  'listKeys pageSize 0': {
    call: () => collect(keyport.listKeys('local', { pageSize: 0 })),
    names: 'pageSize',
  },
  'listKeys pageSize NaN': {
    call: () => collect(keyport.listKeys('local', { pageSize: Number.NaN })),
    names: 'pageSize',
  },
  "listKeys pageSize '10'": {
    call: () => collect(keyport.listKeys('local', { pageSize: '10' as Any })),
    names: 'pageSize',
  },
  'listKeys scheme 42': { call: () => collect(keyport.listKeys(42 as Any)), names: 'scheme' },
  'listKeys option misspelt': {
    call: () => collect(keyport.listKeys('local', { page: 2 } as Any)),
    names: 'page',
  },

  // ------------------------------------------------------------ import
  "getImportParameters algorithm 'RSA_PKCS1'": {
    call: () => keyport.getImportParameters(u.ext as string, { algorithm: 'RSA_PKCS1' as Any }),
    names: 'algorithm',
  },
  "getImportParameters req 'x'": {
    call: () => keyport.getImportParameters(u.ext as string, 'x' as Any),
    names: 'req',
  },
  'importKeyMaterial req undefined': {
    call: () => keyport.importKeyMaterial(u.ext as string, undefined as Any),
    names: 'req',
  },
  'importKeyMaterial wrappedMaterial a string': {
    call: () =>
      keyport.importKeyMaterial(
        u.ext as string,
        { wrappedMaterial: 'abc', algorithm: 'RSAES_OAEP_SHA_256' } as Any,
      ),
    names: 'wrappedMaterial',
  },
  'importKeyMaterial without an algorithm': {
    call: () => keyport.importKeyMaterial(u.ext as string, { wrappedMaterial: bytes } as Any),
    names: 'algorithm',
  },
  'importKeyMaterial importToken a string': {
    call: () =>
      keyport.importKeyMaterial(u.ext as string, {
        wrappedMaterial: bytes,
        algorithm: 'RSAES_OAEP_SHA_256',
        importToken: 'tok' as Any,
      }),
    names: 'importToken',
  },
  'importKeyMaterial expiresAt an invalid Date': {
    call: () =>
      keyport.importKeyMaterial(u.ext as string, {
        wrappedMaterial: bytes,
        algorithm: 'RSAES_OAEP_SHA_256',
        expiresAt: new Date(Number.NaN),
      }),
    names: 'expiresAt',
  },

  // ------------------------------------------------------------ batches
  "encryptBatch items 'x'": { call: () => keyport.encryptBatch(u.aes as string, 'x' as Any), names: 'items' },
  'encryptBatch items [null]': {
    call: () => keyport.encryptBatch(u.aes as string, [null] as Any),
    names: 'items[0]',
  },
  'encryptBatch plaintext a string': {
    call: () => keyport.encryptBatch(u.aes as string, [{ plaintext: 'x' }] as Any),
    names: 'plaintext',
  },
  'encryptBatch context a Map with a symbol key': {
    call: () =>
      keyport.encryptBatch(
        u.aes as string,
        [{ plaintext: bytes, context: new Map([[Symbol('a'), 'b']]) }] as Any,
      ),
    names: 'context',
  },
  'encryptBatch item with an unknown field': {
    call: () => keyport.encryptBatch(u.aes as string, [{ plaintext: bytes, extra: 1 }] as Any),
    names: 'extra',
  },
  'decryptBatch ciphertext 42': {
    call: () => keyport.decryptBatch(u.aes as string, [{ ciphertext: 42 }] as Any),
    names: 'ciphertext',
  },
  'encryptBatch timeoutMs NaN': {
    call: () => keyport.encryptBatch(u.aes as string, [{ plaintext: bytes }], { timeoutMs: Number.NaN }),
    names: 'timeoutMs',
  },

  // ------------------------------------------------------------ openLocalKeystore
  'open(undefined)': { call: () => openLocalKeystore(undefined as Any), names: 'options' },
  'open without a path': { call: () => openLocalKeystore({ passphrase: PASSPHRASE } as Any), names: 'path' },
  'open path 42': { call: () => open({ path: 42 }), names: 'path' },
  "open path ''": { call: () => open({ path: '' }), names: 'path' },
  'open path with a NUL': { call: () => open({ path: 'a\0b' }), names: 'path' },
  'open passphrase undefined': { call: () => open({ passphrase: undefined }), names: 'passphrase' },
  'open passphrase 42': { call: () => open({ passphrase: 42 }), names: 'passphrase' },
  "open passphrase ''": { call: () => open({ passphrase: '' }), names: 'passphrase' },
  'open passphrase empty bytes': { call: () => open({ passphrase: new Uint8Array() }), names: 'passphrase' },
  'open passphrase with a lone surrogate': {
    call: () => open({ passphrase: 'pass\ud800' }),
    names: 'passphrase',
  },
  'open passphrase of 1 MiB': {
    call: () => open({ passphrase: new Uint8Array(1 << 20) }),
    names: 'passphrase',
  },
  'open kdf.log2N NaN': { call: () => open({ create: true, kdf: { log2N: Number.NaN } }), names: 'log2N' },
  'open kdf.log2N 40': { call: () => open({ create: true, kdf: { log2N: 40 } }), names: 'log2N' },
  'open kdf combined too costly': {
    call: () => open({ create: true, kdf: { log2N: 22, r: 8, p: 1 } }),
    names: 'kdf',
  },
  "open kdf 'strong'": { call: () => open({ kdf: 'strong' }), names: 'kdf' },
  'open kdf misspelt': { call: () => open({ kdf: { N: 1024 } }), names: 'N' },
  "open create 'yes'": { call: () => open({ create: 'yes' }), names: 'create' },
  "open clock 'now'": { call: () => open({ clock: 'now' }), names: 'clock' },
  'open clock answering an invalid Date': {
    call: () => open({ create: true, clock: () => new Date(Number.NaN) }),
    names: 'clock',
  },
  'open clock answering a number': { call: () => open({ create: true, clock: () => 5 }), names: 'clock' },
  "open lockTimeoutMs '200'": { call: () => open({ lockTimeoutMs: '200' }), names: 'lockTimeoutMs' },
  'open lockTimeoutMs 3e9': { call: () => open({ lockTimeoutMs: 3e9 }), names: 'lockTimeoutMs' },
  'open timeoutMs NaN': { call: () => open({ timeoutMs: Number.NaN }), names: 'timeoutMs' },
  "open signal 'x'": { call: () => open({ signal: 'x' }), names: 'signal' },
  'open principal 42': { call: () => open({ principal: 42 }), names: 'principal' },
  'open principal with a space': { call: () => open({ principal: 'a b' }), names: 'principal' },
  'open option misspelt': { call: () => open({ pasphrase: 'x' }), names: 'pasphrase' },
  'open a FIFO': { call: () => open({ path: join(dir, 'fifo') }), names: 'FIFO' },
  'open a FIFO with create': { call: () => open({ path: join(dir, 'fifo'), create: true }), names: 'FIFO' },
  'open /dev/zero': { call: () => open({ path: '/dev/zero' }), names: 'character device' },
  'open /dev/null with create': {
    call: () => open({ path: '/dev/null', create: true }),
    names: 'character device',
  },
  'open a directory': { call: () => open({ path: join(dir, 'a-directory') }), names: 'directory' },
  'open a socket': { call: () => open({ path: join(dir, 'socket') }), names: 'socket' },

  // ------------------------------------------------------------ the provider called directly
  'provider encrypt ref undefined': { call: () => kp.encrypt(undefined as Any, bytes, {}, o), names: 'ref' },
  'provider encrypt context a Map of numbers': {
    call: () => kp.encrypt({ uri: u.aes as string }, bytes, { context: new Map([['a', 1]]) as Any }, o),
    names: 'context',
  },
  'provider encrypt plaintext a string': {
    call: () => kp.encrypt({ uri: u.aes as string }, 'x' as Any, {}, o),
    names: 'plaintext',
  },
  "provider keyUri name 'a#b'": { call: () => kp.keyUri('a#b') },
  'provider keyUri version 2^32': { call: () => kp.keyUri('k', '4294967296') },
  'provider createKey req undefined': { call: () => kp.createKey(undefined as Any, o), names: 'req' },
  "provider describeKey signal 'x'": {
    call: () => kp.describeKey({ uri: u.aes as string }, { signal: 'x' } as Any),
    names: 'signal',
  },
  'provider createGrant contextEquals a Map of numbers': {
    call: () =>
      kp.createGrant(
        { uri: u.aes as string },
        {
          grantee: 'bob',
          operations: ['decrypt'],
          constraints: { contextEquals: new Map([['a', 1]]) as Any },
        },
        o,
      ),
    names: 'contextEquals',
  },
  'provider scheduleKeyDeletion days NaN': {
    call: () => kp.scheduleKeyDeletion({ uri: u.aes as string }, { days: Number.NaN }, o),
    names: 'days',
  },
  'provider sign algorithm 42': {
    call: () => kp.sign({ uri: u.ec as string }, bytes, { algorithm: 42 as Any }, o),
    names: 'algorithm',
  },
  'provider generateDataKey bytes NaN': {
    call: () => kp.generateDataKey({ uri: u.aes as string }, { bytes: Number.NaN }, o),
  },
  'provider setRotationPolicy at the minimum Date': {
    call: () => kp.setRotationPolicy({ uri: u.aes as string }, { periodDays: 1, nextRotationAt: minDate }, o),
    names: 'nextRotationAt',
  },

  // ------------------------------------------------------------ core helpers
  'parseKeyUri(42)': { call: () => parseKeyUri(42 as Any) },
  'parseKeyUri(undefined)': { call: () => parseKeyUri(undefined as Any) },
  'formatKeyUri(null)': { call: () => formatKeyUri(null as Any) },
  'formatKeyUri of an unknown scheme': { call: () => formatKeyUri({ scheme: 'x' } as Any) },
  'withKeyVersion version 42': { call: () => withKeyVersion('local://k.ks#a', 42 as Any) },
  'encodeContext Map with a number key': { call: () => encodeContext(new Map([[1, 'a']]) as Any) },
  "contextDigest('x')": { call: () => contextDigest('x' as Any) },
  'sleep(NaN)': { call: () => sleep(Number.NaN), names: 'ms' },
  'sleep(3e9)': { call: () => sleep(3e9), names: 'ms' },
  "sleep(1, 'signal')": { call: () => sleep(1, 'signal' as Any), names: 'signal' },
  'runWithPolicy maxAttempts NaN': {
    call: () => runWithPolicy(async () => 1, { ...DEFAULT_RETRY_POLICY, maxAttempts: Number.NaN }, {}),
    names: 'maxAttempts',
  },
  "runWithPolicy timeoutMs '200'": {
    call: () => runWithPolicy(async () => 1, DEFAULT_RETRY_POLICY, { timeoutMs: '200' as Any }),
    names: 'timeoutMs',
  },
  'MemoryAuditSink in a client with a broken sink list': {
    call: ctor({ providers: [], audit: [new MemoryAuditSink(), 5] }),
    names: 'audit[1]',
  },
};

describe('absurd arguments end in a typed KeyportError, quickly', () => {
  it(`covers at least 190 cases (${Object.keys(cases).length})`, () => {
    expect(Object.keys(cases).length).toBeGreaterThanOrEqual(190);
  });

  for (const [title, c] of Object.entries(cases)) {
    it(title, async () => {
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        Promise.resolve()
          .then(c.call)
          .then(
            (value) => ({ value }),
            (error: unknown) => ({ error }),
          ),
        new Promise<{ hang: true }>((resolve) => {
          timer = setTimeout(() => resolve({ hang: true }), LIMIT_MS * 5);
        }),
      ]);
      clearTimeout(timer);
      const elapsed = performance.now() - started;
      expect('hang' in outcome, 'the call hung').toBe(false);
      expect(elapsed, 'took too long (blocked the event loop?)').toBeLessThan(LIMIT_MS);
      expect('error' in outcome, `resolved: ${JSON.stringify((outcome as { value?: unknown }).value)}`).toBe(
        true,
      );
      const error = (outcome as { error: unknown }).error;
      if (!isKeyportError(error)) throw error;
      expect(error).toBeInstanceOf(KeyportError);
      expect(error.code, error.message).toBe(c.code ?? 'InvalidArgument');
      if (c.names !== undefined) expect(error.message).toContain(c.names);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may reach a log
      expect(error.message).not.toMatch(/[\u0000-\u001f\u007f]/);
    });
  }
});
