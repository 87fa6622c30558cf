// Operations on a key version: encrypt, decrypt, wrapKey, unwrapKey, sign, verify; and the
// vault-level random bytes, key release and attestation answers.
// Reference pages: https://learn.microsoft.com/rest/api/keyvault/keys/<operation>/<operation>
import { randomBytes } from 'node:crypto';
import { keyId, type VaultContext } from './bundle.js';
import * as ops from './crypto-ops.js';
import { badParameter, forbidden } from './errors.js';
import type { KeyVersion } from './store.js';
import { type Body, bytesField, stringField } from './validate.js';

export type KeyOperation = 'encrypt' | 'decrypt' | 'wrapKey' | 'unwrapKey' | 'sign' | 'verify';

export const OPERATION_PATHS: Record<string, KeyOperation> = {
  encrypt: 'encrypt',
  decrypt: 'decrypt',
  wrapkey: 'wrapKey',
  unwrapkey: 'unwrapKey',
  sign: 'sign',
  verify: 'verify',
};

// Outside its nbf/exp window a key still decrypts, unwraps and verifies; it no longer
// encrypts, wraps or signs (https://learn.microsoft.com/azure/key-vault/keys/about-keys-details).
const DATE_CONTROLLED: readonly KeyOperation[] = ['encrypt', 'wrapKey', 'sign'];

function checkUsable(ctx: VaultContext, v: KeyVersion, op: KeyOperation): void {
  if (!v.attributes.enabled) {
    throw forbidden(`Operation ${op} is not allowed on a disabled key.`, 'KeyDisabled');
  }
  if (!v.keyOps.includes(op)) {
    throw forbidden(`Operation ${op} is not permitted on this key.`, 'KeyOperationForbidden');
  }
  if (!DATE_CONTROLLED.includes(op)) return;
  const now = ctx.clock.nowSeconds();
  if (v.attributes.exp !== undefined && now >= v.attributes.exp) {
    throw forbidden(`Operation ${op} is not allowed on an expired key.`, 'KeyExpired');
  }
  if (v.attributes.nbf !== undefined && now < v.attributes.nbf) {
    throw forbidden(`Operation ${op} is not allowed on a key that is not yet valid.`, 'KeyNotYetValid');
  }
}

const b64 = (b: Buffer): string => b.toString('base64url');

export function keyOperation(
  ctx: VaultContext,
  name: string,
  version: string | undefined,
  op: KeyOperation,
  body: Body,
): Record<string, unknown> {
  const record = ctx.store.record(name);
  const v = ctx.store.version(name, version);
  checkUsable(ctx, v, op);
  const alg = stringField(body, 'alg');
  const kid = keyId(ctx, record.name, v.version);
  const m = v.material;
  const result = run(op, m, alg, kid, body);
  // A Managed HSM echoes the algorithm in encrypt/decrypt answers.
  return ctx.mode === 'hsm' && (op === 'encrypt' || op === 'decrypt') ? { alg, ...result } : result;
}

function run(
  op: KeyOperation,
  m: KeyVersion['material'],
  alg: string,
  kid: string,
  body: Body,
): Record<string, unknown> {
  switch (op) {
    case 'encrypt': {
      const params = {
        iv: bytesField(body, 'iv', false),
        aad: bytesField(body, 'aad', false),
        tag: bytesField(body, 'tag', false),
      };
      const r = ops.encrypt(m, alg, bytesField(body, 'value', true), params);
      const out: Record<string, unknown> = { kid, value: b64(r.value) };
      if (r.iv) out.iv = b64(r.iv);
      if (r.tag) out.tag = b64(r.tag);
      if (r.aad) out.aad = b64(r.aad);
      return out;
    }
    case 'decrypt': {
      const params = {
        iv: bytesField(body, 'iv', false),
        aad: bytesField(body, 'aad', false),
        tag: bytesField(body, 'tag', false),
      };
      return { kid, value: b64(ops.decrypt(m, alg, bytesField(body, 'value', true), params)) };
    }
    case 'wrapKey':
      return { kid, value: b64(ops.wrapKey(m, alg, bytesField(body, 'value', true))) };
    case 'unwrapKey':
      return { kid, value: b64(ops.unwrapKey(m, alg, bytesField(body, 'value', true))) };
    case 'sign':
      return { kid, value: b64(ops.sign(m, alg, bytesField(body, 'value', true))) };
    case 'verify': {
      const digest = bytesField(body, 'digest', true);
      return { value: ops.verify(m, alg, digest, bytesField(body, 'value', true)) };
    }
  }
}

/** POST /rng: a Managed HSM operation (https://learn.microsoft.com/rest/api/keyvault/keys/get-random-bytes). */
export function randomBytesRoute(ctx: VaultContext, body: Body): { value: string } {
  if (ctx.mode !== 'hsm') throw badParameter('Random bytes are available from a Managed HSM only.');
  const count = body.count;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 128) {
    throw badParameter('GetRandomBytesRequest: count cannot be greater than 128 or less than 1');
  }
  return { value: b64(randomBytes(count)) };
}

/** Secure key release: no key here is exportable, as in a vault without the feature. */
export function releaseKey(ctx: VaultContext, name: string, version: string | undefined, body: Body): never {
  ctx.store.version(name, version);
  stringField(body, 'target');
  throw badParameter('Key is not exportable: secure key release is not supported by this vault.');
}

export function keyAttestation(ctx: VaultContext, name: string, version: string | undefined): never {
  ctx.store.version(name, version);
  throw badParameter('Key attestation is not supported by this vault.');
}
