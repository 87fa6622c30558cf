/**
 * Promises the README makes that no other test file pins down, one test per promise, named after
 * it. Each goes through the `Keyport` client (or the exported URI helpers) as a user would.
 */
import { describe, expect, it } from 'vitest';
import {
  type Capabilities,
  Keyport,
  KeyportError,
  type KeyRef,
  type KmsProvider,
  MemoryAuditSink,
  parseKeyRef,
  withKeyVersion,
} from '../src/index.js';
import { AES_ONLY_CAPABILITIES } from './support/capabilities.js';

/**
 * A driver of scheme `scheme` (`<scheme>://<name>[<pin><n>]`, `pin` being its own version
 * syntax) that answers every call at once and says in its answers which driver it is.
 */
function driver(
  tag: string,
  options: {
    scheme?: string;
    pin?: string;
    capabilities?: Capabilities;
    encrypt?: () => Promise<{ ciphertext: Uint8Array; keyVersion: string }>;
    mapError?: (e: unknown) => KeyportError | undefined;
  } = {},
): KmsProvider {
  const scheme = options.scheme ?? 'tag';
  const pin = options.pin ?? '?v=';
  const escaped = pin.replace(/[?]/g, '\\?');
  const grammar = new RegExp(`^${scheme}://([a-z0-9-]+)(?:${escaped}([1-9][0-9]*))?$`);
  return {
    scheme,
    name: scheme,
    capabilities: options.capabilities ?? AES_ONLY_CAPABILITIES,
    mapError: options.mapError ?? (() => undefined),
    close: async () => {},
    parseUri(uri: string): KeyRef {
      const m = grammar.exec(uri);
      if (!m) throw new KeyportError('InvalidArgument', `not a ${scheme} URI`);
      return m[2] === undefined ? { uri } : { uri, version: m[2] };
    },
    formatUri(ref: KeyRef): string {
      const name = (grammar.exec(ref.uri) as RegExpExecArray)[1];
      return `${scheme}://${name}${ref.version === undefined ? '' : `${pin}${ref.version}`}`;
    },
    encrypt:
      options.encrypt ?? (async () => ({ ciphertext: new TextEncoder().encode(tag), keyVersion: '1' })),
    async createKey() {
      return { uri: `${scheme}://${tag}`, spec: 'AES_256', usage: 'encrypt_decrypt', state: 'enabled' };
    },
    async *listKeys() {
      yield { uri: `${scheme}://${tag}`, spec: 'AES_256', usage: 'encrypt_decrypt', state: 'enabled' };
    },
  } as unknown as KmsProvider;
}

describe('README promises of @keyport/core', () => {
  it('timeoutMs bounds the provider attempts, not the sink: a sink slower than the deadline does not fail the call', async () => {
    const sink = new MemoryAuditSink();
    const slow = {
      write: async (event: Parameters<MemoryAuditSink['write']>[0]) => {
        await new Promise((r) => setTimeout(r, 200));
        await sink.write(event);
      },
    };
    const kp = new Keyport({ providers: [driver('AAAA')], audit: [slow] });
    const result = await kp.encrypt('tag://k', new Uint8Array(1), { timeoutMs: 50 });
    expect(new TextDecoder().decode(result.ciphertext)).toBe('AAAA');
    expect(sink.events).toEqual([expect.objectContaining({ op: 'encrypt', outcome: 'success' })]);
  });

  it('a failure the driver marked retryable is retried, whatever its code', async () => {
    let attempts = 0;
    const kp = new Keyport({
      retry: { baseDelayMs: 1, maxDelayMs: 1 },
      providers: [
        driver('AAAA', {
          encrypt: async () => {
            attempts++;
            if (attempts < 3) throw Object.assign(new Error('glitch'), { glitch: true });
            return { ciphertext: new Uint8Array([1]), keyVersion: '1' };
          },
          // Internal is not retried by default: this driver knows this failure passes.
          mapError: (e) =>
            (e as { glitch?: boolean }).glitch
              ? new KeyportError('Internal', 'transient glitch', { retryable: true, cause: e })
              : undefined,
        }),
      ],
    });
    await expect(kp.encrypt('tag://k', new Uint8Array(1))).resolves.toMatchObject({ keyVersion: '1' });
    expect(attempts).toBe(3);
  });

  it('capabilities, createKey and listKeys take an instance name, a scheme (its default instance) or a key URI', async () => {
    const prodCaps = AES_ONLY_CAPABILITIES;
    const drCaps: Capabilities = {
      ...AES_ONLY_CAPABILITIES,
      keySpecs: { AES_256: ['encrypt_decrypt'], RSA_2048: ['encrypt_decrypt'] },
    };
    const kp = new Keyport({
      providers: {
        prod: driver('prod', { capabilities: prodCaps }),
        dr: driver('dr', { capabilities: drCaps }),
      },
      defaults: { tag: 'prod' },
    });
    const specs = (x: string) => Object.keys(kp.capabilities(x).keySpecs).sort();
    expect(specs('dr')).toEqual(['AES_256', 'RSA_2048']);
    expect(specs('tag+dr://k')).toEqual(['AES_256', 'RSA_2048']);
    expect(specs('tag')).toEqual(['AES_256']);
    expect(specs('tag://k')).toEqual(['AES_256']);
    const req = { name: 'n', spec: 'AES_256', usage: 'encrypt_decrypt' } as const;
    expect((await kp.createKey('dr', req)).uri).toBe('tag+dr://dr');
    expect((await kp.createKey('tag+dr://k', req)).uri).toBe('tag+dr://dr');
    expect((await kp.createKey('tag', req)).uri).toBe('tag+prod://prod');
    const listed = async (x: string) => {
      const out: string[] = [];
      for await (const k of kp.listKeys(x)) out.push(k.uri);
      return out;
    };
    expect(await listed('dr')).toEqual(['tag+dr://dr']);
    expect(await listed('tag+dr://k')).toEqual(['tag+dr://dr']);
    expect(await listed('tag')).toEqual(['tag+prod://prod']);
  });

  it('URI helpers learn registered grammars: the first grammar for a scheme wins, built-in grammars cannot be replaced', () => {
    // A scheme no other test registers (the learnt grammars are process-wide).
    new Keyport({ providers: [driver('one', { scheme: 'rdmfirst', pin: '?v=' })] });
    new Keyport({ providers: [driver('two', { scheme: 'rdmfirst', pin: '?rev=' })] });
    expect(withKeyVersion('rdmfirst://key', '3')).toBe('rdmfirst://key?v=3');
    expect(parseKeyRef('rdmfirst://key?v=3')).toEqual({ uri: 'rdmfirst://key?v=3', version: '3' });
    expect(() => parseKeyRef('rdmfirst://key?rev=3')).toThrow(KeyportError);
    // A driver of a built-in scheme brings its own grammar for its calls, not for the helpers.
    const before = withKeyVersion('local://k.kp#a', '2');
    new Keyport({ providers: [driver('loc', { scheme: 'local', pin: '?v=' })] });
    expect(withKeyVersion('local://k.kp#a', '2')).toBe(before);
    expect(before).toBe('local://k.kp?version=2#a');
  });
});
