import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import {
  type Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { makeLoopbackCertificate } from '../shared/cert.js';
import { ownEntry } from '../shared/own.js';
import { readState, writeState } from '../shared/state-file.js';
import { createTestClock, type TestClock } from './clock.js';
import type { CallContext, Handler } from './context.js';
import { type FaultController, type FaultSettings, Faults } from './faults.js';
import { type Binding, IamPolicies } from './iam.js';
import { KmsState } from './model.js';
import { loadKms, saveKms } from './persist.js';
import { kmsRoot, loadKmsDefinitions } from './proto.js';
import { type Relay, startRelay } from './relay.js';
import { buildRoutes, type RestServer, startRestServer } from './rest.js';
import { cryptoHandlers } from './rpc-crypto.js';
import { RpcError, unimplemented } from './rpc-error.js';
import { iamHandlers } from './rpc-iam.js';
import { importHandlers } from './rpc-import.js';
import { keyHandlers, rotateSymmetric } from './rpc-keys.js';
import { locationHandlers } from './rpc-locations.js';
import { operationHandlers } from './rpc-operations.js';

export interface CloudKmsServerOptions {
  /** Interface to listen on; loopback by default. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Where the server's clock starts (it then runs in real time, plus every `clock.advance`). */
  clockStart?: Date;
  faults?: FaultSettings;
  /** Bearer tokens that name principals: `{ 'token-a': 'user:alice@example.com' }`. */
  principals?: Readonly<Record<string, string>>;
  /** Bindings that apply to every project (the project-level IAM policy). */
  projectBindings?: readonly Binding[];
  /**
   * Serve gRPC over TLS: `true` makes a loopback certificate (its PEM is `caFile`), or give
   * your own PEM files. Plaintext (the default) is what the emulator conventions expect.
   */
  tls?: boolean | { certFile: string; keyFile: string };
  /** Also serve the service over HTTP/JSON (REST); on by default. */
  rest?: boolean;
  /** Port of the REST server; 0 (the default) picks a free one. */
  restPort?: number | undefined;
  /**
   * A JSON file holding the server's state: read at start when it exists, replaced after every
   * call that changes it. Holds key material in the clear (0600): for tests only.
   */
  stateFile?: string;
}

export interface CloudKmsServer {
  /** `host:port`, what `KEYPORT_GCPKMS_GRPC` holds. */
  address: string;
  port: number;
  /** `http://host:port` of the REST (HTTP/JSON) surface, unless started with `rest: false`. */
  restUrl?: string;
  /** The certificate to trust when started with `tls`. */
  caFile?: string;
  clock: TestClock;
  faults: FaultController;
  stop(): Promise<void>;
}

/** The metadata header a test uses to name the calling principal (a departure from the service). */
export const PRINCIPAL_HEADER = 'x-keyport-principal';

/** Reads one request header (gRPC metadata or HTTP), lower-case name. */
export type HeaderReader = (name: string) => string | undefined;

const fromMetadata =
  (metadata: Metadata): HeaderReader =>
  (name) => {
    const v = metadata.get(name)[0];
    return typeof v === 'string' ? v : undefined;
  };

function principalOf(
  header: HeaderReader,
  tokens: Readonly<Record<string, string>> | undefined,
): string | undefined {
  const named = header(PRINCIPAL_HEADER);
  if (typeof named === 'string' && named !== '') return named;
  const auth = header('authorization');
  if (tokens === undefined || typeof auth !== 'string') return undefined;
  const token = /^Bearer (.+)$/i.exec(auth)?.[1];
  const principal = token === undefined ? undefined : ownEntry(tokens, token);
  if (principal === undefined) {
    throw new RpcError(status.UNAUTHENTICATED, 'Request had invalid authentication credentials.');
  }
  return principal;
}

/** Calls that never change state (a state file is rewritten after every other call). */
const READ_ONLY =
  /^(Get|List|Test|Encrypt$|Decrypt$|RawEncrypt$|RawDecrypt$|AsymmetricSign$|AsymmetricDecrypt$|MacSign$|MacVerify$|GenerateRandomBytes$|Decapsulate$)/;

/** What `invoke` resolves to when a fault dropped the connections instead of answering. */
export const DROPPED = Symbol('dropped');

/** What a request whose bytes do not decode as its message becomes (answered INVALID_ARGUMENT). */
const UNDECODABLE = Object.freeze({ undecodable: true });

/** gRPC's default limit; Cloud KMS's own data limits (64 KiB) are far below it. */
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

// grpc-js answers INTERNAL when a request fails to deserialize; the service answers
// INVALID_ARGUMENT. Deserializers that catch the failure let the handler wrapper decide.
function tolerantDefinition(def: ServiceDefinition): ServiceDefinition {
  const out: Record<string, ServiceDefinition[string]> = {};
  for (const [name, method] of Object.entries(def)) {
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch {
          return UNDECODABLE;
        }
      },
    };
  }
  return out as ServiceDefinition;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startCloudKmsServer(options: CloudKmsServerOptions = {}): Promise<CloudKmsServer> {
  const defs = loadKmsDefinitions();
  const state = new KmsState();
  const iam = new IamPolicies(options.projectBindings);
  const clock = createTestClock(options.clockStart);
  const faults = new Faults(options.faults);
  if (options.stateFile) {
    const saved = readState(options.stateFile);
    if (saved !== undefined) loadKms(state, iam, saved);
  }
  const cert =
    options.tls === true
      ? await makeLoopbackCertificate()
      : options.tls
        ? {
            caFile: options.tls.certFile,
            cert: readFileSync(options.tls.certFile),
            key: readFileSync(options.tls.keyFile),
            remove: async () => {},
          }
        : undefined;
  const sockets = new Set<Socket>();
  const dropConnections = () => {
    for (const s of sockets) s.destroy();
  };

  /**
   * One call, whatever the transport: faults, principal, settling due transitions, the handler,
   * saving state. Resolves DROPPED when a fault dropped the connections; throws RpcError.
   */
  async function invoke(
    method: string,
    handler: Handler,
    request: unknown,
    header: HeaderReader,
  ): Promise<unknown> {
    const latency = faults.latencyFor(method);
    if (latency > 0) await sleep(latency);
    const fault = faults.decide(method);
    if (fault.kind === 'drop') {
      dropConnections();
      return DROPPED;
    }
    if (fault.kind === 'throttle') throw fault.error;
    if (request === UNDECODABLE) {
      throw new RpcError(status.INVALID_ARGUMENT, 'Invalid request: the message could not be decoded.');
    }
    const principal = principalOf(header, options.principals);
    const now = clock.now();
    state.settle(now, rotateSymmetric);
    const ctx: CallContext = {
      state,
      iam,
      now,
      principal,
      authorize: (resource, permission) => iam.authorize(principal, resource, permission, now),
    };
    const result = await handler(request, ctx);
    if (options.stateFile && !READ_ONLY.test(method)) writeState(options.stateFile, saveKms(state, iam));
    return result;
  }

  async function run(
    method: string,
    handler: Handler,
    call: ServerUnaryCall<unknown, unknown>,
    done: sendUnaryData<unknown>,
  ) {
    try {
      const result = await invoke(method, handler, call.request, fromMetadata(call.metadata));
      if (result !== DROPPED) done(null, result);
    } catch (err) {
      if (err instanceof RpcError) done({ code: err.code, details: err.message });
      else done({ code: status.INTERNAL, details: 'Internal error in the keyport Cloud KMS test server.' });
    }
  }

  const implement = (
    def: ServiceDefinition,
    handlers: Record<string, Handler>,
  ): UntypedServiceImplementation => {
    // (`def` is the tolerant definition below: an undecodable body arrives as UNDECODABLE.)
    const impl: UntypedServiceImplementation = {};
    for (const method of Object.keys(def)) {
      const handler: Handler =
        handlers[method] ??
        (() => {
          throw unimplemented(method);
        });
      impl[method] = (call: ServerUnaryCall<unknown, unknown>, done: sendUnaryData<unknown>) => {
        void run(method, handler, call, done);
      };
    }
    return impl;
  };

  const services = [
    [defs.kms, { ...keyHandlers, ...cryptoHandlers, ...importHandlers }],
    [defs.iam, iamHandlers],
    [defs.operations, operationHandlers],
    [defs.locations, locationHandlers],
  ] as const;
  const grpcServer = new Server({ 'grpc.max_receive_message_length': MAX_REQUEST_BYTES });
  for (const [def, handlers] of services) {
    const tolerant = tolerantDefinition(def);
    grpcServer.addService(tolerant, implement(tolerant, handlers));
  }
  // A start that fails half-way (a port in use) must not leave the inner server listening: it kept
  // the process alive, so a test runner or the CLI never exited after the error.
  let relay: Relay | undefined;
  let rest: RestServer | undefined;
  const host = options.host ?? '127.0.0.1';
  try {
    const innerPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync(
        '127.0.0.1:0',
        cert
          ? ServerCredentials.createSsl(null, [{ cert_chain: cert.cert, private_key: cert.key }], false)
          : ServerCredentials.createInsecure(),
        (err, port) => (err ? reject(err) : resolve(port)),
      ),
    );
    // Clients connect through this TCP relay so a fault can drop their connection for real.
    relay = await startRelay({ host, port: options.port ?? 0, target: innerPort, sockets });
    if (options.rest !== false) {
      rest = await startRestServer({
        routes: buildRoutes(kmsRoot(), [
          ['google.cloud.kms.v1.KeyManagementService', services[0][1]],
          ['google.iam.v1.IAMPolicy', iamHandlers],
          ['google.longrunning.Operations', operationHandlers],
          ['google.cloud.location.Locations', locationHandlers],
        ]),
        invoke,
        dropped: DROPPED,
        host,
        port: options.restPort ?? 0,
        ...(cert && { tls: { cert: cert.cert, key: cert.key } }),
        sockets,
      });
    }
  } catch (err) {
    await relay?.close();
    grpcServer.forceShutdown();
    await cert?.remove();
    throw err;
  }
  const started = relay;
  const port = started.port;

  return {
    address: `${host}:${port}`,
    port,
    ...(cert && { caFile: cert.caFile }),
    ...(rest && { restUrl: rest.url }),
    clock,
    faults: { set: (s) => faults.set(s), clear: () => faults.clear(), dropConnections },
    async stop() {
      dropConnections();
      await started.close();
      await rest?.close();
      grpcServer.forceShutdown();
      await cert?.remove();
    },
  };
}
