import { createConnection, createServer, type Socket } from 'node:net';
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
import { createTestClock, type TestClock } from './clock.js';
import type { CallContext, Handler } from './context.js';
import { type FaultController, type FaultSettings, Faults } from './faults.js';
import { type Binding, IamPolicies } from './iam.js';
import { KmsState } from './model.js';
import { loadKmsDefinitions } from './proto.js';
import { cryptoHandlers } from './rpc-crypto.js';
import { RpcError, unimplemented } from './rpc-error.js';
import { iamHandlers } from './rpc-iam.js';
import { importHandlers } from './rpc-import.js';
import { keyHandlers, rotateSymmetric } from './rpc-keys.js';
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
}

export interface CloudKmsServer {
  /** `host:port`, what `KEYPORT_GCPKMS_GRPC` holds. */
  address: string;
  port: number;
  clock: TestClock;
  faults: FaultController;
  stop(): Promise<void>;
}

/** The metadata header a test uses to name the calling principal (a departure from the service). */
export const PRINCIPAL_HEADER = 'x-keyport-principal';

function principalOf(
  metadata: Metadata,
  tokens: Readonly<Record<string, string>> | undefined,
): string | undefined {
  const named = metadata.get(PRINCIPAL_HEADER)[0];
  if (typeof named === 'string' && named !== '') return named;
  const auth = metadata.get('authorization')[0];
  if (tokens === undefined || typeof auth !== 'string') return undefined;
  const token = /^Bearer (.+)$/i.exec(auth)?.[1];
  const principal = token === undefined ? undefined : tokens[token];
  if (principal === undefined) {
    throw new RpcError(status.UNAUTHENTICATED, 'Request had invalid authentication credentials.');
  }
  return principal;
}

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
  const sockets = new Set<Socket>();
  const dropConnections = () => {
    for (const s of sockets) s.destroy();
  };

  async function run(
    method: string,
    handler: Handler,
    call: ServerUnaryCall<unknown, unknown>,
    done: sendUnaryData<unknown>,
  ) {
    try {
      const latency = faults.latencyFor(method);
      if (latency > 0) await sleep(latency);
      const fault = faults.decide(method);
      if (fault.kind === 'drop') return dropConnections();
      if (fault.kind === 'throttle') throw fault.error;
      if (call.request === UNDECODABLE) {
        throw new RpcError(status.INVALID_ARGUMENT, 'Invalid request: the message could not be decoded.');
      }
      const principal = principalOf(call.metadata, options.principals);
      const now = clock.now();
      state.settle(now, rotateSymmetric);
      const ctx: CallContext = {
        state,
        iam,
        now,
        principal,
        authorize: (resource, permission) => iam.authorize(principal, resource, permission, now),
      };
      done(null, await handler(call.request, ctx));
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

  const grpcServer = new Server({ 'grpc.max_receive_message_length': MAX_REQUEST_BYTES });
  for (const [def, handlers] of [
    [defs.kms, { ...keyHandlers, ...cryptoHandlers, ...importHandlers }],
    [defs.iam, iamHandlers],
    [defs.operations, operationHandlers],
  ] as const) {
    const tolerant = tolerantDefinition(def);
    grpcServer.addService(tolerant, implement(tolerant, handlers));
  }
  const innerPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );

  // Clients connect through this TCP relay so a fault can drop their connection for real.
  const relay = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: innerPort });
    sockets.add(client);
    sockets.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    // Without this every small gRPC frame waits for Nagle and a delayed ACK (~40 ms a call).
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    relay.once('error', reject);
    relay.listen(options.port ?? 0, host, () => resolve());
  });
  const address = relay.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  return {
    address: `${host}:${port}`,
    port,
    clock,
    faults: { set: (s) => faults.set(s), clear: () => faults.clear(), dropConnections },
    async stop() {
      dropConnections();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
      grpcServer.forceShutdown();
    },
  };
}
