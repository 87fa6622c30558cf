/**
 * createKey cut off part-way, on both emulators: once AWS has made the key, either the alias
 * names it or it is scheduled for deletion, whatever stops the call (the caller's abort arriving
 * while CreateKey or CreateAlias is in flight, an attempt timeout core retries, a lost answer).
 * The real SDK HTTP handler carries every request; a wrapper around it only decides when the
 * caller's abort lands or an answer is lost, and records the key ids AWS hands out. What is left
 * behind is read back with the raw SDK.
 */
import { Readable } from 'node:stream';
import { DescribeKeyCommand, type KMSClientConfig } from '@aws-sdk/client-kms';
import { createKeyport } from '@keyport/core';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import { call, sdkClientFor, TARGET_NAMES, TEST_CREDENTIALS, target, uniqueName } from './support/targets.js';

interface HttpResponse {
  response: { statusCode: number; headers: Record<string, string>; body: unknown };
}
interface Handler {
  handle(
    request: { headers: Record<string, string> },
    options?: { abortSignal?: AbortSignal },
  ): Promise<HttpResponse>;
  destroy?(): void;
}

/** What the wrapper does around one request after the emulator answered it. */
type Twist = (
  operation: string,
  signal: AbortSignal | undefined,
  answer: Record<string, unknown>,
) => Promise<void> | void;

function abortError(): Error {
  return Object.assign(new Error('Request aborted'), { name: 'AbortError' });
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(TARGET_NAMES)('createKey cut off on %s', (name) => {
  const t = target(name);
  const sdk = sdkClientFor(t);
  const closing: Array<() => unknown> = [];
  afterAll(async () => {
    for (const close of closing) await close();
    sdk.destroy();
  });

  /**
   * A provider whose requests go to the emulator in full (never cut by a signal: AWS carries
   * them out), then `twist` runs and may throw (the answer is lost) before the SDK sees it.
   */
  function wrapped(twist: Twist) {
    const base = sdkClientFor(t);
    const real = base.config.requestHandler as unknown as Handler;
    const made: string[] = [];
    const requestHandler = {
      metadata: { handlerProtocol: 'http/1.1' },
      destroy: () => real.destroy?.(),
      updateHttpClientConfig(): void {},
      httpHandlerConfigs: () => ({}),
      async handle(request: { headers: Record<string, string> }, options?: { abortSignal?: AbortSignal }) {
        const target = request.headers['x-amz-target'] ?? request.headers['X-Amz-Target'] ?? '';
        const operation = target.replace(/^TrentService\./, '');
        const out = await real.handle(request, {});
        const chunks: Buffer[] = [];
        for await (const chunk of out.response.body as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
        const text = Buffer.concat(chunks);
        // moto answers some calls with `null`
        const answer = ((text.length > 0 ? JSON.parse(text.toString('utf8')) : null) ?? {}) as Record<
          string,
          unknown
        >;
        const id = (answer.KeyMetadata as { KeyId?: string } | undefined)?.KeyId;
        if (operation === 'CreateKey' && id !== undefined) made.push(id);
        await twist(operation, options?.abortSignal, answer);
        if (options?.abortSignal?.aborted) throw abortError();
        out.response.body = Readable.from([text]);
        return out;
      },
    };
    const provider = new AwsKmsProvider({
      region: 'us-east-1',
      endpoint: t.endpoint,
      credentials: TEST_CREDENTIALS,
      clientConfig: { requestHandler } as unknown as KMSClientConfig,
    });
    closing.push(
      () => provider.close(),
      () => base.destroy(),
    );
    return { provider, made };
  }

  const stateOf = async (KeyId: string) =>
    (await sdk.send(new DescribeKeyCommand({ KeyId }))).KeyMetadata?.KeyState;
  const aliasTarget = (alias: string) =>
    sdk.send(new DescribeKeyCommand({ KeyId: `alias/${alias}` })).then(
      (out) => out.KeyMetadata?.KeyId,
      (e: { name?: string }) => e.name,
    );

  it('schedules away the key of a CreateKey AWS carried out when the abort cut its answer off', async () => {
    const controller = new AbortController();
    // the caller aborts once AWS has made the key, before its answer arrives
    const { provider, made } = wrapped((op) => {
      if (op === 'CreateKey') controller.abort();
    });
    const alias = uniqueName('abort-in-create');
    const error = await provider
      .createKey({ name: alias, spec: 'AES_256' }, { signal: controller.signal })
      .catch((e: unknown) => e);
    expect(provider.mapError(error)?.code).toBe('Aborted');
    expect(made).toHaveLength(1);
    const id = made[0] as string;
    // no enabled key without a name: the one AWS made is pending deletion, and unnamed
    await vi.waitFor(async () => expect(await stateOf(id)).toBe('PendingDeletion'), { timeout: 15_000 });
    expect(await aliasTarget(alias)).toBe('NotFoundException');
  });

  it('names the key an abort during CreateAlias left, in the error, and undoes alias and key', async () => {
    const controller = new AbortController();
    // AWS makes the alias; the caller aborts before the answer arrives
    const { provider, made } = wrapped((op) => {
      if (op === 'CreateAlias') controller.abort();
    });
    const alias = uniqueName('abort-in-alias');
    const error = await provider
      .createKey({ name: alias, spec: 'AES_256' }, { signal: controller.signal })
      .catch((e: unknown) => e);
    const mapped = provider.mapError(error);
    expect(mapped?.code).toBe('Aborted');
    const id = made[0] as string;
    expect(mapped?.message).toContain(id);
    await vi.waitFor(async () => expect(await aliasTarget(alias)).toBe('NotFoundException'), {
      timeout: 15_000,
    });
    expect(await stateOf(id)).toBe('PendingDeletion');
  });

  it('an alias that landed though its answer was lost is the key created: one key, no retry', async () => {
    const { provider, made } = wrapped((op) => {
      if (op === 'CreateAlias') throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    });
    const keyport = createKeyport({ providers: [provider], retry: { maxAttempts: 3 }, random: () => 0 });
    const alias = uniqueName('lost-alias');
    const info = await keyport.createKey('aws-kms', { name: alias, spec: 'AES_256' });
    expect(made).toHaveLength(1);
    expect(info.uri.endsWith(made[0] as string)).toBe(true);
    expect(await aliasTarget(alias)).toBe(made[0]);
    expect(await stateOf(made[0] as string)).toBe('Enabled');
  });

  it('a retry after an attempt timed out in CreateAlias waits for its undo: one live key, named', async () => {
    let firstAlias = true;
    const { provider, made } = wrapped(async (op, signal) => {
      if (op === 'CreateAlias' && firstAlias) {
        // AWS made the alias; the answer comes after the attempt's timeout
        firstAlias = false;
        await delay(1_500);
        if (signal?.aborted) throw abortError();
      }
      // a slow clean-up: a retry that did not wait for it would find the alias still taken
      if (op === 'ScheduleKeyDeletion') await delay(500);
    });
    const keyport = createKeyport({
      providers: [provider],
      retry: { maxAttempts: 3, attemptTimeoutMs: 1_000, baseDelayMs: 0 },
      random: () => 0,
    });
    const alias = uniqueName('retried');
    const info = await keyport.createKey('aws-kms', { name: alias, spec: 'AES_256' });
    expect(made).toHaveLength(2);
    const [first, second] = made as [string, string];
    expect(info.uri.endsWith(second)).toBe(true);
    expect(await aliasTarget(alias)).toBe(second);
    expect(await stateOf(second)).toBe('Enabled');
    expect(await stateOf(first)).toBe('PendingDeletion');
  });

  it('refused CreateAlias (the name taken meanwhile): the error names the key made and its fate', async () => {
    const alias = uniqueName('taken');
    const { provider, made } = wrapped(() => undefined);
    await provider.createKey({ name: alias, spec: 'AES_256' }, call());
    const error = await provider.createKey({ name: alias, spec: 'AES_256' }, call()).catch((e: unknown) => e);
    const mapped = provider.mapError(error);
    expect(mapped?.code).toBe('AlreadyExists');
    expect(made).toHaveLength(2);
    expect(mapped?.message).toContain(made[1]);
    expect(mapped?.message).toMatch(/scheduled for deletion in 7 days/);
    expect(await stateOf(made[1] as string)).toBe('PendingDeletion');
    expect(await aliasTarget(alias)).toBe(made[0]);
  });
});
