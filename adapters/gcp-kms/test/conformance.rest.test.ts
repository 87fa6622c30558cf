/**
 * The whole conformance suite over REST (the client's fallback mode, HTTP/1.1 + JSON) against
 * keyport's Cloud KMS test server's HTTP/JSON surface, started here so
 * the suite can move its clock (grant expiry) and act as other principals (IAM grants).
 */
import { describeProviderConformance, uniqueKeyNames } from '@keyport/conformance';
import type { CloudKmsServer } from '@keyport/test-servers';
import { afterAll } from 'vitest';
import { GCP_KMS_CAPABILITIES, type GcpKmsProvider } from '../src/index.js';
import { REST_PROOFS } from './proofs.js';
import { restProvider, signal, startServer } from './support/targets.js';

const KEY_RING = 'projects/keyport-conformance-rest/locations/global/keyRings/conformance';
let server: CloudKmsServer | undefined;
let owner: GcpKmsProvider | undefined;
const running = (): CloudKmsServer => {
  if (server === undefined) throw new Error('the Cloud KMS test server did not start');
  return server;
};
afterAll(async () => {
  await server?.stop();
});

describeProviderConformance({
  name: 'gcp-kms (REST, keyport Cloud KMS test server)',
  provider: {
    capabilities: GCP_KMS_CAPABILITIES,
    open: async () => {
      server = await startServer();
      owner = restProvider(server, { keyRing: KEY_RING });
      return owner;
    },
  },
  fixtures: {
    keyName: uniqueKeyNames('gcp'),
    missingKeyUri: () => `gcp-kms://${KEY_RING}/cryptoKeys/missing-${Date.now().toString(36)}`,
    // RSA_3072/4096 take the RSA_2048 code path and cost seconds per key to generate.
    keySpecs: ['AES_256', 'RSA_2048', 'EC_P256', 'EC_P384', 'HMAC_256'],
    proofs: REST_PROOFS,
    grantee: {
      newPrincipal: (hint) => `user:${hint}-${Math.random().toString(36).slice(2, 8)}@example.com`,
      providerFor: async (principal) => restProvider(running(), { keyRing: KEY_RING, principal }),
    },
    clock: {
      now: () => running().clock.now(),
      advance: (ms) => running().clock.advance(ms),
    },
    publicKey: (ref) => {
      if (owner === undefined) throw new Error('the provider is not open');
      return owner.getPublicKey(ref, signal());
    },
  },
});
