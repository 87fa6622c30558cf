/**
 * How keyport keys live in a token.
 *
 * - A key is named by CKA_LABEL. Every version of it is a separate object (a secret key, or a
 *   private/public key pair) carrying the SAME label and the version in CKA_ID:
 *   `"kpv1"` (4 ASCII bytes) followed by the version as u32be — 8 bytes, e.g. version 3 is
 *   6b70763100000003. A pair's two halves share the CKA_ID, as PKCS#11 tools expect.
 * - Keyport's own metadata (spec, usage, labels, description, version dates, destroyed versions,
 *   import state) sits in a CKO_DATA object with the same CKA_LABEL and CKA_APPLICATION "keyport".
 * - Keys are generated in the token: CKA_TOKEN, CKA_PRIVATE and CKA_SENSITIVE true, CKA_EXTRACTABLE
 *   false — unless created `exportable` for BYOK (then extractable, still sensitive: the material
 *   leaves only wrapped by C_WrapKey, never in the clear).
 */
import type { KeySpec, KeyUsage } from '@keyport/core';
import { CURVES } from './der.js';
import { type Handle, P, type Pkcs11, type Template } from './p11.js';

const ID_PREFIX = Buffer.from('kpv1', 'ascii');
/** CKA_ID of the import (BYOK) wrapping key pair of a key that waits for material. */
export const IMPORT_KEY_ID = Buffer.from('kpimport', 'ascii');
export const APPLICATION = 'keyport';

export function versionId(version: number): Buffer {
  const id = Buffer.alloc(8);
  ID_PREFIX.copy(id);
  id.writeUInt32BE(version, 4);
  return id;
}

/** The version a CKA_ID carries, or undefined when the object is not a keyport key version. */
export function versionOfId(id: Uint8Array): number | undefined {
  if (id.length !== 8 || !Buffer.from(id.subarray(0, 4)).equals(ID_PREFIX)) return undefined;
  const v = Buffer.from(id).readUInt32BE(4);
  return v > 0 ? v : undefined;
}

/** The attributes that let a key of this usage work; cleared to disable, set to enable. */
export function usageAttributes(usage: KeyUsage, cls: number, enabled: boolean): Template {
  const secret = cls === P.CKO_SECRET_KEY;
  const pub = cls === P.CKO_PUBLIC_KEY;
  switch (usage) {
    case 'encrypt_decrypt':
      return secret
        ? [
            { type: P.CKA_ENCRYPT, value: enabled },
            { type: P.CKA_DECRYPT, value: enabled },
          ]
        : [{ type: pub ? P.CKA_ENCRYPT : P.CKA_DECRYPT, value: enabled }];
    case 'sign_verify':
      return [{ type: pub ? P.CKA_VERIFY : P.CKA_SIGN, value: enabled }];
    case 'mac':
      return [
        { type: P.CKA_SIGN, value: enabled },
        { type: P.CKA_VERIFY, value: enabled },
      ];
  }
}

/**
 * Every usage attribute an object of each key class has (PKCS#11 v2.40 §4.8–4.10). A template
 * that names only the attributes a key needs is not enough: a module picks the default of the
 * others, and SoftHSM2 defaults every one of them to true — an AES key made with only
 * CKA_ENCRYPT/CKA_DECRYPT could also wrap and unwrap (wrap an exportable key under it, then
 * C_Decrypt the result: that key in the clear), an RSA decryption key could sign, an import
 * key could C_Decrypt the wrapped material. So each new key names all of them.
 */
const USAGE_ATTRIBUTES: Readonly<Record<number, readonly number[]>> = {
  [P.CKO_SECRET_KEY]: [
    P.CKA_ENCRYPT,
    P.CKA_DECRYPT,
    P.CKA_SIGN,
    P.CKA_VERIFY,
    P.CKA_WRAP,
    P.CKA_UNWRAP,
    P.CKA_DERIVE,
  ],
  [P.CKO_PRIVATE_KEY]: [P.CKA_DECRYPT, P.CKA_SIGN, P.CKA_SIGN_RECOVER, P.CKA_UNWRAP, P.CKA_DERIVE],
  [P.CKO_PUBLIC_KEY]: [P.CKA_ENCRYPT, P.CKA_VERIFY, P.CKA_VERIFY_RECOVER, P.CKA_WRAP, P.CKA_DERIVE],
};

/** `template` (which may set some usage attributes) plus every other usage attribute of `cls` set false. */
export function onlyUsage(cls: number, template: Template): Template {
  const named = new Set(template.map((a) => a.type));
  const rest = (USAGE_ATTRIBUTES[cls] ?? [])
    .filter((type) => !named.has(type))
    .map((type) => ({ type, value: false }));
  return [...template, ...rest];
}

export interface GenerateOptions {
  readonly label: string;
  readonly id: Buffer;
  readonly spec: KeySpec;
  readonly usage: KeyUsage;
  /** Extractable (still sensitive) so C_WrapKey can export it for BYOK. */
  readonly exportable?: boolean;
}

export interface GeneratedVersion {
  readonly secret?: Handle;
  readonly privateKey?: Handle;
  readonly publicKey?: Handle;
}

function common(o: GenerateOptions): Template {
  return [
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_LABEL, value: o.label },
    { type: P.CKA_ID, value: o.id },
  ];
}

function secretTemplate(o: GenerateOptions, keyType: number): Template {
  return [
    ...common(o),
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
    { type: P.CKA_KEY_TYPE, value: keyType },
    { type: P.CKA_VALUE_LEN, value: 32 },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: o.exportable === true },
    { type: P.CKA_MODIFIABLE, value: true },
    ...onlyUsage(P.CKO_SECRET_KEY, usageAttributes(o.usage, P.CKO_SECRET_KEY, true)),
  ];
}

function privateTemplate(o: GenerateOptions): Template {
  return [
    ...common(o),
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: o.exportable === true },
    { type: P.CKA_MODIFIABLE, value: true },
    ...onlyUsage(P.CKO_PRIVATE_KEY, usageAttributes(o.usage, P.CKO_PRIVATE_KEY, true)),
  ];
}

function publicTemplate(o: GenerateOptions, extra: Template): Template {
  return [
    ...common(o),
    { type: P.CKA_PRIVATE, value: false },
    { type: P.CKA_MODIFIABLE, value: true },
    ...onlyUsage(P.CKO_PUBLIC_KEY, usageAttributes(o.usage, P.CKO_PUBLIC_KEY, true)),
    ...extra,
  ];
}

/**
 * Token writes, one at a time per module, and no other call on that module while one runs: a key
 * version's generation (on a libuv worker thread) together with the objects written right after
 * it (metadata, usage attributes), or an import's unwrap and its metadata. SoftHSM2 2.6.1
 * answered CKR_GENERAL_ERROR now and then when a worker thread created token objects while
 * another thread wrote to the token or searched it (seen with five concurrent createKey calls:
 * first with two generations at once, later with one generation beside another call's metadata
 * write, and in a loaded CI run with one generation beside another call's label search on the
 * calling thread; SoftHSMv2 issue #573), OS locking notwithstanding. So a write waits for the
 * writes before it, and the session pool starts no call while one runs (`tokenWriteRunning`).
 * Key creation, rotation and import are rare enough that this costs nothing that matters; a
 * crypto call pays one WeakMap lookup, and calls already running are not held (their PKCS#11
 * steps after an asynchronous one touch no token object). A write must not borrow a session
 * from the pool (it would wait for itself): it runs on the session of the call that started it.
 */
interface TokenWrites {
  /** The last write queued: the next one starts after it. */
  tail: Promise<unknown>;
  /** The write running now, if any. */
  running: Promise<unknown> | undefined;
}
const tokenWrites = new WeakMap<Pkcs11, TokenWrites>();

function tokenWritesOf(p11: Pkcs11): TokenWrites {
  let writes = tokenWrites.get(p11);
  if (writes === undefined) {
    writes = { tail: Promise.resolve(), running: undefined };
    tokenWrites.set(p11, writes);
  }
  return writes;
}

export function oneTokenWriteAtATime<T>(p11: Pkcs11, write: () => Promise<T>): Promise<T> {
  const writes = tokenWritesOf(p11);
  const start = (): Promise<T> => {
    // Set before any other JavaScript runs: write()'s first PKCS#11 call has just started.
    const running = write();
    writes.running = running;
    const clear = () => {
      if (writes.running === running) writes.running = undefined;
    };
    running.then(clear, clear);
    return running;
  };
  const next = writes.tail.then(start, start);
  writes.tail = next;
  return next;
}

/** The token write running on this module now, if any (see `oneTokenWriteAtATime`). */
export function tokenWriteRunning(p11: Pkcs11): Promise<unknown> | undefined {
  return tokenWrites.get(p11)?.running;
}

/** Generates one key version in the token (C_GenerateKey[Pair], off the event loop); callers hold `oneTokenWriteAtATime`. */
export async function generateVersion(
  p11: Pkcs11,
  session: Handle,
  o: GenerateOptions,
): Promise<GeneratedVersion> {
  switch (o.spec) {
    case 'AES_256':
      return {
        secret: await p11.C_GenerateKeyAsync(
          session,
          { mechanism: P.CKM_AES_KEY_GEN },
          secretTemplate(o, P.CKK_AES),
        ),
      };
    case 'HMAC_256':
      return {
        secret: await p11.C_GenerateKeyAsync(
          session,
          { mechanism: P.CKM_GENERIC_SECRET_KEY_GEN },
          secretTemplate(o, P.CKK_GENERIC_SECRET),
        ),
      };
    case 'RSA_2048':
    case 'RSA_3072':
    case 'RSA_4096': {
      const bits = Number(o.spec.slice(4));
      const pair = await p11.C_GenerateKeyPairAsync(
        session,
        { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
        publicTemplate(o, [
          { type: P.CKA_MODULUS_BITS, value: bits },
          { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
        ]),
        privateTemplate(o),
      );
      return { privateKey: pair.privateKey, publicKey: pair.publicKey };
    }
    case 'EC_P256':
    case 'EC_P384': {
      const pair = await p11.C_GenerateKeyPairAsync(
        session,
        { mechanism: P.CKM_EC_KEY_PAIR_GEN },
        publicTemplate(o, [{ type: P.CKA_EC_PARAMS, value: CURVES[o.spec].oid }]),
        privateTemplate(o),
      );
      return { privateKey: pair.privateKey, publicKey: pair.publicKey };
    }
  }
}

/**
 * The objects matching `template`, but at most `most` + 1 of them (C_FindObjects in pages of at
 * most 64): the search stops there. Anyone with the PIN (another application, or someone planting
 * objects) can put any number of objects under a key's label, and a search that collected them
 * all would make one call allocate and hold its session without limit. A caller that gets more
 * than `most` refuses (see key-store.ts, `tooManyObjects`) or knows enough already.
 */
export function findObjects(p11: Pkcs11, session: Handle, template: Template, most: number): Handle[] {
  p11.C_FindObjectsInit(session, template);
  const out: Handle[] = [];
  try {
    while (out.length <= most) {
      const wanted = Math.min(64, most + 1 - out.length);
      const page = p11.C_FindObjects(session, wanted);
      out.push(...page);
      if (page.length < wanted) break;
    }
  } finally {
    p11.C_FindObjectsFinal(session);
  }
  return out;
}

const ignore = (): void => undefined;

/**
 * Calls `visit` with each object matching `template` while the search runs, a page of at most 64
 * handles at a time, so a search over many objects holds one page, not all of them. `visit` may
 * read attributes (C_GetAttributeValue during a search, as pkcs11-tool's listing does) but must
 * not start another search on `session`.
 *
 * Between pages the event loop runs: anyone with the PIN can make any number of objects match (a
 * million metadata-shaped objects under one label), and a search read in one synchronous go
 * blocked every other call of the process, and the listing's own abort, for as long as the token
 * took to hand them all over (3 s for 50,000 objects on SoftHSM2). `between` runs before each
 * further page (a listing checks its signal there). A token write that started meanwhile is
 * waited for first: no call touches token objects while one runs (`oneTokenWriteAtATime`).
 */
export async function forEachObject(
  p11: Pkcs11,
  session: Handle,
  template: Template,
  visit: (handle: Handle) => void,
  between: () => void = ignore,
): Promise<void> {
  p11.C_FindObjectsInit(session, template);
  try {
    for (;;) {
      const page = p11.C_FindObjects(session, 64);
      for (const handle of page) visit(handle);
      if (page.length < 64) break;
      await new Promise<void>((resolve) => setImmediate(resolve));
      for (let w = tokenWriteRunning(p11); w !== undefined; w = tokenWriteRunning(p11))
        await w.then(ignore, ignore);
      between();
    }
  } finally {
    p11.C_FindObjectsFinal(session);
  }
}

export function destroyAll(p11: Pkcs11, session: Handle, handles: readonly (Handle | undefined)[]): void {
  for (const h of handles) if (h !== undefined) p11.C_DestroyObject(session, h);
}
