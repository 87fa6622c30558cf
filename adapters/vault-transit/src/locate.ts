/** Key URI -> where the key lives on this server, with transit API paths. */
import { KeyportError, type KeyRef, parseKeyUri } from '@keyport/core';
import type { KeyLocation } from './key-types.js';

export interface ResolvedKey extends KeyLocation {
  readonly uri: string;
  /** Version pinned by the ref (or the URI's `?version=`). */
  readonly version: string | undefined;
}

export function resolveKey(ref: KeyRef, address: string): ResolvedKey {
  const parsed = parseKeyUri(ref.uri);
  if (parsed.scheme !== 'hcvault') {
    throw new KeyportError('InvalidArgument', `not an hcvault:// key URI (${parsed.scheme})`, {
      keyUri: ref.uri,
    });
  }
  if (parsed.address !== address) {
    throw new KeyportError(
      'InvalidArgument',
      `key URI names server ${parsed.address} but this provider talks to ${address}`,
      { keyUri: ref.uri },
    );
  }
  const version = ref.version ?? parsed.version;
  return { uri: ref.uri, address, mount: parsed.mount, name: parsed.name, version };
}

/** `<mount>/<op>/<name>` */
export function opPath(key: KeyLocation, op: string): string {
  return `${key.mount}/${op}/${key.name}`;
}

export function keyPath(key: KeyLocation, suffix = ''): string {
  return `${key.mount}/keys/${key.name}${suffix}`;
}
