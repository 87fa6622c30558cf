import type { Handler } from './context.js';
import { parseLocation } from './names.js';
import { invalid } from './rpc-error.js';

// google.longrunning.Operations, which the clients call to poll DeleteCryptoKey and
// DeleteCryptoKeyVersion. Operations finish before they are returned, so GetOperation only
// hands the finished Operation back.
export const operationHandlers: Record<string, Handler> = {
  GetOperation(request, ctx) {
    const name = (request as { name?: string }).name ?? '';
    const m = /^(projects\/[^/]+\/locations\/[^/]+)\/operations\/[0-9a-f-]{36}$/.exec(name);
    if (!m) throw invalid('name must be of the form projects/*/locations/*/operations/*.');
    ctx.authorize(parseLocation('name', m[1]), 'cloudkms.locations.get');
    return ctx.state.operation(name);
  },
};
