/**
 * The setup the test files share: one in-process Cloud KMS test server per file with a provider
 * and a Keyport on one key ring, unique key names, the key's IAM policy read and written as an
 * administrator would outside keyport, and client methods wrapped so an answer can be altered in
 * flight (the hostile answers the real server will not give).
 */
import type { KeyManagementServiceClient } from '@google-cloud/kms';
import { type Grant, Keyport } from '@keyport/core';
import type { CloudKmsServer } from '@keyport/test-servers';
import { afterAll, beforeAll } from 'vitest';
import type { GcpKmsProvider } from '../../src/index.js';
import { grpcProvider, restProvider, startServer } from './targets.js';

/** Both transports the adapter speaks, for tests run over each. */
export const TRANSPORTS = [
  ['gRPC', grpcProvider],
  ['REST', restProvider],
] as const;
export type MakeProvider = (typeof TRANSPORTS)[number][1];

/** A client method as the adapter calls it: a request and call options in, [answer, ...] out. */
export type ClientMethod = (request: object, options: object) => Promise<unknown[]>;
/** An answer as a wrapper may rewrite it. */
export type Answer = Record<string, unknown>;
/** An IAM binding as an administrator writes one. */
export type Binding = {
  role?: string | null;
  members?: string[] | null;
  condition?: Record<string, unknown> | null;
};

/** An IAM policy as the client answers it. */
export type Policy = Awaited<ReturnType<KeyManagementServiceClient['getIamPolicy']>>[0];

/** The resource name a key URI stands for. */
export const resourceOf = (uri: string): string => uri.slice('gcp-kms://'.length);

/** A Keyport over one provider, with core's retries off: each test sees the adapter's own outcome. */
export const keyportOf = (p: GcpKmsProvider): Keyport =>
  new Keyport({ providers: [p], retry: { maxAttempts: 1 } });

/**
 * Replaces client methods of `p` (the client is made once per provider, so the adapter calls
 * these from now on): each `wrap` gets the real method, bound, and returns what stands in for it.
 */
export async function wrapClient(
  p: GcpKmsProvider,
  wrappers: Readonly<Record<string, (real: ClientMethod) => ClientMethod>>,
): Promise<void> {
  const kms = (await p.client()) as unknown as Record<string, ClientMethod>;
  for (const [method, wrap] of Object.entries(wrappers)) {
    kms[method] = wrap((kms[method] as ClientMethod).bind(kms));
  }
}

/** A wrapper that lets `alter` rewrite each answer of the real method before the adapter sees it. */
export const alterAnswer =
  (alter: (answer: Answer) => void) =>
  (real: ClientMethod): ClientMethod =>
  async (request, options) => {
    const result = await real(request, options);
    alter(result[0] as Answer);
    return result;
  };

/**
 * Wraps `methods` of p's client so each call is recorded, by name and in order, in the list
 * returned; `after[method]` sees (and may alter, or act on) each answer before the adapter does.
 */
export async function recordCalls(
  p: GcpKmsProvider,
  methods: readonly string[],
  after: Readonly<Record<string, (answer: Answer) => void>> = {},
): Promise<string[]> {
  const calls: string[] = [];
  const record =
    (method: string) =>
    (real: ClientMethod): ClientMethod =>
    async (request, options) => {
      calls.push(method);
      const result = await real(request, options);
      after[method]?.(result[0] as Answer);
      return result;
    };
  await wrapClient(p, Object.fromEntries(methods.map((method) => [method, record(method)])));
  return calls;
}

export interface KmsSuite {
  readonly ring: string;
  readonly server: CloudKmsServer;
  /** The gRPC provider on the ring, unaltered. */
  readonly provider: GcpKmsProvider;
  /** A Keyport over `provider`, core's retries off. */
  readonly kp: Keyport;
  /** A key name not used before in this file. */
  name(hint: string): string;
  /** A new provider on the ring over `make`'s transport (and `extra` options). */
  providerOn(make?: MakeProvider, extra?: object): GcpKmsProvider;
  /** The key's IAM policy, as version 3. */
  policyOf(uri: string): Promise<Policy>;
  /** Writes the key's bindings as an administrator would outside keyport (conditionally on the etag). */
  setBindings(uri: string, bindings: readonly Binding[]): Promise<void>;
  /** Every grant `k` (the suite's Keyport unless given) lists on the key. */
  listed(uri: string, k?: Keyport): Promise<Grant[]>;
}

/** Starts the server before the file's tests and stops it after them (registers both hooks). */
export function kmsSuite(ring: string): KmsSuite {
  let state: { server: CloudKmsServer; provider: GcpKmsProvider; kp: Keyport } | undefined;
  const started = () => {
    if (state === undefined) throw new Error('the Cloud KMS test server is used before beforeAll started it');
    return state;
  };
  let n = 0;
  beforeAll(async () => {
    const server = await startServer();
    const provider = grpcProvider(server, { keyRing: ring });
    state = { server, provider, kp: keyportOf(provider) };
  });
  afterAll(async () => {
    await state?.kp.close();
    await state?.server.stop();
  });
  const suite: KmsSuite = {
    ring,
    get server() {
      return started().server;
    },
    get provider() {
      return started().provider;
    },
    get kp() {
      return started().kp;
    },
    name: (hint) => `${hint}-${++n}`,
    providerOn: (make = grpcProvider, extra = {}) => make(started().server, { keyRing: ring, ...extra }),
    async policyOf(uri) {
      const kms = await started().provider.client();
      const request = { resource: resourceOf(uri), options: { requestedPolicyVersion: 3 } };
      return (await kms.getIamPolicy(request as never))[0];
    },
    async setBindings(uri, bindings) {
      const kms = await started().provider.client();
      const policy = { version: 3, etag: (await suite.policyOf(uri)).etag, bindings };
      await kms.setIamPolicy({ resource: resourceOf(uri), policy } as never);
    },
    async listed(uri, k = started().kp) {
      const out: Grant[] = [];
      for await (const g of k.listGrants(uri)) out.push(g);
      return out;
    },
  };
  return suite;
}
