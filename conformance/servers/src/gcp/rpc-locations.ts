import type { Handler } from './context.js';
import { parseLocation } from './names.js';
import { type ListRequest, page } from './paging.js';
import { packAny } from './proto.js';
import { invalid } from './rpc-error.js';

// google.cloud.location.Locations, which the KMS clients expose as getLocation/listLocations.
// The server accepts every location id for key rings, so GetLocation answers for any well-formed
// name; ListLocations lists a fixed set of the service's locations plus any other this project
// already uses. LocationMetadata says HSM is available and EKM is not (EKM is not emulated).
const KNOWN_LOCATIONS = [
  'global',
  'us',
  'europe',
  'asia',
  'us-central1',
  'us-east1',
  'us-east4',
  'us-west1',
  'europe-west1',
  'europe-west2',
  'europe-west3',
  'asia-east1',
  'asia-northeast1',
  'asia-southeast1',
  'australia-southeast1',
  'northamerica-northeast1',
  'southamerica-east1',
];

function location(name: string) {
  const id = name.slice(name.lastIndexOf('/') + 1);
  return {
    name,
    locationId: id,
    displayName: id,
    metadata: packAny('google.cloud.kms.v1.LocationMetadata', { hsmAvailable: true, ekmAvailable: false }),
  };
}

export const locationHandlers: Record<string, Handler> = {
  GetLocation(request, ctx) {
    const name = parseLocation('name', (request as { name?: string }).name);
    ctx.authorize(name, 'cloudkms.locations.get');
    return location(name);
  },

  ListLocations(request, ctx) {
    const req = request as ListRequest & { name?: string };
    const project = req.name ?? '';
    if (!/^projects\/[a-z0-9][a-z0-9.:-]{0,99}$/.test(project))
      throw invalid('name must be of the form projects/*.');
    ctx.authorize(project, 'cloudkms.locations.list');
    const ids = new Set(KNOWN_LOCATIONS);
    for (const ring of ctx.state.keyRings.keys()) {
      const m = /^projects\/([^/]+)\/locations\/([^/]+)\//.exec(ring);
      if (m && `projects/${m[1]}` === project) ids.add(m[2]!);
    }
    const all = [...ids].sort().map((id) => location(`${project}/locations/${id}`));
    const p = page(project, 'google.cloud.location.Location', all, req);
    return { locations: p.items, nextPageToken: p.nextPageToken };
  },
};
