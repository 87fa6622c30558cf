// The shared conformance suite on the transit adapter against a real OpenBao dev server, in a
// transit mount of its own (so listing does not walk every other test's keys), with key
// metadata kept in the dev server's KV v2 mount `secret`. Grants use the suite's credential
// grantee: a Vault grant mints the grantee's token (Grant.token), and the grantee is a second
// provider on the same server holding only that token.
import { createDecipheriv, createPublicKey } from 'node:crypto';
import { describeProviderConformance, uniqueKeyNames } from '@keyport/conformance';
import { type EncryptionContext, encodeContext, type Grant, type KeyRef } from '@keyport/core';
import { transitCapabilities, VaultTransitProvider } from '../src/index.js';
import { openbao, rootClient } from './helpers.js';
import { OPENBAO_PROOFS } from './proofs.js';

const mount = `conf-${Date.now().toString(36)}`;
let admin: VaultTransitProvider | undefined;
async function open(): Promise<VaultTransitProvider> {
  const env = openbao();
  await rootClient().write(`sys/mounts/${mount}`, { type: 'transit' });
  await rootClient().write(`${mount}/config/keys`, { disable_upsert: true });
  admin = new VaultTransitProvider({
    endpoint: env.addr,
    auth: env.token,
    mount,
    flavor: 'openbao',
    metadataStore: { kvMount: 'secret', prefix: `keyport-conformance/${mount}` },
  });
  return admin;
}

/** The grantee of a grant: a provider holding only the token the grant minted (never renewed). */
async function providerForGrant(grant: Grant): Promise<VaultTransitProvider> {
  if (grant.token === undefined) throw new Error('a Vault grant returns the grantee token (Grant.token)');
  return new VaultTransitProvider({
    endpoint: openbao().addr,
    auth: { method: 'token', token: grant.token, renew: false },
    mount,
    flavor: 'openbao',
  });
}

/** Opens transit's aes256-gcm96 format with only the key bytes: vault:vN:base64(nonce12 || ct || tag16). */
function openWithImportedMaterial(
  material: Uint8Array,
  ciphertext: Uint8Array,
  context?: EncryptionContext,
): Uint8Array {
  const raw = Buffer.from(Buffer.from(ciphertext).toString('utf8').split(':')[2] ?? '', 'base64');
  const decipher = createDecipheriv('aes-256-gcm', material, raw.subarray(0, 12));
  decipher.setAAD(encodeContext(context));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  return new Uint8Array(
    Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]),
  );
}

async function publicKey(ref: KeyRef): Promise<Uint8Array> {
  if (admin === undefined) throw new Error('provider not open');
  const data = await admin.readTransitKey(ref);
  const entry = data.keys?.[ref.version ?? String(data.latest_version)];
  if (typeof entry !== 'object' || entry.public_key === undefined)
    throw new Error('no public key for this version');
  return new Uint8Array(createPublicKey(entry.public_key).export({ type: 'spki', format: 'der' }));
}

describeProviderConformance({
  name: 'hcvault (OpenBao 2.7.2)',
  provider: { capabilities: transitCapabilities('openbao'), open },
  fixtures: {
    keyName: uniqueKeyNames('conf'),
    missingKeyUri: () => `hcvault://${new URL(openbao().addr).host}/${mount}/keys/missing-${Date.now()}`,
    proofs: OPENBAO_PROOFS,
    grantee: { kind: 'credential', providerForGrant },
    // A policy pins exact parameter values: contextSubset cannot be expressed (UnsupportedError).
    grantConstraintKinds: ['contextEquals'],
    // Token TTLs are whole seconds, and no clock here can be moved: the expiry test waits ~2.5 s.
    grantExpiryMs: 2_000,
    publicKey,
    openWithImportedMaterial,
  },
});
