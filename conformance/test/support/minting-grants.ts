/**
 * The local provider made to grant the way Vault does: `createGrant` mints a fresh principal and
 * hands it back as the grantee's credential (`Grant.token`), the requested `grantee` is only a
 * label, and `contextSubset` is refused (a Vault policy can only pin exact values). The suite's
 * credential-grantee form is run on it, so that form is proven here without a server.
 */
import { randomBytes } from 'node:crypto';
import {
  type Grant,
  type GrantRequest,
  type Grants,
  type KeyRef,
  type KmsProvider,
  type ListOptions,
  type ProviderCallOptions,
  UnsupportedError,
} from '@keyport/core';

export function mintingGrants(provider: KmsProvider & Grants): KmsProvider {
  const labels = new Map<string, string>(); // minted principal → requested grantee
  const relabel = (grant: Grant): Grant => ({
    ...grant,
    grantee: labels.get(grant.grantee) ?? grant.grantee,
  });
  const createGrant = async (ref: KeyRef, req: GrantRequest, o: ProviderCallOptions): Promise<Grant> => {
    if (req.constraints?.contextSubset !== undefined) {
      throw new UnsupportedError('grantConstraints.contextSubset', 'only contextEquals can be enforced', {
        provider: provider.scheme,
        keyUri: ref.uri,
      });
    }
    const minted = `minted-${randomBytes(8).toString('hex')}`;
    labels.set(minted, req.grantee);
    const grant = await provider.createGrant(ref, { ...req, grantee: minted }, o);
    return { ...relabel(grant), token: minted };
  };
  async function* listGrants(ref: KeyRef, o: ListOptions): AsyncIterable<Grant> {
    for await (const grant of provider.listGrants(ref, o)) yield relabel(grant);
  }
  return new Proxy(provider, {
    get(target, prop, receiver) {
      if (prop === 'createGrant') return createGrant;
      if (prop === 'listGrants') return listGrants;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
