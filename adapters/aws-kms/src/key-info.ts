/** KMS KeyMetadata (+ tags and rotation status) -> keyport KeyInfo, and key URIs for answers. */
import type { KeyMetadata, Tag } from '@aws-sdk/client-kms';
import {
  type AwsKmsKeyUri,
  formatKeyUri,
  type KeyInfo,
  KeyportError,
  type RotationPolicy,
  UnsupportedError,
} from '@keyport/core';
import { PROVIDER_NAME } from './errors.js';
import { KEYPORT_KEY_STATE, keyportKeySpec, keyportKeyUsage } from './specs.js';

/**
 * The canonical URI of a key: its key ARN, plus the `?endpoint=` the caller reached it through
 * (the ARN already carries the region).
 */
export function keyUriFor(arn: string, via: AwsKmsKeyUri | undefined): string {
  return formatKeyUri({
    scheme: 'aws-kms',
    keyId: arn,
    ...(via?.endpoint !== undefined ? { endpoint: via.endpoint } : {}),
  });
}

export function labelsFromTags(tags: readonly Tag[] | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const t of tags ?? []) {
    if (t.TagKey !== undefined) labels[t.TagKey] = t.TagValue ?? '';
  }
  return labels;
}

export function tagsFromLabels(labels: Readonly<Record<string, string>> | undefined): Tag[] | undefined {
  if (labels === undefined) return undefined;
  const tags = Object.entries(labels).map(([TagKey, TagValue]) => ({ TagKey, TagValue }));
  return tags.length === 0 ? undefined : tags;
}

export interface KeyInfoExtras {
  readonly labels?: Readonly<Record<string, string>>;
  readonly rotation?: RotationPolicy;
  readonly via?: AwsKmsKeyUri;
}

export function toKeyInfo(meta: KeyMetadata | undefined, extras: KeyInfoExtras = {}): KeyInfo {
  if (meta?.Arn === undefined) {
    throw new KeyportError('Internal', 'AWS KMS answered without key metadata', { provider: PROVIDER_NAME });
  }
  const uri = keyUriFor(meta.Arn, extras.via);
  const spec = keyportKeySpec(meta.KeySpec);
  const usage = keyportKeyUsage(meta.KeyUsage);
  if (spec === undefined || usage === undefined) {
    throw new UnsupportedError('keySpec', `keyport does not model AWS key spec ${String(meta.KeySpec)}`, {
      provider: PROVIDER_NAME,
      keyUri: uri,
    });
  }
  const state = meta.KeyState !== undefined ? KEYPORT_KEY_STATE[meta.KeyState] : undefined;
  return {
    uri,
    spec,
    usage,
    state: state ?? (meta.Enabled === true ? 'enabled' : 'disabled'),
    labels: extras.labels ?? {},
    origin: meta.Origin === 'EXTERNAL' ? 'external' : 'provider',
    ...(meta.CreationDate !== undefined ? { createdAt: meta.CreationDate } : {}),
    ...(meta.DeletionDate !== undefined ? { deletionDate: meta.DeletionDate } : {}),
    ...(meta.Description !== undefined && meta.Description !== '' ? { description: meta.Description } : {}),
    ...(extras.rotation !== undefined ? { rotation: extras.rotation } : {}),
  };
}
