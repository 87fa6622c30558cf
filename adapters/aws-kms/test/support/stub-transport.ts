/**
 * A stubbed HTTP transport for what no emulator can show: the exact request the adapter builds.
 * It is the SDK's own `requestHandler` extension point; the SDK still serialises, signs and parses.
 */
import type { KMSClientConfig } from '@aws-sdk/client-kms';

export interface CapturedRequest {
  /** The KMS operation, from the X-Amz-Target header (e.g. "Encrypt"). */
  readonly operation: string;
  readonly body: Record<string, unknown>;
  readonly aborted: boolean;
  /** The request as signed: method, path, headers (Authorization included) and body text. */
  readonly signed: {
    readonly method: string;
    readonly path: string;
    readonly headers: Readonly<Record<string, string>>;
    readonly body: string;
  };
}

export type StubAnswer =
  | { readonly status?: number; readonly json: Record<string, unknown> }
  | { readonly status: number; readonly raw: string };

interface StubRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: unknown;
}

function bodyText(body: unknown): string {
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return new TextDecoder().decode(body);
  throw new Error(`stub transport: unexpected request body type ${typeof body}`);
}

/** Options for `new AwsKmsProvider({ clientConfig: stub.clientConfig, ... })`. */
export function stubTransport(
  answer: (
    operation: string,
    body: Record<string, unknown>,
    signed: CapturedRequest['signed'],
  ) => StubAnswer | 'hang' | Promise<StubAnswer>,
) {
  const requests: CapturedRequest[] = [];
  const requestHandler = {
    metadata: { handlerProtocol: 'h1' },
    destroy(): void {},
    updateHttpClientConfig(): void {},
    httpHandlerConfigs: () => ({}),
    async handle(request: StubRequest, options?: { abortSignal?: AbortSignal }) {
      const target = request.headers['x-amz-target'] ?? request.headers['X-Amz-Target'] ?? '';
      const operation = target.replace(/^TrentService\./, '');
      const text = bodyText(request.body);
      const body = JSON.parse(text) as Record<string, unknown>;
      const signed = {
        method: request.method,
        path: request.path,
        headers: { ...request.headers },
        body: text,
      };
      const signal = options?.abortSignal;
      const reply = await answer(operation, body, signed);
      if (reply === 'hang') {
        await new Promise<void>((_resolve, reject) => {
          const fail = () => {
            requests.push({ operation, body, aborted: true, signed });
            const error = new Error('Request aborted');
            error.name = 'AbortError';
            reject(error);
          };
          if (signal?.aborted) fail();
          else signal?.addEventListener('abort', fail, { once: true });
        });
      }
      requests.push({ operation, body, aborted: false, signed });
      const ok = reply !== 'hang' ? reply : { json: {} };
      const payload = 'json' in ok ? JSON.stringify(ok.json) : ok.raw;
      const status = ok.status ?? 200;
      return {
        response: {
          statusCode: status,
          reason: '',
          headers: {
            'content-type': 'application/x-amz-json-1.1',
            'x-amzn-requestid': `stub-${requests.length}`,
          },
          body: new TextEncoder().encode(payload),
        },
      };
    },
  };
  const clientConfig = { requestHandler } as unknown as KMSClientConfig;
  return { requests, clientConfig };
}

/** The region a request was signed for (its credential scope). */
export function signedRegion(signed: CapturedRequest['signed']): string | undefined {
  return /Credential=[^/]+\/[0-9]+\/([^/]+)\//.exec(signed.headers.authorization ?? '')?.[1];
}

/** A GenerateDataKey plaintext of the default 32 bytes, base64 (AWS answers the length asked for). */
export const DATA_KEY_32 = Buffer.alloc(32, 7).toString('base64');

/** A minimal DescribeKey answer for a key of `spec`. */
export function keyMetadata(
  spec: string,
  usage = 'ENCRYPT_DECRYPT',
  id = '1234abcd-12ab-34cd-56ef-1234567890ab',
  region = 'us-east-1',
) {
  return {
    KeyMetadata: {
      KeyId: id,
      Arn: `arn:aws:kms:${region}:111122223333:key/${id}`,
      KeySpec: spec,
      KeyUsage: usage,
      KeyState: 'Enabled',
      Enabled: true,
      Origin: 'AWS_KMS',
    },
  };
}
