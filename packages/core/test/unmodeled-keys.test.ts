/**
 * A listing meets keys keyport has no spec for (an AWS HMAC_512 key, a Vault ed25519 key). They
 * are not KeyInfo, but leaving them out silently let an inventory look complete: the driver yields
 * them as UnmodeledKey, and Keyport.listKeys hands each to `onUnmodeledKey`.
 */
import { describe, expect, it } from 'vitest';
import {
  createKeyport,
  isUnmodeledKey,
  type KeyInfo,
  type KmsProvider,
  parseKeyRef,
  type UnmodeledKey,
  unmodeledKeyError,
  unmodeledKeyOf,
  withKeyVersion,
} from '../src/index.js';
import { AES_ONLY_CAPABILITIES } from './support/capabilities.js';

const modeled: KeyInfo = {
  uri: 'local://k.kp#a',
  spec: 'AES_256',
  usage: 'encrypt_decrypt',
  state: 'enabled',
  labels: {},
};
const ed25519: UnmodeledKey = {
  uri: 'local://k.kp#b',
  unmodeled: 'keyport has no key spec for ed25519 keys',
};

function lister(entries: ReadonlyArray<KeyInfo | UnmodeledKey>): KmsProvider {
  return {
    scheme: 'local',
    name: 'local',
    capabilities: AES_ONLY_CAPABILITIES,
    parseUri: parseKeyRef,
    formatUri: (ref: { uri: string; version?: string }) => withKeyVersion(ref.uri, ref.version),
    mapError: () => undefined,
    close: async () => {},
    async *listKeys() {
      yield* entries;
    },
  } as unknown as KmsProvider;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('keys keyport has no spec for, in a listing', () => {
  it('are not yielded as keys, and each reaches onUnmodeledKey in listing order', async () => {
    const kp = createKeyport({
      providers: [lister([ed25519, modeled, { ...ed25519, uri: 'local://k.kp#c' }])],
    });
    const heard: UnmodeledKey[] = [];
    const keys = await collect(kp.listKeys('local', { onUnmodeledKey: (k) => heard.push(k) }));
    expect(keys).toEqual([modeled]);
    expect(heard).toEqual([ed25519, { ...ed25519, uri: 'local://k.kp#c' }]);
    // Without a listener the listing is what it always was.
    expect(await collect(kp.listKeys('local'))).toEqual([modeled]);
  });

  it('name the instance they were listed from', async () => {
    const kp = createKeyport({ providers: { east: lister([ed25519]) } });
    const heard: UnmodeledKey[] = [];
    await collect(kp.listKeys('east', { onUnmodeledKey: (k) => heard.push(k) }));
    expect(heard.map((k) => k.uri)).toEqual(['local+east://k.kp#b']);
  });

  it('refuse a listener that is not a function, and end the listing when it throws', async () => {
    const kp = createKeyport({ providers: [lister([modeled, ed25519, modeled])] });
    await expect(collect(kp.listKeys('local', { onUnmodeledKey: 'log' as never }))).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    const seen: KeyInfo[] = [];
    const listing = (async () => {
      for await (const k of kp.listKeys('local', {
        onUnmodeledKey: () => {
          throw new Error('stop');
        },
      }))
        seen.push(k);
    })();
    await expect(listing).rejects.toThrow('stop');
    expect(seen).toEqual([modeled]);
  });

  it('unmodeledKeyOf turns only an Unsupported refusal into a listing entry', () => {
    const refused = unmodeledKeyError('AWS key spec HMAC_512 (GENERATE_VERIFY_MAC)');
    expect(unmodeledKeyOf('aws-kms://arn', refused)).toEqual({
      uri: 'aws-kms://arn',
      unmodeled: 'keyport has no key spec for AWS key spec HMAC_512 (GENERATE_VERIFY_MAC)',
    });
    expect(unmodeledKeyOf('aws-kms://arn', new Error('boom'))).toBeUndefined();
    expect(isUnmodeledKey(ed25519)).toBe(true);
    expect(isUnmodeledKey(modeled)).toBe(false);
  });
});
