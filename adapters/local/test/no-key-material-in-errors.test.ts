/**
 * No plaintext, key material or imported material in the error of a call that fails on a
 * corrupt or unreadable keystore: the error and everything reachable from it (hidden and
 * symbol-keyed properties, the `cause` chain, arrays, Maps, buffers; @keyport/conformance's findSecret) is
 * searched for each secret in any encoding. The body is edited and sealed again under the right
 * passphrase (what bit rot with a recomputed digest, or someone holding the passphrase, writes),
 * so the failures reach the JSON parse and the body's validation, where the material is in hand.
 */
import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { isKeyportError, type KeyportError } from '@keyport/core';
import { describe, expect, it } from 'vitest';
// Not a dependency: @keyport/conformance depends on this package (its local conformance run).
import { findSecret } from '../../../conformance/src/find-secret.js';
import type { LocalProvider } from '../src/index.js';
import { deriveKeys, readHeader, seal, unseal } from '../src/sealed-file.js';
import { newKeystore, o, open, PASSPHRASE } from './helpers.js';

interface Setup {
  path: string;
  uri: string;
  pendingUri: string;
  plaintext: Buffer;
  ciphertext: Uint8Array;
  /** The key's material, as the body holds it. */
  material: Buffer;
  imported: Buffer;
  wrapped: Uint8Array;
}

async function setup(): Promise<Setup> {
  const { kp, path } = await newKeystore();
  const key = await kp.createKey({ name: 'k', spec: 'AES_256' }, o);
  await kp.createKey({ name: 'm', spec: 'HMAC_256' }, o);
  const pending = await kp.createKey({ name: 'x', spec: 'AES_256', external: true }, o);
  const params = await kp.getImportParameters({ uri: pending.uri }, {}, o);
  const imported = randomBytes(32);
  const wrappingKey = createPublicKey({
    key: Buffer.from(params.wrappingPublicKey),
    format: 'der',
    type: 'spki',
  });
  const wrapped = publicEncrypt(
    { key: wrappingKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    imported,
  );
  const plaintext = randomBytes(40);
  const { ciphertext } = await kp.encrypt({ uri: key.uri }, plaintext, {}, o);
  const body = JSON.parse((await unsealed(path)).text) as {
    keys: Array<{ versions: Array<{ material: string }> }>;
  };
  const material = Buffer.from(body.keys[0]?.versions[0]?.material ?? '', 'base64');
  expect(material.length).toBe(32);
  // The search finds what it looks for (a hex copy of the material, a nested base64 one).
  expect(findSecret([material.toString('hex')], material)).not.toEqual([]);
  expect(findSecret(new Map([['k', { json: body }]]), material)).not.toEqual([]);
  return { path, uri: key.uri, pendingUri: pending.uri, plaintext, ciphertext, material, imported, wrapped };
}

async function unsealed(path: string) {
  const file = await readFile(path);
  const header = readHeader(file);
  const keys = await deriveKeys(Buffer.from(PASSPHRASE), header.params, header.salt);
  return {
    text: unseal(file, keys).toString('utf8'),
    reseal: (text: string) => writeFile(path, seal(Buffer.from(text), keys)),
  };
}

async function editText(path: string, edit: (text: string, material: string) => string, s: Setup) {
  const { text, reseal } = await unsealed(path);
  const material = s.material.toString('base64');
  expect(text).toContain(material);
  await reseal(edit(text, material));
}

const corruptions: Array<[string, (s: Setup) => Promise<void>]> = [
  [
    'the body is cut short after the material',
    (s) => editText(s.path, (t, m) => t.slice(0, t.indexOf(m) + m.length + 2), s),
  ],
  [
    'the body has junk after the material',
    (s) => editText(s.path, (t, m) => t.replace(`"${m}"`, `"${m}"}}x`), s),
  ],
  [
    'the material is a byte short',
    (s) => editText(s.path, (t, m) => t.replace(m, s.material.subarray(0, 31).toString('base64')), s),
  ],
  ['the material is a number', (s) => editText(s.path, (t, m) => t.replace(`"${m}"`, `"${m}".length`), s)],
  ['another key is malformed', (s) => editText(s.path, (t) => t.replace('"HMAC_256"', '"HMAC_999"'), s)],
  [
    'a sealed byte flipped',
    async (s) => {
      const file = Buffer.from(await readFile(s.path));
      file[file.length - 60] = (file[file.length - 60] ?? 0) ^ 1;
      await writeFile(s.path, file);
    },
  ],
  ['the file cut in half', async (s) => truncate(s.path, Math.floor((await readFile(s.path)).length / 2))],
  [
    'a directory where the file was',
    async (s) => {
      await rm(s.path);
      await mkdir(s.path);
    },
  ],
];

async function failureOf(run: () => Promise<unknown>): Promise<KeyportError> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isKeyportError(error)) throw new Error(`expected a KeyportError, got ${String(error)}`);
  return error;
}

function expectNoSecret(error: KeyportError, s: Setup): void {
  for (const [what, secret] of [
    ['plaintext', s.plaintext],
    ['key material', s.material],
    ['imported material', s.imported],
  ] as const) {
    expect(findSecret(error, secret), `${what} in ${error.code}: ${error.message}`).toEqual([]);
  }
}

describe('a corrupt or unreadable keystore: no secret in the error', () => {
  it.each(corruptions)('%s', async (_, corrupt) => {
    const s = await setup();
    await corrupt(s);
    let kp: LocalProvider;
    try {
      kp = await open({ path: s.path });
    } catch (e) {
      if (!isKeyportError(e)) throw e;
      expectNoSecret(e, s);
      return;
    }
    const calls = [
      () => kp.encrypt({ uri: s.uri }, s.plaintext, {}, o),
      () => kp.decrypt({ uri: s.uri }, s.ciphertext, {}, o),
      () => kp.generateDataKey({ uri: s.uri }, {}, o),
      () =>
        kp.importKeyMaterial(
          { uri: s.pendingUri },
          { wrappedMaterial: s.wrapped, algorithm: 'RSAES_OAEP_SHA_256' },
          o,
        ),
    ];
    for (const call of calls) expectNoSecret(await failureOf(call), s);
  });
});
