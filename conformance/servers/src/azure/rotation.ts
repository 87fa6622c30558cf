// Rotate, the rotation policy, and auto-rotation driven by the server clock
// (https://learn.microsoft.com/rest/api/keyvault/keys/rotate-key/rotate-key,
// .../update-key-rotation-policy/update-key-rotation-policy,
// https://learn.microsoft.com/azure/key-vault/keys/how-to-configure-key-rotation).
import { keyBundle, keyId, latestVersion, type VaultContext } from './bundle.js';
import { badParameter } from './errors.js';
import { generateMaterial } from './material.js';
import { type KeyRecord, type LifetimeAction, newVersionId, type RotationPolicy } from './store.js';
import { type Body, MAX_UNIX_SECONDS } from './validate.js';

const DAY = 86_400;

/**
 * ISO 8601 duration to seconds (years as 365 days, months as 30). Each component has at most
 * 9 digits and the total must keep a time computed from now representable (see MAX_UNIX_SECONDS),
 * so no duration is stored that the service could not apply.
 */
export function durationSeconds(value: unknown, field: string): number {
  const m =
    typeof value === 'string' && value.length <= 64
      ? /^P(?:(\d{1,9})Y)?(?:(\d{1,9})M)?(?:(\d{1,9})W)?(?:(\d{1,9})D)?(?:T(?:(\d{1,9})H)?(?:(\d{1,9})M)?(?:(\d{1,9})S)?)?$/.exec(
          value,
        )
      : null;
  if (!m || value === 'P' || /T$/.test(value as string))
    throw badParameter(`${field} must be an ISO 8601 duration.`);
  const [y, mo, w, d, h, mi, s] = m.slice(1).map((x) => Number(x ?? 0)) as number[];
  const total =
    ((y ?? 0) * 365 + (mo ?? 0) * 30 + (w ?? 0) * 7 + (d ?? 0)) * DAY +
    (h ?? 0) * 3600 +
    (mi ?? 0) * 60 +
    (s ?? 0);
  if (total > MAX_DURATION_SECONDS) {
    throw badParameter(`${field} is too long: times it yields must end before 9999-12-31T23:59:59Z.`);
  }
  return total;
}

/** From the Unix epoch to the service's last representable instant: no longer duration can apply. */
const MAX_DURATION_SECONDS = MAX_UNIX_SECONDS;

function policyJson(ctx: VaultContext, r: KeyRecord) {
  const id = `${keyId(ctx, r.name)}/rotationpolicy`;
  const p = r.rotationPolicy;
  if (!p) {
    // A key that never had a policy reports the service default: notify 30 days before expiry.
    return {
      id,
      lifetimeActions: [{ trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Notify' } }],
      attributes: {},
    };
  }
  const attributes: Record<string, unknown> = { created: p.created, updated: p.updated };
  if (p.expiryTime) attributes.expiryTime = p.expiryTime;
  return { id, lifetimeActions: p.lifetimeActions, attributes };
}

export function getRotationPolicy(ctx: VaultContext, name: string) {
  return policyJson(ctx, ctx.store.record(name));
}

function parseAction(raw: unknown): LifetimeAction {
  const a = (raw ?? {}) as { trigger?: Record<string, unknown>; action?: Record<string, unknown> };
  const type = a.action?.type;
  const normalized = typeof type === 'string' ? type.toLowerCase() : '';
  if (normalized !== 'rotate' && normalized !== 'notify') {
    throw badParameter("lifetimeActions[].action.type must be 'Rotate' or 'Notify'.");
  }
  const { timeAfterCreate, timeBeforeExpiry } = a.trigger ?? {};
  if ((timeAfterCreate === undefined) === (timeBeforeExpiry === undefined)) {
    throw badParameter('Each lifetime action needs exactly one of timeAfterCreate and timeBeforeExpiry.');
  }
  const trigger: LifetimeAction['trigger'] = {};
  if (timeAfterCreate !== undefined) {
    if (normalized === 'notify') throw badParameter('A Notify action is triggered by timeBeforeExpiry.');
    if (durationSeconds(timeAfterCreate, 'timeAfterCreate') < 7 * DAY) {
      throw badParameter('timeAfterCreate must be at least 7 days.');
    }
    trigger.timeAfterCreate = timeAfterCreate as string;
  } else {
    if (durationSeconds(timeBeforeExpiry, 'timeBeforeExpiry') < 7 * DAY) {
      throw badParameter('timeBeforeExpiry must be at least 7 days.');
    }
    trigger.timeBeforeExpiry = timeBeforeExpiry as string;
  }
  return { trigger, action: { type: normalized === 'rotate' ? 'Rotate' : 'Notify' } };
}

export function setRotationPolicy(ctx: VaultContext, name: string, body: Body) {
  const r = ctx.store.record(name);
  const rawActions = body.lifetimeActions ?? [];
  if (!Array.isArray(rawActions)) throw badParameter('lifetimeActions must be an array.');
  const actions = rawActions.map(parseAction);
  // The service always keeps a Notify action: without one, it adds the default.
  if (!actions.some((a) => a.action.type === 'Notify')) {
    actions.push({ trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Notify' } });
  }
  for (const type of ['Rotate', 'Notify']) {
    if (actions.filter((a) => a.action.type === type).length > 1) {
      throw badParameter(`At most one ${type} lifetime action is allowed.`);
    }
  }
  const attributes = (body.attributes ?? {}) as Record<string, unknown>;
  const expiryTime = attributes.expiryTime ?? undefined;
  if (expiryTime !== undefined && expiryTime !== null) {
    const seconds = durationSeconds(expiryTime, 'expiryTime');
    if (seconds < 28 * DAY) throw badParameter('expiryTime must be at least 28 days.');
    if (ctx.clock.nowSeconds() + seconds > MAX_UNIX_SECONDS) {
      throw badParameter('expiryTime is too long: key versions would expire after 9999-12-31T23:59:59Z.');
    }
    for (const a of actions) {
      if (a.trigger.timeBeforeExpiry && durationSeconds(a.trigger.timeBeforeExpiry, '') >= seconds) {
        throw badParameter('timeBeforeExpiry must be shorter than expiryTime.');
      }
    }
  }
  const now = ctx.clock.nowSeconds();
  const policy: RotationPolicy = {
    lifetimeActions: actions,
    created: r.rotationPolicy?.created ?? now,
    updated: now,
  };
  if (typeof expiryTime === 'string') policy.expiryTime = expiryTime;
  r.rotationPolicy = policy;
  return policyJson(ctx, r);
}

async function addRotatedVersion(ctx: VaultContext, r: KeyRecord, created: number) {
  const latest = latestVersion(r);
  const m = latest.material;
  const spec = m.family === 'EC' ? { kty: m.kty, crv: m.crv } : { kty: m.kty, key_size: m.bits };
  const material = await generateMaterial(ctx.mode, spec);
  const attributes: { enabled: boolean; created: number; updated: number; exp?: number } = {
    enabled: true,
    created,
    updated: created,
  };
  const expiry = r.rotationPolicy?.expiryTime;
  if (expiry) attributes.exp = created + durationSeconds(expiry, 'expiryTime');
  const version = {
    version: newVersionId(),
    material,
    keyOps: [...latest.keyOps],
    attributes,
    tags: { ...latest.tags },
  };
  r.versions.push(version);
  return version;
}

export async function rotateKey(ctx: VaultContext, name: string) {
  const r = ctx.store.record(name);
  const v = await addRotatedVersion(ctx, r, ctx.clock.nowSeconds());
  return keyBundle(ctx, r, v);
}

/** When the clock passes a Rotate trigger, the service adds the version itself. */
export async function autoRotate(ctx: VaultContext): Promise<void> {
  const now = ctx.clock.nowSeconds();
  for (const r of ctx.store.live.values()) {
    const rotate = r.rotationPolicy?.lifetimeActions.find((a) => a.action.type === 'Rotate');
    if (!rotate) continue;
    // Bounded: a long clock jump rotates once per elapsed period, up to a sane limit.
    for (let i = 0; i < 24; i++) {
      const latest = latestVersion(r);
      let due: number | undefined;
      if (rotate.trigger.timeAfterCreate) {
        due = latest.attributes.created + durationSeconds(rotate.trigger.timeAfterCreate, '');
      } else if (rotate.trigger.timeBeforeExpiry && latest.attributes.exp !== undefined) {
        due = latest.attributes.exp - durationSeconds(rotate.trigger.timeBeforeExpiry, '');
      }
      if (due === undefined || due > now) break;
      await addRotatedVersion(ctx, r, Math.max(due, latest.attributes.created + 1));
    }
  }
}
