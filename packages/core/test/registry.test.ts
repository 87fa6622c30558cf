import { describe, expect, it } from 'vitest';
import {
  type Capabilities,
  Keyport,
  KeyportError,
  type KeyRef,
  type KmsProvider,
  keyUriInstance,
  keyUriScheme,
  MemoryAuditSink,
  parseKeyRef,
  parseKeyUri,
  qualifyKeyUri,
  splitKeyUri,
  withKeyVersion,
} from '../src/index.js';
import { AES_ONLY_CAPABILITIES } from './support/capabilities.js';

const caps: Capabilities = { ...AES_ONLY_CAPABILITIES, dataKeys: 'none', rotation: 'versioned' };

/**
 * A driver of an invented scheme, `tag://<name>[?v=<n>]`, that records the refs it was called
 * with and "encrypts" by prefixing its own label, so a test sees which instance answered.
 */
function tagDriver(label: string, scheme = 'tag') {
  const seen: KeyRef[] = [];
  const grammar = /^([a-z]+):\/\/([a-z0-9-]+)(?:\?v=([1-9][0-9]*))?$/;
  const driver = {
    scheme,
    name: scheme,
    capabilities: caps,
    mapError: () => undefined,
    close: async () => {},
    parseUri(uri: string): KeyRef {
      const m = grammar.exec(uri);
      if (!m || m[1] !== scheme) throw new KeyportError('InvalidArgument', 'not a tag URI');
      return m[3] === undefined ? { uri } : { uri, version: m[3] };
    },
    formatUri(ref: KeyRef): string {
      const name = (grammar.exec(ref.uri) as RegExpExecArray)[2];
      return `${scheme}://${name}${ref.version === undefined ? '' : `?v=${ref.version}`}`;
    },
    async encrypt(ref: KeyRef, plaintext: Uint8Array) {
      seen.push(ref);
      return {
        ciphertext: new Uint8Array([...new TextEncoder().encode(label), ...plaintext]),
        keyVersion: '1',
      };
    },
    async createKey() {
      return { uri: `${scheme}://fresh`, spec: 'AES_256', usage: 'encrypt_decrypt', state: 'enabled' };
    },
    async describeKey(ref: KeyRef) {
      seen.push(ref);
      return { uri: ref.uri, spec: 'AES_256', usage: 'encrypt_decrypt', state: 'enabled' };
    },
    async *listKeys() {
      yield { uri: `${scheme}://listed`, spec: 'AES_256', usage: 'encrypt_decrypt', state: 'enabled' };
    },
  };
  return { driver: driver as unknown as KmsProvider, seen };
}

const label = (c: Uint8Array): string => new TextDecoder().decode(c.slice(0, 4));

describe('key URI instance selector', () => {
  it('splits <scheme>+<instance> off and puts it back', () => {
    expect(splitKeyUri('aws-kms+dr://alias/a?region=eu-west-1')).toEqual({
      scheme: 'aws-kms',
      instance: 'dr',
      driverUri: 'aws-kms://alias/a?region=eu-west-1',
    });
    expect(splitKeyUri('pkcs11+hsm:token=a;object=k')).toEqual({
      scheme: 'pkcs11',
      instance: 'hsm',
      driverUri: 'pkcs11:token=a;object=k',
    });
    expect(qualifyKeyUri('pkcs11:token=a;object=k', 'hsm')).toBe('pkcs11+hsm:token=a;object=k');
    expect(qualifyKeyUri('hcvault+b://h:1/transit/keys/k', undefined)).toBe('hcvault://h:1/transit/keys/k');
    expect(keyUriScheme('hcvault+b://h:1/transit/keys/k')).toBe('hcvault');
    expect(keyUriInstance('hcvault://h:1/transit/keys/k')).toBeUndefined();
  });

  it('keeps the selector through the built-in grammars and version pinning', () => {
    const uri = 'gcp-kms+eu://projects/p/locations/l/keyRings/r/cryptoKeys/k';
    expect(parseKeyUri(uri)).toMatchObject({ scheme: 'gcp-kms', instance: 'eu', cryptoKey: 'k' });
    expect(withKeyVersion(uri, '3')).toBe(`${uri}/cryptoKeyVersions/3`);
    expect(withKeyVersion(`${uri}/cryptoKeyVersions/3`, undefined)).toBe(uri);
    expect(parseKeyRef(`${uri}/cryptoKeyVersions/3`)).toEqual({
      uri: `${uri}/cryptoKeyVersions/3`,
      version: '3',
    });
  });

  it('refuses malformed selectors with InvalidArgument', () => {
    for (const bad of [
      'aws-kms+://alias/a',
      'aws-kms+DR://alias/a',
      'aws-kms+d_r://alias/a',
      'aws-kms+1://alias/a',
    ]) {
      expect(() => splitKeyUri(bad), bad).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
    }
    expect(() => qualifyKeyUri('tag+a://k', 'b')).toThrow(/already names instance/);
  });
});

describe('Keyport with named driver instances', () => {
  it('routes a URI to the instance it names; the driver never sees the selector', async () => {
    const a = tagDriver('AAAA');
    const b = tagDriver('BBBB');
    const kp = new Keyport({ providers: { tag: a.driver, dr: b.driver } });
    expect(label((await kp.encrypt('tag://k1', new Uint8Array([1]))).ciphertext)).toBe('AAAA');
    expect(label((await kp.encrypt('tag+dr://k1', new Uint8Array([1]))).ciphertext)).toBe('BBBB');
    expect(label((await kp.encrypt('tag+tag://k1', new Uint8Array([1]))).ciphertext)).toBe('AAAA');
    expect(b.seen).toEqual([{ uri: 'tag://k1' }]);
    await kp.encrypt({ uri: 'tag+dr://k1?v=2' }, new Uint8Array(1));
    expect(b.seen.at(-1)).toEqual({ uri: 'tag://k1?v=2', version: '2' });
  });

  it("a driver's error naming the key (without its provider) keeps its code and stack, with the instance's URI", async () => {
    const b = tagDriver('BBBB');
    const refused = new KeyportError('InvalidArgument', 'this key is refused', { keyUri: 'tag://k1' });
    (b.driver as unknown as { describeKey: () => Promise<never> }).describeKey = async () => {
      throw refused;
    };
    const kp = new Keyport({ providers: { tag: tagDriver('AAAA').driver, dr: b.driver } });
    const error = await kp.describeKey('tag+dr://k1').catch((e: unknown) => e);
    // The instance relabel and the provider fill-in both copy the error: neither may turn it
    // into another (it used to become Internal: redefining the relabel's read-only keyUri threw).
    expect(error).toBeInstanceOf(KeyportError);
    expect(error).toMatchObject({
      code: 'InvalidArgument',
      message: 'this key is refused',
      keyUri: 'tag+dr://k1',
      provider: 'tag',
    });
    expect((error as Error).stack).toBe(refused.stack);
  });

  it('answers with URIs that name the instance, unless it is named after its scheme', async () => {
    const kp = new Keyport({ providers: { tag: tagDriver('AAAA').driver, dr: tagDriver('BBBB').driver } });
    expect((await kp.createKey('dr', { name: 'fresh', spec: 'AES_256', usage: 'encrypt_decrypt' })).uri).toBe(
      'tag+dr://fresh',
    );
    expect(
      (await kp.createKey('tag', { name: 'fresh', spec: 'AES_256', usage: 'encrypt_decrypt' })).uri,
    ).toBe('tag://fresh');
    expect((await kp.describeKey('tag+dr://k9')).uri).toBe('tag+dr://k9');
    const listed = [];
    for await (const k of kp.listKeys('dr')) listed.push(k.uri);
    expect(listed).toEqual(['tag+dr://listed']);
  });

  it('a plain URI addresses the only instance of its scheme, whatever its name', async () => {
    const only = tagDriver('ONLY');
    const kp = new Keyport({ providers: { prod: only.driver } });
    expect(label((await kp.encrypt('tag://k', new Uint8Array(1))).ciphertext)).toBe('ONLY');
    expect((await kp.describeKey('tag://k')).uri).toBe('tag+prod://k');
  });

  it('several instances and no default: plain URIs fail and name the instances; defaults choose', async () => {
    const providers = { prod: tagDriver('PROD').driver, dr: tagDriver('DRDR').driver };
    const ambiguous = new Keyport({ providers });
    await expect(ambiguous.encrypt('tag://k', new Uint8Array(1))).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringMatching(/several instances \(prod, dr\)/),
    });
    const chosen = new Keyport({ providers, defaults: { tag: 'dr' } });
    expect(label((await chosen.encrypt('tag://k', new Uint8Array(1))).ciphertext)).toBe('DRDR');
    expect(() => new Keyport({ providers, defaults: { tag: 'nope' } })).toThrow(/no instance "nope"/);
  });

  it('refuses an instance of another scheme, unknown instances, bad names and duplicates', async () => {
    const kp = new Keyport({
      providers: { tag: tagDriver('AAAA').driver, other: tagDriver('OOOO', 'oth').driver },
    });
    await expect(kp.encrypt('tag+other://k', new Uint8Array(1))).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringMatching(/serves scheme "oth"/),
    });
    await expect(kp.encrypt('tag+ghost://k', new Uint8Array(1))).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    expect(() => new Keyport({ providers: { 'Bad Name': tagDriver('x').driver } })).toThrow(
      /invalid instance name/,
    );
    expect(
      () => new Keyport({ providers: Object.fromEntries([['__proto__', tagDriver('x').driver]]) }),
    ).toThrow(/invalid instance name/);
    expect(() => kp.register(tagDriver('x').driver)).toThrow(
      expect.objectContaining({ code: 'AlreadyExists' }),
    );
    kp.register(tagDriver('CCCC').driver, 'third');
    expect(label((await kp.encrypt('tag+third://k', new Uint8Array(1))).ciphertext)).toBe('CCCC');
  });

  it('audit and errors carry the URI as the caller wrote it', async () => {
    const sink = new MemoryAuditSink();
    const kp = new Keyport({
      providers: { tag: tagDriver('AAAA').driver, dr: tagDriver('BBBB').driver },
      audit: [sink],
    });
    await kp.encrypt('tag+dr://k', new Uint8Array(1));
    expect(sink.events.at(-1)).toMatchObject({ keyUri: 'tag+dr://k', outcome: 'success' });
    await expect(kp.encrypt('tag+dr://K!', new Uint8Array(1))).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });

  it('learns a third-party grammar, so version pinning works for its URIs', () => {
    const acme = tagDriver('ACME', 'acme');
    // The registry learns grammars of the drivers it is given.
    new Keyport({ providers: { acme: acme.driver } });
    expect(withKeyVersion('acme+x://key', '4')).toBe('acme+x://key?v=4');
    expect(withKeyVersion('acme://key?v=4', undefined)).toBe('acme://key');
    expect(parseKeyRef('acme://key?v=4')).toEqual({ uri: 'acme://key?v=4', version: '4' });
    expect(() => parseKeyRef('zzz://key')).toThrow(/unknown scheme "zzz"/);
  });
});
