/** KeyInfo from what the token holds: metadata, live version objects, and the usage attributes. */
import type { KeyInfo, KeyState, KeyVersionInfo } from '@keyport/core';
import type { ResolvedKey, VersionObjects } from './key-store.js';
import { primaryVersion } from './key-store.js';
import { type Handle, P, type Pkcs11, readBool } from './p11.js';

/** The object and attribute that say whether a key of this usage may currently be used. */
export function useAttribute(
  usage: ResolvedKey['meta']['usage'],
  objects: VersionObjects,
): { handle: Handle; type: number } | undefined {
  switch (usage) {
    case 'encrypt_decrypt':
      if (objects.secret !== undefined) return { handle: objects.secret, type: P.CKA_ENCRYPT };
      return objects.privateKey === undefined
        ? undefined
        : { handle: objects.privateKey, type: P.CKA_DECRYPT };
    case 'sign_verify':
      return objects.privateKey === undefined ? undefined : { handle: objects.privateKey, type: P.CKA_SIGN };
    case 'mac':
      return objects.secret === undefined ? undefined : { handle: objects.secret, type: P.CKA_SIGN };
  }
}

/** enabled / disabled as the token enforces it (the usage attribute of the primary version). */
export function keyState(p11: Pkcs11, session: Handle, key: ResolvedKey): KeyState {
  if (key.meta.pendingImport === true) return 'pending_import';
  const primary = primaryVersion(key);
  const objects = primary === undefined ? undefined : key.versions.get(primary);
  if (objects === undefined) return 'destroyed';
  const attr = useAttribute(key.meta.usage, objects);
  if (attr === undefined) return 'destroyed';
  const [value] = p11.C_GetAttributeValue(session, attr.handle, [{ type: attr.type }]);
  return value !== undefined && readBool(value.value) ? 'enabled' : 'disabled';
}

export function keyInfo(p11: Pkcs11, session: Handle, key: ResolvedKey, uri: string): KeyInfo {
  const state = keyState(p11, session, key);
  const primary = primaryVersion(key);
  const versions: KeyVersionInfo[] = Object.entries(key.meta.versions)
    .map(([version, v]) => ({
      version,
      state:
        v.destroyed === true || !key.versions.has(Number(version))
          ? ('destroyed' as const)
          : versionState(state),
      createdAt: new Date(v.createdAt),
    }))
    .sort((a, b) => Number(a.version) - Number(b.version));
  return {
    uri,
    spec: key.meta.spec,
    usage: key.meta.usage,
    state,
    createdAt: new Date(key.meta.createdAt),
    ...(primary !== undefined && state !== 'pending_import' ? { primaryVersion: String(primary) } : {}),
    versions,
    labels: { ...key.meta.labels },
    ...(key.meta.description !== undefined ? { description: key.meta.description } : {}),
    origin: key.meta.origin,
  };
}

function versionState(keyState: KeyState): KeyVersionInfo['state'] {
  switch (keyState) {
    case 'disabled':
      return 'disabled';
    case 'pending_import':
      return 'pending_import';
    case 'destroyed':
      return 'destroyed';
    default:
      return 'enabled';
  }
}
