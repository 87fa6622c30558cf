/**
 * Finding a key in the token: its metadata object and its version objects (see objects.ts for
 * the layout). Metadata objects are never modified in place (SoftHSM2 refuses C_SetAttributeValue
 * on a data object's CKA_VALUE, CKR_ATTRIBUTE_READ_ONLY): a new object with a higher `seq` is
 * created, then the old one destroyed. A reader that finds several keeps the highest and leaves
 * the others to the next writer: a reader destroying them could pull an object from under a
 * writer in another process. Writers are serialised per token across this host's processes
 * (token-lock.ts); writers on different hosts are not, so what they can leave behind — two
 * metadata objects of the same `seq`, two objects for one version — is refused (`conflict`),
 * never one of them picked.
 */
import { KEY_SPECS, KEY_USAGES, KeyportError, type KeySpec, type KeyUsage, quote } from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';
import { APPLICATION, findObjects, forEachObject, IMPORT_KEY_ID, versionOfId } from './objects.js';
import { ckrOf, type Handle, P, type Pkcs11 } from './p11.js';
import {
  expectedKey,
  OBJECT_NAMES,
  type ObjectsProvenance,
  type PairKind,
  provenanceProblem,
  readKeyObject,
  type Slot,
} from './provenance.js';
import { checkSignal } from './session-pool.js';

/**
 * Metadata objects one key name may have: the current one, and the few an interrupted write or
 * two unlocked writers leave (the next writer removes them). More is not keyport's doing.
 */
export const MAX_METADATA_OBJECTS = 16;
/**
 * Versions one key may have (rotateKey refuses to make more: destroy old versions first); a
 * key's label carries at most this many objects of one key class, plus an import key pair.
 */
export const MAX_KEY_VERSIONS = 1024;
/** Distinct keyport key names a listing reads from the token. */
export const MAX_LISTED_KEYS = 100_000;
/** Longest key name createKey accepts, in UTF-16 code units (JavaScript string length). */
export const MAX_KEY_NAME_LENGTH = 128;
/**
 * Most bytes a key name createKey accepts takes as a CKA_LABEL (UTF-8): 3 per code unit (a
 * surrogate pair, two units, takes 4). A longer label is not a keyport key's.
 */
export const MAX_KEY_NAME_BYTES = 3 * MAX_KEY_NAME_LENGTH;

/** Whether `name` is a key name createKey accepts: 1-128 characters, none a control character. */
export function isKeyName(name: string): boolean {
  return name !== '' && name.length <= MAX_KEY_NAME_LENGTH && ![...name].some((c) => c.charCodeAt(0) < 0x20);
}

/**
 * Longest metadata value (CKA_VALUE, JSON) keyport writes or reads. What keyport writes for a key
 * is its labels and description (at most `MAX_DESCRIPTIVE_BYTES`, checked by createKey) and about
 * 65 bytes per version it ever made (destroyed ones too): a key rotated 15,000 times stays under
 * this. Anyone with the PIN can write a metadata object of any size under a key's label, and
 * every call on the key reads it: a longer one is refused (`metadataTooLarge`) before it is
 * decoded or parsed.
 */
export const MAX_METADATA_BYTES = 1024 * 1024;
/** Most bytes a key's labels and description take in its metadata (as JSON): createKey refuses more. */
export const MAX_DESCRIPTIVE_BYTES = 64 * 1024;

/**
 * A search under a key's label found more objects than keyport ever makes: someone else's
 * objects (another application, or objects planted by anyone with the PIN) under this label.
 * keyport reads no further, so such a label cannot make one call allocate, and hold its session,
 * without limit. Not retryable: it stays so until the extra objects are removed.
 */
export function tooManyObjects(keyUri: string, name: string, what: string, most: number): KeyportError {
  return new KeyportError(
    'KeyStateConflict',
    `the token holds more than ${most} ${what} under the label ${quote(name)}, more than keyport makes for one key; it reads no further: list the objects with this CKA_LABEL and remove those that are not this key's`,
    { provider: PROVIDER_NAME, keyUri, retryable: false },
  );
}

/**
 * A metadata object under a key's label longer than keyport ever writes (`MAX_METADATA_BYTES`):
 * not keyport's doing. Refused like too many objects (`tooManyObjects`): not retryable, it stays
 * so until the object is removed.
 */
function metadataTooLarge(keyUri: string, name: string, bytes: number): KeyportError {
  return new KeyportError(
    'KeyStateConflict',
    `the token holds a keyport metadata object of ${bytes} bytes under the label ${quote(name)}, more than keyport writes for one key (at most ${MAX_METADATA_BYTES}); it does not parse it: list the objects with this CKA_LABEL and remove those that are not this key's`,
    { provider: PROVIDER_NAME, keyUri, retryable: false },
  );
}

export interface VersionMeta {
  readonly createdAt: string;
  readonly destroyed?: boolean;
}

export interface KeyMetadata {
  readonly format: 1;
  readonly seq: number;
  readonly spec: KeySpec;
  readonly usage: KeyUsage;
  readonly labels: Readonly<Record<string, string>>;
  readonly description?: string;
  readonly createdAt: string;
  readonly origin: 'provider' | 'external';
  readonly pendingImport?: boolean;
  readonly exportable?: boolean;
  /**
   * Random, chosen by the provider instance that created the key (keys.ts, `SentCreate`): how
   * that instance recognises its own new key when its create is repeated. Kept (and carried
   * forward by later writes): only that instance knows it, and only until its create answers.
   */
  readonly creation?: string;
  readonly versions: Readonly<Record<string, VersionMeta>>;
}

export interface VersionObjects {
  secret?: Handle;
  privateKey?: Handle;
  publicKey?: Handle;
  /**
   * Why keyport does not use this version (or import key pair): what its objects' attributes say
   * about where the material came from (see `provenanceProblem`). Absent when they are as keyport
   * makes them.
   */
  refused?: string;
}

export interface ResolvedKey {
  readonly name: string;
  readonly meta: KeyMetadata;
  readonly metaHandle: Handle;
  /** Older metadata objects an interrupted write left; the next writer removes them. */
  readonly staleMeta?: readonly Handle[];
  /** Live version objects by version number (destroyed versions are absent). */
  readonly versions: ReadonlyMap<number, VersionObjects>;
  /** The import wrapping pair of a key waiting for material. */
  readonly importKey?: VersionObjects;
}

const VERSION_NUMBER = /^[1-9][0-9]{0,9}$/;

function isVersionMeta(v: unknown): v is VersionMeta {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const { createdAt, destroyed } = v as Record<string, unknown>;
  return typeof createdAt === 'string' && (destroyed === undefined || typeof destroyed === 'boolean');
}

function isStringRecord(v: unknown): boolean {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.values(v).every((x) => typeof x === 'string')
  );
}

function parseMetadata(value: Buffer): KeyMetadata | undefined {
  try {
    const m = JSON.parse(value.toString('utf8')) as Partial<KeyMetadata>;
    if (
      m.format !== 1 ||
      typeof m.seq !== 'number' ||
      !KEY_SPECS.includes(m.spec as KeySpec) ||
      !KEY_USAGES.includes(m.usage as KeyUsage) ||
      typeof m.versions !== 'object' ||
      m.versions === null ||
      // Every entry read as keyport writes it: anyone with the PIN can write this object, and a
      // `{"1": null}` or labels of numbers were TypeErrors in every call on the key.
      !Object.entries(m.versions).every(([v, meta]) => VERSION_NUMBER.test(v) && isVersionMeta(meta)) ||
      (m.labels !== undefined && !isStringRecord(m.labels))
    ) {
      return undefined;
    }
    return m as KeyMetadata;
  } catch {
    return undefined;
  }
}

/**
 * What a keyport metadata object is, to find one and to make one. Private (CKA_PRIVATE true), as
 * keyport writes it: PKCS#11 lets any application that can open a session on the token create
 * public token objects without logging in (a R/W public session), so a public object shaped like
 * keyport's metadata may come from someone without the PIN. Read as the key's metadata, a newer
 * one recording a version they generated public (usable without the PIN) made keyport seal new
 * data under it. Public ones are not keyport's: they are not searched for, read or listed.
 */
const METADATA_SHAPE = [
  { type: P.CKA_CLASS, value: P.CKO_DATA },
  { type: P.CKA_PRIVATE, value: true },
  { type: P.CKA_APPLICATION, value: APPLICATION },
];

function metadataTemplate(name: string) {
  return [...METADATA_SHAPE, { type: P.CKA_LABEL, value: name }];
}

/**
 * Two writers that did not see each other (processes on different hosts sharing a network HSM,
 * or on one host with different lock directories) left the key in a state keyport cannot read
 * without guessing. Not retryable: it stays so until someone removes the extra objects.
 */
export function conflict(keyUri: string, what: string): KeyportError {
  return new KeyportError(
    'KeyStateConflict',
    `the token holds ${what} under this label: two writers not sharing keyport's lock (e.g. on different hosts) wrote this key at the same moment. keyport does not pick one: list the objects with this CKA_LABEL, keep one key's objects and destroy the others'`,
    { provider: PROVIDER_NAME, keyUri, retryable: false },
  );
}

/**
 * An attribute of an object just found, or undefined when the object is gone: another process
 * (a writer replacing metadata, or removing what it wrote after a race) may destroy it between
 * C_FindObjects and this read, and the key is then read without it.
 */
function attributeOf(p11: Pkcs11, session: Handle, handle: Handle, type: number): Buffer | undefined {
  try {
    return p11.C_GetAttributeValue(session, handle, [{ type }])[0]?.value;
  } catch (e) {
    if (ckrOf(e) === P.CKR_OBJECT_HANDLE_INVALID) return undefined;
    throw e;
  }
}

/** The current metadata of `name`, or undefined when no keyport key has that label. */
export function readMetadata(
  p11: Pkcs11,
  session: Handle,
  name: string,
  keyUri: string,
): { meta: KeyMetadata; handle: Handle; stale: Handle[] } | undefined {
  const found: Array<{ meta: KeyMetadata; handle: Handle }> = [];
  const handles = findObjects(p11, session, metadataTemplate(name), MAX_METADATA_OBJECTS);
  if (handles.length > MAX_METADATA_OBJECTS)
    throw tooManyObjects(keyUri, name, 'keyport metadata objects', MAX_METADATA_OBJECTS);
  for (const handle of handles) {
    // pkcs11js reads an attribute whole (it asks the module for its length, then for the value;
    // C_GetObjectSize is no help: SoftHSM2 answers CK_UNAVAILABLE_INFORMATION), so the bound is
    // on what is decoded, parsed and kept, and an oversized object fails the call at once.
    const attr = attributeOf(p11, session, handle, P.CKA_VALUE);
    if (attr !== undefined && attr.length > MAX_METADATA_BYTES)
      throw metadataTooLarge(keyUri, name, attr.length);
    const meta = attr === undefined ? undefined : parseMetadata(attr);
    if (meta !== undefined) found.push({ meta, handle });
  }
  found.sort((a, b) => b.meta.seq - a.meta.seq);
  const [newest, next] = found;
  if (newest === undefined) return undefined;
  // One writer's generations always differ in seq (an interrupted write leaves the older one):
  // an equal seq is two writers that each started from the same state.
  if (next !== undefined && next.meta.seq === newest.meta.seq)
    throw conflict(keyUri, 'two keyport metadata objects');
  return { ...newest, stale: found.slice(1).map((f) => f.handle) };
}

/** Writes `meta` as the next generation (seq + 1) and removes the previous object. */
export function writeMetadata(
  p11: Pkcs11,
  session: Handle,
  name: string,
  meta: Omit<KeyMetadata, 'seq' | 'format'>,
  previous?: { meta: KeyMetadata; handle: Handle; stale?: readonly Handle[] | undefined },
): { meta: KeyMetadata; handle: Handle } {
  const next: KeyMetadata = { ...meta, format: 1, seq: (previous?.meta.seq ?? 0) + 1 };
  const value = Buffer.from(JSON.stringify(next), 'utf8');
  // Never write what readMetadata would refuse: the key would be lost to every call.
  if (value.length > MAX_METADATA_BYTES) {
    throw new KeyportError(
      'KeyStateConflict',
      `the key's metadata would take ${value.length} bytes, more than keyport keeps for one key (${MAX_METADATA_BYTES}): it records ${Object.keys(next.versions).length} versions; create a new key for new data`,
      { provider: PROVIDER_NAME, retryable: false },
    );
  }
  const handle = p11.C_CreateObject(session, [
    ...metadataTemplate(name),
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_MODIFIABLE, value: true },
    { type: P.CKA_VALUE, value },
  ]);
  if (previous !== undefined) {
    p11.C_DestroyObject(session, previous.handle);
    // Leftovers of an interrupted write, removed here, under the lock, not by readers.
    for (const stale of previous.stale ?? []) p11.C_DestroyObject(session, stale);
  }
  return { meta: next, handle };
}

/**
 * Every keyport key name in the token (labels of the metadata objects), read page by page while
 * the search runs: what is held is the distinct names, not every object's handle. (A PKCS#11
 * search cannot be resumed on another session, and one held open across the listing's yields
 * would pin a session to a consumer that may never come back: the names are read in one search,
 * before the first key is yielded.) The event loop runs between pages, and `signal` is checked
 * there (`forEachObject`): a token crowded with metadata-shaped objects makes the search long,
 * not the process unresponsive or the listing impossible to abort.
 *
 * Only labels that are key names createKey accepts are kept (`isKeyName`, and bytes that read
 * back as the same label): anyone with the PIN can give a metadata-shaped object any label, and
 * one keyport would refuse to create — longer than 128 characters, a control character, bytes
 * that are not UTF-8 — is not a keyport key, so it is not listed, as an object whose value is not
 * keyport metadata is not. What a listing holds is therefore at most MAX_LISTED_KEYS names of at
 * most 128 characters. pkcs11js reads an attribute whole (it asks the module for the length and
 * then the value, and returns only the value; handing it a buffer of the bound instead makes the
 * module refuse a longer label with CKR_BUFFER_TOO_SMALL, but pkcs11js 2.1.7 leaks that buffer
 * whenever the label fits), so a longer label is still copied out of the module, once, and
 * dropped before it is decoded.
 */
export async function listKeyNames(
  p11: Pkcs11,
  session: Handle,
  signal?: AbortSignal | undefined,
): Promise<string[]> {
  const names = new Set<string>();
  const visit = (handle: Handle): void => {
    const label = attributeOf(p11, session, handle, P.CKA_LABEL);
    if (label === undefined || label.length > MAX_KEY_NAME_BYTES) return;
    const name = label.toString('utf8');
    // Bytes that are not UTF-8 decode to U+FFFD: that name would search for another label.
    if (!isKeyName(name) || !Buffer.from(name, 'utf8').equals(label)) return;
    names.add(name);
    if (names.size > MAX_LISTED_KEYS) {
      throw new KeyportError(
        'KeyStateConflict',
        `the token holds more than ${MAX_LISTED_KEYS} keyport key names; keyport lists no further`,
        { provider: PROVIDER_NAME, retryable: false },
      );
    }
  };
  await forEachObject(p11, session, METADATA_SHAPE, visit, () => checkSignal(signal));
  return [...names].sort();
}

/** Whether any object (keyport's or not) already uses `name` as its label. */
export function labelInUse(p11: Pkcs11, session: Handle, name: string): boolean {
  return findObjects(p11, session, [{ type: P.CKA_LABEL, value: name }], 0).length > 0;
}

/** Whether an object with label `name` exists besides `ours` (handles this call created). */
export function othersWithLabel(
  p11: Pkcs11,
  session: Handle,
  name: string,
  ours: readonly (Handle | undefined)[],
): boolean {
  const mine = ours.filter((o) => o !== undefined);
  // One more object than this call made is someone else's whichever it is: no need to read on.
  const labelled = findObjects(p11, session, [{ type: P.CKA_LABEL, value: name }], mine.length);
  return labelled.some((h) => !mine.some((o) => o.equals(h)));
}

export function notFound(keyUri: string): KeyportError {
  return new KeyportError('NotFound', 'no keyport key with this label on the token', {
    provider: PROVIDER_NAME,
    keyUri,
    retryable: false,
  });
}

/** Reads the metadata and the version objects of `name`; NotFound when there is no such key. */
export function resolveKey(p11: Pkcs11, session: Handle, name: string, keyUri: string): ResolvedKey {
  const current = readMetadata(p11, session, name, keyUri);
  if (current === undefined) throw notFound(keyUri);
  const meta = current.meta;
  // RSA pairs: a version's of an RSA key, and the import wrapping pair of a key waiting for material.
  const pair: PairKind | undefined =
    meta.spec.startsWith('RSA_') || meta.pendingImport === true
      ? 'rsa'
      : meta.spec.startsWith('EC_')
        ? 'ec'
        : undefined;
  const versions = new Map<number, VersionObjects>();
  const provenance = new Map<number, ObjectsProvenance>();
  let importKey: VersionObjects | undefined;
  const importProvenance: ObjectsProvenance = {};
  const slots: Array<[number, Slot]> = [
    [P.CKO_SECRET_KEY, 'secret'],
    [P.CKO_PRIVATE_KEY, 'privateKey'],
    [P.CKO_PUBLIC_KEY, 'publicKey'],
  ];
  // Each version has one object of a class; the import key pair adds one.
  const most = MAX_KEY_VERSIONS + 1;
  for (const [cls, slot] of slots) {
    const handles = findObjects(
      p11,
      session,
      [
        { type: P.CKA_CLASS, value: cls },
        { type: P.CKA_LABEL, value: name },
      ],
      most,
    );
    if (handles.length > most) throw tooManyObjects(keyUri, name, `${OBJECT_NAMES[slot]}s`, most);
    for (const handle of handles) {
      const read = readKeyObject(p11, session, handle, slot, pair);
      if (read === undefined) continue;
      if (read.id.equals(IMPORT_KEY_ID)) {
        importKey ??= {};
        if (importKey[slot] !== undefined) throw conflict(keyUri, 'two import key pairs');
        importKey[slot] = handle;
        importProvenance[slot] = read.provenance;
        continue;
      }
      const version = versionOfId(read.id);
      if (version === undefined) continue;
      const objects = versions.get(version) ?? {};
      // Two objects claiming one version: a ciphertext naming it could be opened by only one.
      if (objects[slot] !== undefined) throw conflict(keyUri, `two objects for version ${version}`);
      objects[slot] = handle;
      versions.set(version, objects);
      provenance.set(version, { ...provenance.get(version), [slot]: read.provenance });
    }
  }
  // The token's word on exportability, not only the metadata's (anyone with the PIN can write
  // that): a version generated non-extractable stays CKA_NEVER_EXTRACTABLE, so a key with one
  // was not created exportable, whatever a newer metadata object says.
  const recorded = (v: number) => meta.versions[String(v)] !== undefined;
  const exportable =
    meta.exportable === true &&
    ![...provenance].some(
      ([v, p]) => recorded(v) && [p.secret, p.privateKey].some((o) => o?.neverExtractable === true),
    );
  const expected = expectedKey(meta.spec);
  for (const [version, objects] of versions) {
    const imported = meta.origin === 'external' && version === 1;
    const why = provenanceProblem(provenance.get(version) ?? {}, { imported, exportable, expected });
    if (why !== undefined) objects.refused = why;
  }
  if (importKey !== undefined) {
    const why = provenanceProblem(importProvenance, {
      imported: false,
      exportable: false,
      expected: expectedKey('import'),
    });
    if (why !== undefined) importKey.refused = why;
  }
  return {
    name,
    meta,
    metaHandle: current.handle,
    ...(current.stale.length > 0 ? { staleMeta: current.stale } : {}),
    versions,
    ...(importKey !== undefined ? { importKey } : {}),
  };
}

/**
 * Whether `version` is one of the key's live versions: the metadata records it, not destroyed,
 * and its objects are on the token. An object whose CKA_ID merely reads as a version is not
 * enough: anyone with the PIN (or a careless operator with pkcs11-tool) can create one under the
 * key's label — from bytes known outside the token, extractable, not sensitive — and keyport
 * would seal new data under it and open ciphertexts made with it. keyport writes the metadata
 * record of every version it makes (after the version's objects), so an unrecorded object is
 * someone else's, or a rotation's leftover that never finished.
 */
export function isLiveVersion(key: ResolvedKey, version: number): boolean {
  const recorded = key.meta.versions[String(version)];
  return recorded !== undefined && recorded.destroyed !== true && key.versions.has(version);
}

/** The primary version: the highest live one (see `isLiveVersion`). */
export function primaryVersion(key: ResolvedKey): number | undefined {
  let best: number | undefined;
  for (const v of key.versions.keys())
    if ((best === undefined || v > best) && isLiveVersion(key, v)) best = v;
  return best;
}

/** How many live versions the key has (see `isLiveVersion`). */
export function liveVersionCount(key: ResolvedKey): number {
  let count = 0;
  for (const v of key.versions.keys()) if (isLiveVersion(key, v)) count++;
  return count;
}
