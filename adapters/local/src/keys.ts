/** Validation of createKey requests and rotation policies, and the stored form of a new key. */
import {
  type CreateKeyRequest,
  checkDate,
  KEY_SPECS,
  type KeySpec,
  keyportError,
  type RotationPolicy,
  toEncryptionContext,
  USAGES_BY_SPEC,
} from '@keyport/core';
import { ROTATION_PERIOD_DAYS } from './capabilities.js';
import { labelled, localError, PROVIDER_NAME } from './errors.js';
import type { ResolvedRef } from './key-access.js';
import { IMPORTABLE_SPECS } from './key-material.js';
import { addDays } from './key-state.js';
import type { StoredKey } from './model.js';

const MAX_LABELS = 64;
const MAX_TEXT = 4096;

/** Labels follow the context rules (plain object or Map of strings, prototype-free) plus size limits. */
function checkLabels(labels: unknown, uri: string): Record<string, string> {
  if (labels === undefined) return {};
  const checked = labelled(uri, () => toEncryptionContext(labels, 'labels'));
  const entries = Object.entries(checked);
  if (entries.length > MAX_LABELS) throw localError('InvalidArgument', `labels: at most ${MAX_LABELS}`, uri);
  for (const [k, v] of entries) {
    if (k.length > 128 || v.length > 256) {
      throw localError('InvalidArgument', 'labels: keys are 1-128 characters, values at most 256', uri);
    }
  }
  return { ...checked };
}

/**
 * The rotation fields a policy sets: none when `periodDays` is absent (auto-rotation off). A
 * `nextRotationAt` without `periodDays` is refused, not dropped: the caller asked for a rotation
 * date and would have got rotation turned off.
 */
export function rotationSchedule(
  policy: RotationPolicy,
  origin: StoredKey['origin'],
  now: Date,
  uri: string,
): Pick<StoredKey, 'rotationPeriodDays' | 'nextRotationAt'> {
  if (policy.periodDays === undefined) {
    if (policy.nextRotationAt !== undefined)
      throw localError(
        'InvalidArgument',
        'policy.nextRotationAt needs policy.periodDays (without a period, automatic rotation is off)',
        uri,
      );
    return {};
  }
  if (origin === 'external') {
    throw keyportError('Unsupported', 'keys with imported material cannot rotate automatically', {
      provider: PROVIDER_NAME,
      keyUri: uri,
      capability: 'autoRotation',
    });
  }
  const days = policy.periodDays;
  if (!Number.isInteger(days) || days < ROTATION_PERIOD_DAYS.min || days > ROTATION_PERIOD_DAYS.max) {
    throw localError(
      'InvalidArgument',
      `rotation period must be ${ROTATION_PERIOD_DAYS.min}-${ROTATION_PERIOD_DAYS.max} whole days`,
      uri,
    );
  }
  const next =
    policy.nextRotationAt === undefined
      ? addDays(now, days)
      : labelled(uri, () => checkDate(policy.nextRotationAt, 'policy.nextRotationAt'));
  if (next <= now) throw localError('InvalidArgument', 'policy.nextRotationAt must be in the future', uri);
  return { rotationPeriodDays: days, nextRotationAt: next.toISOString() };
}

/** The stored form of a new key, without material (the caller adds the first version). */
export function newKey(req: CreateKeyRequest, ref: ResolvedRef, now: Date): StoredKey {
  const uri = ref.uri;
  if (!KEY_SPECS.includes(req.spec as KeySpec)) throw localError('InvalidArgument', 'unknown key spec', uri);
  const usages = USAGES_BY_SPEC[req.spec];
  const usage = req.usage ?? usages[0];
  if (usage === undefined || !usages.includes(usage)) {
    throw localError('InvalidArgument', `a ${req.spec} key cannot have usage ${String(req.usage)}`, uri);
  }
  if (
    req.description !== undefined &&
    (typeof req.description !== 'string' || req.description.length > MAX_TEXT)
  ) {
    throw localError(
      'InvalidArgument',
      `description must be a string of at most ${MAX_TEXT} characters`,
      uri,
    );
  }
  const external = req.external === true;
  if (external && !IMPORTABLE_SPECS.includes(req.spec)) {
    throw keyportError(
      'Unsupported',
      `${req.spec} material cannot be imported (${IMPORTABLE_SPECS.join(', ')} can)`,
      {
        provider: PROVIDER_NAME,
        keyUri: uri,
        capability: 'import',
      },
    );
  }
  const schedule =
    req.rotation === undefined
      ? {}
      : rotationSchedule(req.rotation, external ? 'external' : 'provider', now, uri);
  return {
    name: ref.name,
    spec: req.spec,
    usage,
    state: external ? 'pending_import' : 'enabled',
    origin: external ? 'external' : 'provider',
    createdAt: now.toISOString(),
    labels: checkLabels(req.labels, uri),
    ...(req.description !== undefined ? { description: req.description } : {}),
    primaryVersion: 0,
    versions: external ? [{ version: 1, state: 'pending_import', createdAt: now.toISOString() }] : [],
    ...schedule,
    grants: [],
  };
}
