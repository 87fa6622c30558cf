/**
 * Grants. AWS grants have no expiry, so keyport writes the expiry into the grant's name
 * (`<name>__keyport-exp-<unix seconds>`) and `sweepExpiredGrants` revokes grants past it. Until a
 * sweep runs, AWS still honours an expired grant: the capability is declared `swept`, not `native`.
 */
import type { GrantConstraints, GrantListEntry } from '@aws-sdk/client-kms';
import {
  checkGrantRequest,
  type Grant,
  type GrantRequest,
  isValidDate,
  type KeyRef,
  needs,
  type ProviderCallOptions,
} from '@keyport/core';
import { answered, nextMarker, pageMarkers } from './errors.js';
import { pageLimit } from './keys.js';
import { answeredKey, type DriverOp, type KmsRpc } from './rpc.js';
import { awsGrantOperations, keyportGrantOperations, unmodeledGrantOperations } from './specs.js';
import { isAlias, keyUriFor } from './uri.js';

const EXPIRY_MARK = '__keyport-exp-';
const EXPIRY_NAME = /^(.*)__keyport-exp-([0-9]{1,12})$/;
/** AWS grant names: 1-256 of these characters. */
const GRANT_NAME = /^[a-zA-Z0-9:/_-]+$/;
const DEFAULT_NAME = 'keyport-grant';

/** The AWS grant name carrying keyport's name and expiry. */
export function encodeGrantName(name: string | undefined, expiresAt: Date | undefined): string | undefined {
  if (name !== undefined) {
    needs(GRANT_NAME.test(name), 'AWS grant names are letters, digits and ":", "/", "_", "-"');
    needs(
      !EXPIRY_NAME.test(name),
      `grant names must not contain "${EXPIRY_MARK}<digits>" (keyport's expiry mark)`,
    );
  }
  if (expiresAt === undefined) return name;
  const seconds = Math.ceil(expiresAt.getTime() / 1000);
  needs(Number.isFinite(seconds) && seconds > 0, 'grant expiry must be a valid date');
  const encoded = `${name ?? DEFAULT_NAME}${EXPIRY_MARK}${seconds}`;
  needs(encoded.length <= 256, 'grant name too long for AWS (256 characters with the expiry mark)');
  return encoded;
}

export function decodeGrantName(awsName: string | undefined): { name?: string; expiresAt?: Date } {
  if (awsName === undefined || awsName === '') return {};
  const m = EXPIRY_NAME.exec(awsName);
  if (!m) return { name: awsName };
  return { name: m[1] as string, expiresAt: new Date(Number(m[2]) * 1000) };
}

function constraintsFor(req: GrantRequest): GrantConstraints | undefined {
  const c = req.constraints;
  if (c === undefined) return undefined;
  needs(
    c.contextEquals === undefined || c.contextSubset === undefined,
    'AWS grants take contextEquals or contextSubset, not both',
  );
  if (c.contextEquals !== undefined) return { EncryptionContextEquals: { ...c.contextEquals } };
  if (c.contextSubset !== undefined) return { EncryptionContextSubset: { ...c.contextSubset } };
  return undefined;
}

export const createGrant: DriverOp<'createGrant'> = async (rpc, ref, given, o) => {
  // strict: a field meant for another provider (or misspelt) is refused, never dropped
  const req = checkGrantRequest(given);
  needs(req.operations.length > 0, 'a grant needs at least one operation');
  needs(req.expiresAt === undefined || req.expiresAt.getTime() > Date.now(), 'grant expiry is in the past');
  const key = await rpc.resolve(ref);
  const KeyId = await rpc.keyIdOrArn(key, o.signal);
  const input = {
    KeyId,
    GranteePrincipal: req.grantee,
    Operations: awsGrantOperations(req.operations),
    Constraints: constraintsFor(req),
    Name: encodeGrantName(req.name, req.expiresAt),
  };
  const out = await rpc.send(key, 'CreateGrant', input, o.signal);
  return {
    id: answered(out.GrantId, 'a grant id'),
    // The key the grant is on: an alias may name another key by the time the grant is revoked.
    keyUri: isAlias(key.keyId) ? keyUriFor(KeyId, key.parsed) : key.uri,
    grantee: req.grantee,
    operations: [...req.operations],
    ...(req.constraints !== undefined ? { constraints: req.constraints } : {}),
    ...(req.expiresAt !== undefined ? { expiresAt: req.expiresAt } : {}),
    ...(req.name !== undefined ? { name: req.name } : {}),
    ...(out.GrantToken !== undefined ? { token: out.GrantToken } : {}),
  };
};

function toGrant(entry: GrantListEntry, keyUri: string): Grant {
  const c = entry.Constraints;
  const constraints = {
    ...(c?.EncryptionContextEquals !== undefined ? { contextEquals: c.EncryptionContextEquals } : {}),
    ...(c?.EncryptionContextSubset !== undefined ? { contextSubset: c.EncryptionContextSubset } : {}),
  };
  const { name, expiresAt } = decodeGrantName(entry.Name);
  const unmodeled = unmodeledGrantOperations(entry.Operations ?? []);
  return {
    id: entry.GrantId ?? '',
    keyUri,
    grantee: entry.GranteePrincipal ?? '',
    operations: keyportGrantOperations(entry.Operations ?? []),
    ...(unmodeled.length > 0 ? { unmodeledOperations: unmodeled } : {}),
    ...(Object.keys(constraints).length > 0 ? { constraints } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    // an Invalid Date (an epoch out of range) is no creation date: left out, as describeKey's
    ...(isValidDate(entry.CreationDate) ? { createdAt: entry.CreationDate } : {}),
  };
}

export async function* listGrants(
  rpc: KmsRpc,
  ref: KeyRef,
  o: ProviderCallOptions & { pageSize?: number },
): AsyncIterable<Grant> {
  const key = await rpc.resolve(ref);
  const limit = pageLimit(o.pageSize, 100);
  const keyId = await rpc.keyIdOrArn(key, o.signal);
  let marker: string | undefined;
  const markers = pageMarkers();
  do {
    const out = await rpc.send(key, 'ListGrants', { KeyId: keyId, Limit: limit, Marker: marker }, o.signal);
    for (const entry of out.Grants ?? []) {
      // a grant on another key is not one of this key's (nor to be revoked as one)
      const on =
        entry.KeyId !== undefined ? answeredKey(entry.KeyId, key, "a grant's key id", keyId) : undefined;
      yield toGrant(entry, on?.startsWith('arn:') ? keyUriFor(on, key.parsed) : key.uri);
    }
    marker = nextMarker(out, markers);
  } while (marker !== undefined);
}

export const revokeGrant: DriverOp<'revokeGrant'> = async (rpc, ref, grantId, o) => {
  const key = await rpc.resolve(ref);
  await rpc.send(
    key,
    'RevokeGrant',
    { KeyId: await rpc.keyIdOrArn(key, o.signal), GrantId: grantId },
    o.signal,
  );
};

/** Retiring is done by the grantee or retiring principal: by token, or by key and grant id. */
export type RetireGrantTarget =
  | { readonly token: string; readonly key?: KeyRef }
  | { readonly key: KeyRef; readonly grantId: string };

export async function retireGrant(
  rpc: KmsRpc,
  target: RetireGrantTarget,
  o: ProviderCallOptions,
): Promise<void> {
  if ('grantId' in target) {
    const key = await rpc.resolve(target.key);
    const input = { KeyId: await rpc.keyIdOrArn(key, o.signal), GrantId: target.grantId };
    await rpc.send(key, 'RetireGrant', input, o.signal);
    return;
  }
  const to = target.key !== undefined ? await rpc.resolve(target.key) : { route: await rpc.primary() };
  await rpc.send(to, 'RetireGrant', { GrantToken: target.token }, o.signal);
}
