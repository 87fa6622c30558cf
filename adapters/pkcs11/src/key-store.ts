/**
 * Finding a key in the token: its metadata object and its version objects (see objects.ts for
 * the layout). Metadata objects are never modified in place (SoftHSM2 refuses C_SetAttributeValue
 * on a data object's CKA_VALUE, CKR_ATTRIBUTE_READ_ONLY): a new object with a higher `seq` is
 * created, then the old one destroyed; a reader that finds two keeps the higher and removes the
 * other. Writers in ONE process are serialised per key by the provider; two processes rotating the
 * same key at the same moment are not (README: limits).
 */
import { KEY_SPECS, KEY_USAGES, KeyportError, type KeySpec, type KeyUsage } from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';
import { APPLICATION, findObjects, IMPORT_KEY_ID, versionOfId } from './objects.js';
import { type Handle, P, type Pkcs11 } from './p11.js';

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
  readonly versions: Readonly<Record<string, VersionMeta>>;
}

export interface VersionObjects {
  secret?: Handle;
  privateKey?: Handle;
  publicKey?: Handle;
}

export interface ResolvedKey {
  readonly name: string;
  readonly meta: KeyMetadata;
  readonly metaHandle: Handle;
  /** Live version objects by version number (destroyed versions are absent). */
  readonly versions: ReadonlyMap<number, VersionObjects>;
  /** The import wrapping pair of a key waiting for material. */
  readonly importKey?: VersionObjects;
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
      m.versions === null
    ) {
      return undefined;
    }
    return m as KeyMetadata;
  } catch {
    return undefined;
  }
}

function metadataTemplate(name: string) {
  return [
    { type: P.CKA_CLASS, value: P.CKO_DATA },
    { type: P.CKA_LABEL, value: name },
    { type: P.CKA_APPLICATION, value: APPLICATION },
  ];
}

/** The current metadata of `name`, or undefined when no keyport key has that label. */
export function readMetadata(
  p11: Pkcs11,
  session: Handle,
  name: string,
): { meta: KeyMetadata; handle: Handle } | undefined {
  const found: Array<{ meta: KeyMetadata; handle: Handle }> = [];
  for (const handle of findObjects(p11, session, metadataTemplate(name))) {
    const [attr] = p11.C_GetAttributeValue(session, handle, [{ type: P.CKA_VALUE }]);
    const meta = attr === undefined ? undefined : parseMetadata(attr.value);
    if (meta !== undefined) found.push({ meta, handle });
  }
  found.sort((a, b) => b.meta.seq - a.meta.seq);
  // Leftovers of an interrupted write: the newest wins.
  for (const stale of found.slice(1)) p11.C_DestroyObject(session, stale.handle);
  return found[0];
}

/** Writes `meta` as the next generation (seq + 1) and removes the previous object. */
export function writeMetadata(
  p11: Pkcs11,
  session: Handle,
  name: string,
  meta: Omit<KeyMetadata, 'seq' | 'format'>,
  previous?: { meta: KeyMetadata; handle: Handle },
): { meta: KeyMetadata; handle: Handle } {
  const next: KeyMetadata = { ...meta, format: 1, seq: (previous?.meta.seq ?? 0) + 1 };
  const handle = p11.C_CreateObject(session, [
    ...metadataTemplate(name),
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_MODIFIABLE, value: true },
    { type: P.CKA_VALUE, value: Buffer.from(JSON.stringify(next), 'utf8') },
  ]);
  if (previous !== undefined) p11.C_DestroyObject(session, previous.handle);
  return { meta: next, handle };
}

/** Every keyport key name in the token (labels of the metadata objects). */
export function listKeyNames(p11: Pkcs11, session: Handle): string[] {
  const names = new Set<string>();
  const template = [
    { type: P.CKA_CLASS, value: P.CKO_DATA },
    { type: P.CKA_APPLICATION, value: APPLICATION },
  ];
  for (const handle of findObjects(p11, session, template)) {
    const [label] = p11.C_GetAttributeValue(session, handle, [{ type: P.CKA_LABEL }]);
    if (label !== undefined) names.add(label.value.toString('utf8'));
  }
  return [...names].sort();
}

/** Whether any object (keyport's or not) already uses `name` as its label. */
export function labelInUse(p11: Pkcs11, session: Handle, name: string): boolean {
  return findObjects(p11, session, [{ type: P.CKA_LABEL, value: name }]).length > 0;
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
  const current = readMetadata(p11, session, name);
  if (current === undefined) throw notFound(keyUri);
  const versions = new Map<number, VersionObjects>();
  let importKey: VersionObjects | undefined;
  const slots: Array<[number, keyof VersionObjects]> = [
    [P.CKO_SECRET_KEY, 'secret'],
    [P.CKO_PRIVATE_KEY, 'privateKey'],
    [P.CKO_PUBLIC_KEY, 'publicKey'],
  ];
  for (const [cls, slot] of slots) {
    for (const handle of findObjects(p11, session, [
      { type: P.CKA_CLASS, value: cls },
      { type: P.CKA_LABEL, value: name },
    ])) {
      const [id] = p11.C_GetAttributeValue(session, handle, [{ type: P.CKA_ID }]);
      if (id === undefined) continue;
      if (id.value.equals(IMPORT_KEY_ID)) {
        importKey ??= {};
        importKey[slot] = handle;
        continue;
      }
      const version = versionOfId(id.value);
      if (version === undefined) continue;
      const objects = versions.get(version) ?? {};
      objects[slot] = handle;
      versions.set(version, objects);
    }
  }
  return {
    name,
    meta: current.meta,
    metaHandle: current.handle,
    versions,
    ...(importKey !== undefined ? { importKey } : {}),
  };
}

/** The primary version: the highest live one. */
export function primaryVersion(key: ResolvedKey): number | undefined {
  let best: number | undefined;
  for (const v of key.versions.keys()) if (best === undefined || v > best) best = v;
  return best;
}
