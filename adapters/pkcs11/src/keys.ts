/** Creating, describing, listing, rotating, enabling/disabling keys and destroying versions. */
import { randomBytes } from 'node:crypto';
import {
  CREATE_KEY_FIELDS,
  type CreateKeyRequest,
  checkBoolean,
  checkCreateKeyRequest,
  type KeyInfo,
  KeyportError,
  type KeyRef,
  type KeyUsage,
  keyportError,
  quote,
  type UnmodeledKey,
  USAGES_BY_SPEC,
} from '@keyport/core';
import { createImportKey } from './import.js';
import type { KeyAccess } from './key-access.js';
import { keyInfo, keyState } from './key-info.js';
import {
  isKeyName,
  labelInUse,
  listKeyNames,
  liveVersionCount,
  MAX_DESCRIPTIVE_BYTES,
  MAX_KEY_VERSIONS,
  othersWithLabel,
  type ResolvedKey,
  readMetadata,
  resolveKey,
  writeMetadata,
} from './key-store.js';
import {
  destroyAll,
  findObjects,
  generateVersion,
  oneTokenWriteAtATime,
  tokenWriteRunning,
  usageAttributes,
  versionId,
} from './objects.js';
import { type Handle, P, type Pkcs11 } from './p11.js';
import type { Pkcs11CreateKeyRequest } from './provider.js';
import { checkSignal } from './session-pool.js';

/** A key name from a plain name or a pkcs11: URI's object= attribute. */
function nameOf(p: KeyAccess, raw: string): string {
  const name = raw.startsWith('pkcs11:') ? p.target({ uri: raw }).name : raw;
  if (!isKeyName(name)) {
    throw new KeyportError('InvalidArgument', 'key names are 1-128 printable characters', {
      provider: p.name,
    });
  }
  return name;
}

/**
 * The request as given — through Keyport (core checked its own fields and passed the rest on)
 * or straight to the driver: core's checks, then this provider's one extension, `exportable`, a
 * boolean. An unknown field (a typo of `exportable`) or `exportable: 'yes'` is refused, not
 * ignored: the caller would get a key that cannot be exported, or one that can.
 */
function createKeyArg(p: KeyAccess, given: unknown): Pkcs11CreateKeyRequest {
  try {
    const req = checkCreateKeyRequest(given, 'req', 'extensions') as CreateKeyRequest &
      Record<string, unknown>;
    for (const field of Object.keys(req)) {
      if (Object.hasOwn(CREATE_KEY_FIELDS, field) || field === 'exportable') continue;
      throw new KeyportError(
        'InvalidArgument',
        `req: unknown option ${quote(field)} (pkcs11 adds: exportable)`,
      );
    }
    if (req.exportable === undefined) return req;
    const exportable = checkBoolean(req.exportable, 'req.exportable');
    if (exportable && req.external === true)
      throw new KeyportError(
        'InvalidArgument',
        'req.exportable: imported material is unwrapped non-extractable; an external key cannot be exportable',
      );
    return { ...req, exportable };
  } catch (e) {
    throw e instanceof KeyportError ? e.withDetails({ provider: p.name }) : e;
  }
}

/**
 * A create a provider instance started and has not answered, by key name. Core repeats a create
 * whose answer was lost — the attempt's deadline fired while the token generated the key (the
 * generation goes on: a PKCS#11 call cannot be stopped, and this call finishes the key after
 * core dropped it), or a step after the generation failed — and the repeat finds what the first
 * attempt made. `marker` (random, written into the key's metadata as `creation`) recognises the
 * finished key; `objects` are the objects the attempt made and has not removed, by handle (a
 * half-made key whose clean-up failed has no metadata to carry the marker, and PKCS#11 gives a
 * secret key no free attribute: CKA_LABEL is the name, CKA_ID the version). Another provider
 * instance or process knows neither: a key it made stays AlreadyExists.
 */
interface SentCreate {
  readonly marker: string;
  /** The request it was for: a create of the name with another request is not its repeat. */
  readonly request: string;
  readonly objects: Handle[];
}
const sentCreates = new WeakMap<KeyAccess, Map<string, SentCreate>>();
/** Records of creates whose answer was lost and never repeated (their callers gave up) are dropped oldest first past this. */
const MAX_SENT_CREATES = 10_000;

/** This provider instance's record (another instance is another creator, as another process is). */
function sentBy(p: KeyAccess): Map<string, SentCreate> {
  const sent = sentCreates.get(p) ?? new Map<string, SentCreate>();
  sentCreates.set(p, sent);
  return sent;
}

function requestOf(req: Pkcs11CreateKeyRequest, usage: KeyUsage): string {
  const labels = Object.entries(req.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    req.spec,
    usage,
    req.external === true,
    req.exportable === true,
    labels,
    req.description ?? null,
  ]);
}

/** Whether the key has all its first objects: the import pair of a key waiting for material, or version 1. */
function whole(key: ResolvedKey): boolean {
  if (key.meta.pendingImport === true)
    return key.importKey?.privateKey !== undefined && key.importKey.publicKey !== undefined;
  const first = key.versions.get(1);
  if (first === undefined || key.meta.versions['1'] === undefined) return false;
  return first.secret !== undefined || (first.privateKey !== undefined && first.publicKey !== undefined);
}

/**
 * What an earlier attempt of this instance's create of `name` left, seen by its repeat (under
 * the same locks): the finished key — its metadata carries this instance's marker — is the
 * answer, when the request is the same. Objects the attempt made and could not remove (a key
 * without its metadata, or with only part of it: never usable through keyport, and not to be
 * answered as a key) are removed when nothing else carries the label, so the repeat makes the
 * key whole again. Anything else is left as it is: then the label is taken (AlreadyExists).
 */
function repeated(
  p: KeyAccess,
  session: Handle,
  name: string,
  uri: string,
  sent: SentCreate,
  request: string,
): KeyInfo | undefined {
  const current = readMetadata(p.p11, session, name, uri);
  if (current !== undefined && current.meta.creation === sent.marker) {
    if (sent.request !== request) return undefined;
    const key = resolveKey(p.p11, session, name, uri);
    if (whole(key)) return keyInfo(p.p11, session, key, uri);
  }
  // Metadata with another marker (or none) is someone else's key, even if a token gave its
  // objects handles this attempt's removed objects once had: never removed.
  if (current !== undefined && current.meta.creation !== sent.marker) return undefined;
  // More objects than the attempt made cannot all be its own: reading on would tell nothing more.
  const labelled = findObjects(p.p11, session, [{ type: P.CKA_LABEL, value: name }], sent.objects.length);
  if (labelled.length > 0 && labelled.every((h) => sent.objects.some((o) => o.equals(h))))
    destroyAll(p.p11, session, labelled);
  return undefined;
}

export async function createKey(
  p: KeyAccess,
  given: Pkcs11CreateKeyRequest,
  signal: AbortSignal | undefined,
): Promise<KeyInfo> {
  const req = createKeyArg(p, given);
  // Core has checked the spec, and the usage when one is given, against the declared capabilities.
  const { spec } = req;
  const usage: KeyUsage = req.usage ?? (USAGES_BY_SPEC[spec][0] as KeyUsage);
  const refuse = (capability: string, why: string) =>
    keyportError('Unsupported', why, { provider: p.name, capability });
  if (p.capabilities.keySpecs[spec]?.includes(usage) !== true)
    throw refuse('keySpecs', `this module does not offer ${spec} for ${usage} (choose a usage)`);
  if (req.rotation?.periodDays !== undefined || req.rotation?.nextRotationAt !== undefined)
    throw refuse('autoRotation', 'PKCS#11 tokens do not rotate keys on a schedule');
  if (req.external === true && (spec !== 'AES_256' || p.capabilities.import.length === 0))
    throw refuse('import', 'only AES_256 keys can be imported');
  const name = nameOf(p, req.name);
  const uri = p.uriFor(name);
  // Checked before anything is written: the metadata must stay readable (MAX_METADATA_BYTES)
  // with room for the versions rotation records.
  const descriptive = Buffer.byteLength(
    JSON.stringify({ labels: req.labels ?? {}, description: req.description ?? '' }),
    'utf8',
  );
  if (descriptive > MAX_DESCRIPTIVE_BYTES) {
    throw new KeyportError(
      'InvalidArgument',
      `req.labels and req.description take ${descriptive} bytes as JSON; this provider keeps at most ${MAX_DESCRIPTIVE_BYTES} per key`,
      { provider: p.name, keyUri: uri, retryable: false },
    );
  }
  const request = requestOf(req, usage);
  const mine = sentBy(p);
  // The record this call answers from, or made.
  let answering: SentCreate | undefined;
  const info = await p.exclusive(name, signal, () =>
    p.pool.run(signal, async (session) => {
      const earlier = mine.get(name);
      if (earlier !== undefined) {
        const found = repeated(p, session, name, uri, earlier, request);
        answering = earlier;
        if (found !== undefined) return found;
      }
      // Under the token's lock: no writer on this host can take the label between here and the write.
      if (labelInUse(p.p11, session, name)) {
        throw new KeyportError('AlreadyExists', 'an object with this label already exists on the token', {
          provider: p.name,
          keyUri: uri,
          retryable: false,
        });
      }
      // Recorded before the generation: an answer lost after it leaves a key only this record names.
      const sent: SentCreate = { marker: randomBytes(16).toString('hex'), request, objects: [] };
      if (mine.size >= MAX_SENT_CREATES) mine.delete(mine.keys().next().value as string);
      mine.set(name, sent);
      answering = sent;
      // The new key is read inside the write: a write queued behind it may start right after.
      return oneTokenWriteAtATime(p.p11, async () => {
        const now = new Date().toISOString();
        const made =
          req.external === true
            ? await createImportKey(p.p11, session, name)
            : await generateVersion(p.p11, session, {
                label: name,
                id: versionId(1),
                spec,
                usage,
                ...(req.exportable === true ? { exportable: true } : {}),
              });
        const ours: Array<Handle | undefined> = [made.secret, made.privateKey, made.publicKey];
        for (const h of ours) if (h !== undefined) sent.objects.push(h);
        let written: ReturnType<typeof writeMetadata>;
        try {
          // A writer the lock does not reach (another host) may have taken the label meanwhile:
          // checked before the metadata is written and again after it, since neither write sees
          // the other's. Of two such writers, the later one to write sees the other's objects.
          if (othersWithLabel(p.p11, session, name, ours)) throw raced(p, uri);
          written = writeMetadata(p.p11, session, name, {
            spec,
            usage,
            labels: { ...(req.labels ?? {}) },
            ...(req.description !== undefined ? { description: req.description } : {}),
            createdAt: now,
            origin: req.external === true ? 'external' : 'provider',
            ...(req.external === true ? { pendingImport: true } : {}),
            ...(req.exportable === true ? { exportable: true } : {}),
            creation: sent.marker,
            versions: req.external === true ? {} : { '1': { createdAt: now } },
          });
          ours.push(written.handle);
          sent.objects.push(written.handle);
          if (othersWithLabel(p.p11, session, name, ours)) throw raced(p, uri);
        } catch (e) {
          // A clean-up that fails too leaves the record (and the objects in it) to the repeat.
          destroyAll(p.p11, session, ours);
          if (mine.get(name) === sent) mine.delete(name);
          throw e;
        }
        // Described from the objects this call made, not looked up again: an unlocked writer's
        // objects appearing now are that writer's to remove (its own checks see ours).
        const key: ResolvedKey = {
          name,
          meta: written.meta,
          metaHandle: written.handle,
          versions: req.external === true ? new Map() : new Map([[1, made]]),
          ...(req.external === true ? { importKey: made } : {}),
        };
        return keyInfo(p.p11, session, key, uri);
      });
    }),
  );
  // The record is dropped once the answer reaches the caller: when the attempt's signal has
  // fired by now (the deadline may fire while the token generates, or while the lock is
  // released), core has dropped this answer and a repeat may follow; it is kept for it. Decided
  // here, after the lock's release and before the next create of the name in this instance
  // looks at the record (it waits for the lock): from here to core, no timer runs.
  if (signal?.aborted !== true && answering !== undefined && mine.get(name) === answering) mine.delete(name);
  return info;
}

/** Another writer, which keyport's lock does not reach, created the same label at the same moment. */
function raced(p: KeyAccess, uri: string): KeyportError {
  return new KeyportError(
    'AlreadyExists',
    "another writer not sharing keyport's lock (e.g. on another host) created an object with this label at the same moment; this call's objects were removed",
    { provider: p.name, keyUri: uri, retryable: false },
  );
}

export function describeKey(p: KeyAccess, ref: KeyRef, signal: AbortSignal | undefined): Promise<KeyInfo> {
  return p.withKey(
    ref,
    signal,
    async (session, key, target) => keyInfo(p.p11, session, key, target.uri),
    true,
  );
}

/**
 * Every keyport key on the token, described. A key keyport cannot read as one key — objects of two
 * unlocked writers, or more objects under its label than keyport makes (key-store.ts,
 * `tooManyObjects`) — is listed as unmodeled, with the reason: anyone with the PIN can make any
 * label so, and the listing of every other key goes on.
 */
export async function* listKeys(
  p: KeyAccess,
  signal: AbortSignal | undefined,
): AsyncIterable<KeyInfo | UnmodeledKey> {
  const names = await p.pool.run(signal, (session) => listKeyNames(p.p11, session, signal));
  for (const name of names) {
    checkSignal(signal);
    const uri = p.uriFor(name);
    const info = await p.pool.run(signal, (session) => {
      try {
        return keyInfo(p.p11, session, resolveKey(p.p11, session, name, uri), uri);
      } catch (e) {
        // Deleted between the listing and now: not listed.
        if (e instanceof KeyportError && e.code === 'NotFound') return undefined;
        if (e instanceof KeyportError && e.code === 'KeyStateConflict') return { uri, unmodeled: e.message };
        throw e;
      }
    });
    if (info !== undefined) yield info;
  }
}

const ignore = (): void => undefined;

/** Runs a writer under the key's lock on a freshly resolved key, and returns the new KeyInfo. */
function mutate(
  p: KeyAccess,
  ref: KeyRef,
  signal: AbortSignal | undefined,
  fn: (session: Handle, key: ResolvedKey) => Promise<void> | void,
): Promise<KeyInfo> {
  const target = p.target(ref);
  return p.exclusive(target.name, signal, () =>
    p.withKey(
      { uri: target.uri },
      signal,
      async (session, key) => {
        await fn(session, key);
        // A token write (another call's, queued behind one `fn` made) may be running now: the
        // key is read after it, with no await between the check and the read.
        for (let w = tokenWriteRunning(p.p11); w !== undefined; w = tokenWriteRunning(p.p11))
          await w.then(ignore, ignore);
        return keyInfo(p.p11, session, resolveKey(p.p11, session, target.name, target.uri), target.uri);
      },
      true,
    ),
  );
}

function setUsage(p11: Pkcs11, session: Handle, key: ResolvedKey, enabled: boolean): void {
  for (const version of key.versions.values()) {
    const pairs: Array<[Handle | undefined, number]> = [
      [version.secret, P.CKO_SECRET_KEY],
      [version.privateKey, P.CKO_PRIVATE_KEY],
      [version.publicKey, P.CKO_PUBLIC_KEY],
    ];
    for (const [handle, cls] of pairs) {
      if (handle !== undefined)
        p11.C_SetAttributeValue(session, handle, usageAttributes(key.meta.usage, cls, enabled));
    }
  }
}

function notPendingImport(p: KeyAccess, key: ResolvedKey, uri: string): void {
  if (key.meta.pendingImport === true) {
    throw new KeyportError('KeyStateConflict', 'the key is waiting for imported material', {
      provider: p.name,
      keyUri: uri,
      retryable: false,
    });
  }
}

export function rotateKey(p: KeyAccess, ref: KeyRef, signal: AbortSignal | undefined): Promise<KeyInfo> {
  const uri = p.target(ref).uri;
  return mutate(p, ref, signal, async (session, key) => {
    notPendingImport(p, key, uri);
    // One more version would make a key no call can read (key-store.ts, MAX_KEY_VERSIONS).
    if (key.versions.size >= MAX_KEY_VERSIONS) {
      throw new KeyportError(
        'KeyStateConflict',
        `the key has ${key.versions.size} versions on the token, the most keyport keeps for one key: destroy old versions (destroyKeyVersion) before rotating`,
        { provider: p.name, keyUri: uri, retryable: false },
      );
    }
    const enabled = keyState(p.p11, session, key) !== 'disabled';
    const known = [...Object.keys(key.meta.versions).map(Number), ...key.versions.keys()];
    const next = Math.max(0, ...known) + 1;
    checkSignal(signal);
    await oneTokenWriteAtATime(p.p11, async () => {
      const made = await generateVersion(p.p11, session, {
        label: key.name,
        id: versionId(next),
        spec: key.meta.spec,
        usage: key.meta.usage,
        ...(key.meta.exportable === true ? { exportable: true } : {}),
      });
      try {
        // A disabled key stays disabled across rotation.
        if (!enabled) setUsage(p.p11, session, { ...key, versions: new Map([[next, made]]) }, false);
        writeMetadata(
          p.p11,
          session,
          key.name,
          {
            ...key.meta,
            versions: { ...key.meta.versions, [String(next)]: { createdAt: new Date().toISOString() } },
          },
          { meta: key.meta, handle: key.metaHandle, stale: key.staleMeta },
        );
      } catch (e) {
        destroyAll(p.p11, session, [made.secret, made.privateKey, made.publicKey]);
        throw e;
      }
    });
  });
}

/** Disabling clears the usage attributes (CKA_ENCRYPT/DECRYPT/SIGN/VERIFY) of every version: the token enforces it. */
export function setEnabled(
  p: KeyAccess,
  ref: KeyRef,
  enabled: boolean,
  signal: AbortSignal | undefined,
): Promise<KeyInfo> {
  const uri = p.target(ref).uri;
  return mutate(p, ref, signal, (session, key) => {
    notPendingImport(p, key, uri);
    setUsage(p.p11, session, key, enabled);
  });
}

export function destroyKeyVersion(
  p: KeyAccess,
  ref: KeyRef,
  signal: AbortSignal | undefined,
): Promise<KeyInfo> {
  const target = p.target(ref);
  if (target.version === undefined) {
    throw new KeyportError('InvalidArgument', 'destroyKeyVersion needs a version', {
      provider: p.name,
      keyUri: ref.uri,
    });
  }
  const version = target.version;
  return mutate(p, { uri: target.uri }, signal, (session, key) => {
    const meta = key.meta.versions[String(version)];
    const objects = key.versions.get(version);
    // Objects the metadata does not record are not a version of this key (see `isLiveVersion`):
    // not destroyed, and not recorded as a destroyed version, here.
    if (meta === undefined) {
      throw new KeyportError('NotFound', `the key has no version ${version}`, {
        provider: p.name,
        keyUri: target.uri,
        retryable: false,
      });
    }
    if (objects === undefined || meta?.destroyed === true) {
      throw new KeyportError('KeyStateConflict', `version ${version} is already destroyed`, {
        provider: p.name,
        keyUri: target.uri,
        retryable: false,
      });
    }
    if (liveVersionCount(key) === 1) {
      throw new KeyportError('KeyStateConflict', 'the last live version cannot be destroyed', {
        provider: p.name,
        keyUri: target.uri,
        retryable: false,
      });
    }
    // Record first: a crash between the two steps leaves a version marked destroyed but present
    // (refused by keyport), never a missing version that still looks alive.
    writeMetadata(
      p.p11,
      session,
      key.name,
      {
        ...key.meta,
        versions: {
          ...key.meta.versions,
          [String(version)]: { createdAt: meta?.createdAt ?? new Date().toISOString(), destroyed: true },
        },
      },
      { meta: key.meta, handle: key.metaHandle, stale: key.staleMeta },
    );
    destroyAll(p.p11, session, [objects.secret, objects.privateKey, objects.publicKey]);
  });
}
