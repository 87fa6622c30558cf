/**
 * One place where keyport calls the client: every call gets `retry: null` (core's policy is the
 * only retry loop), the AbortSignal (gax cancels the in-flight call when it fires), and the
 * configured request headers; failures leave as KeyportErrors.
 */
import type { KeyManagementServiceClient } from '@google-cloud/kms';
import type { ProviderCallOptions } from '@keyport/core';
import { type GcpOperation, mapGcpError } from './errors.js';

/** The gax CallOptions keyport sends. A fresh object per call: gax writes into `otherArgs.headers`. */
export interface KmsCallOptions {
  retry: null;
  signal: AbortSignal;
  otherArgs: { headers: Record<string, string> };
  autoPaginate?: boolean;
}

export class Rpc {
  constructor(
    /** The client, built (SDK loaded) on first use; a load failure is already a KeyportError. */
    readonly client: () => Promise<KeyManagementServiceClient>,
    private readonly headers: Readonly<Record<string, string>>,
    readonly providerName: string,
  ) {}

  options(o: ProviderCallOptions): KmsCallOptions {
    return { retry: null, signal: o.signal, otherArgs: { headers: { ...this.headers } } };
  }

  /** Runs one client call and returns the response (the first element of gax's tuple). */
  async call<T>(
    o: ProviderCallOptions,
    fn: (options: KmsCallOptions, kms: KeyManagementServiceClient) => Promise<readonly [T, ...unknown[]]>,
    context: { op?: GcpOperation; keyUri?: string } = {},
  ): Promise<T> {
    const kms = await this.client();
    try {
      const [response] = await fn(this.options(o), kms);
      return response;
    } catch (e) {
      throw this.mapError(e, context.op ?? 'other', context.keyUri);
    }
  }

  mapError(e: unknown, op: GcpOperation = 'other', keyUri?: string): unknown {
    return (
      mapGcpError(e, op, {
        provider: this.providerName,
        ...(keyUri !== undefined ? { keyUri } : {}),
      }) ?? e
    );
  }

  /** Pages through a list call one request at a time (autoPaginate off), yielding items. */
  async *pages<T, Req extends object>(
    o: ProviderCallOptions,
    first: Req,
    fn: (
      req: Req,
      options: KmsCallOptions,
      kms: KeyManagementServiceClient,
    ) => Promise<readonly [T[], Req | null | undefined, ...unknown[]]>,
    keyUri?: string,
  ): AsyncGenerator<T> {
    const kms = await this.client();
    let request: Req | null | undefined = first;
    while (request !== null && request !== undefined) {
      let page: readonly [T[], Req | null | undefined, ...unknown[]];
      try {
        page = await fn(request, { ...this.options(o), autoPaginate: false }, kms);
      } catch (e) {
        throw this.mapError(e, 'other', keyUri);
      }
      for (const item of page[0]) yield item;
      const next: Req | null | undefined = page[1];
      const token = (next as { pageToken?: string | null } | null | undefined)?.pageToken;
      request = next && token ? next : undefined;
    }
  }
}
