import type { CallContext, Handler } from './context.js';
import type { Policy } from './iam.js';
import { parseCryptoKey, parseImportJob, parseKeyRing } from './names.js';
import { invalid } from './rpc-error.js';

// google.iam.v1.IAMPolicy, which the KMS clients reach on the same channel
// (KeyManagementServiceClient.getIamPolicy etc. delegate to it) for key rings, crypto keys and
// import jobs.
function resourceOf(ctx: CallContext, name: string | undefined): { name: string; kind: string } {
  if (name?.includes('/cryptoKeys/') && !name.includes('/cryptoKeyVersions/')) {
    const { key } = parseCryptoKey('resource', name);
    return { name: ctx.state.cryptoKey(key).name, kind: 'cryptoKeys' };
  }
  if (name?.includes('/importJobs/')) {
    const { job } = parseImportJob('resource', name);
    return { name: ctx.state.importJob(job).name, kind: 'importJobs' };
  }
  if (name?.includes('/keyRings/') && !name.includes('/cryptoKeys/')) {
    return { name: ctx.state.keyRing(parseKeyRing('resource', name)).name, kind: 'keyRings' };
  }
  throw invalid('resource must name a KeyRing, CryptoKey or ImportJob.');
}

export const iamHandlers: Record<string, Handler> = {
  GetIamPolicy(request, ctx) {
    const req = request as { resource?: string; options?: { requestedPolicyVersion?: number } | null };
    const target = resourceOf(ctx, req.resource);
    ctx.authorize(target.name, `cloudkms.${target.kind}.getIamPolicy`);
    return ctx.iam.get(target.name, req.options?.requestedPolicyVersion ?? 0);
  },

  SetIamPolicy(request, ctx) {
    const req = request as {
      resource?: string;
      policy?: Policy | null;
      updateMask?: { paths?: string[] } | null;
    };
    const target = resourceOf(ctx, req.resource);
    ctx.authorize(target.name, `cloudkms.${target.kind}.setIamPolicy`);
    const paths = req.updateMask?.paths ?? [];
    if (paths.some((p) => p !== 'bindings' && p !== 'etag'))
      throw invalid('update_mask may only name bindings and etag.');
    return ctx.iam.set(target.name, req.policy ?? undefined);
  },

  TestIamPermissions(request, ctx) {
    const req = request as { resource?: string; permissions?: string[] };
    const target = resourceOf(ctx, req.resource);
    return {
      permissions: ctx.iam.testPermissions(ctx.principal, target.name, req.permissions ?? [], ctx.now),
    };
  },
};
