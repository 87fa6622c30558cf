/** Creating, describing, listing, rotating, enabling/disabling keys and destroying versions. */
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
  USAGES_BY_SPEC,
} from '@keyport/core';
import { createImportKey } from './import.js';
import type { KeyAccess } from './key-access.js';
import { keyInfo, keyState } from './key-info.js';
import {
  labelInUse,
  listKeyNames,
  othersWithLabel,
  type ResolvedKey,
  resolveKey,
  writeMetadata,
} from './key-store.js';
import {
  destroyAll,
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
  if (name === '' || name.length > 128 || [...name].some((c) => c.charCodeAt(0) < 0x20)) {
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
  return p.exclusive(name, signal, () =>
    p.pool.run(signal, async (session) => {
      // Under the token's lock: no writer on this host can take the label between here and the write.
      if (labelInUse(p.p11, session, name)) {
        throw new KeyportError('AlreadyExists', 'an object with this label already exists on the token', {
          provider: p.name,
          keyUri: uri,
          retryable: false,
        });
      }
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
            versions: req.external === true ? {} : { '1': { createdAt: now } },
          });
          ours.push(written.handle);
          if (othersWithLabel(p.p11, session, name, ours)) throw raced(p, uri);
        } catch (e) {
          destroyAll(p.p11, session, ours);
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

export async function* listKeys(p: KeyAccess, signal: AbortSignal | undefined): AsyncIterable<KeyInfo> {
  const names = await p.pool.run(signal, (session) => listKeyNames(p.p11, session));
  for (const name of names) {
    checkSignal(signal);
    const uri = p.uriFor(name);
    const info = await p.pool.run(signal, (session) => {
      try {
        return keyInfo(p.p11, session, resolveKey(p.p11, session, name, uri), uri);
      } catch (e) {
        // Deleted between the listing and now: not listed.
        if (e instanceof KeyportError && e.code === 'NotFound') return undefined;
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
    if (meta === undefined && objects === undefined) {
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
    if (key.versions.size === 1) {
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
