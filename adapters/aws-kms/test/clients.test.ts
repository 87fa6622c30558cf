/**
 * Building clients and routing URIs: options, the default credential chain, an already-built
 * KMSClient, `?endpoint=` and `?region=` overrides (real emulators), and refused references.
 */
import { DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { AwsKmsProvider, awsKms } from '../src/index.js';
import {
  call,
  providerFor,
  sdkClientFor,
  TEST_CREDENTIALS,
  target,
  uniqueName,
  utf8,
} from './support/targets.js';

/** A provider for moto that key URIs may also point at `endpoint`. */
function motoReaching(endpoint: string): AwsKmsProvider {
  return new AwsKmsProvider({
    region: 'us-east-1',
    endpoint: target('moto').endpoint,
    allowedEndpoints: [endpoint],
    credentials: TEST_CREDENTIALS,
  });
}

describe('clients and key URIs', () => {
  it('routes a URI with ?endpoint= to that endpoint (listed in allowedEndpoints) and keeps it in returned URIs', async () => {
    const moto = motoReaching(target('local-kms').endpoint);
    const localKms = providerFor(target('local-kms'));
    try {
      const onLocal = await localKms.createKey({ name: uniqueName('routed'), spec: 'AES_256' }, call());
      const routed = `${onLocal.uri}?endpoint=${target('local-kms').endpoint}`;
      // a moto-configured provider reaches local-kms through the URI alone
      const info = await moto.describeKey({ uri: routed }, call());
      expect(info.uri).toBe(routed);
      const sealed = await moto.encrypt({ uri: routed }, utf8('x'), { context: { a: '1' } }, call());
      expect(
        (await localKms.decrypt({ uri: onLocal.uri }, sealed.ciphertext, { context: { a: '1' } }, call()))
          .plaintext,
      ).toEqual(utf8('x'));
    } finally {
      await moto.close();
      await localKms.close();
    }
  });

  it('creates a key in the region a URI name asks for (moto keeps regions apart)', async () => {
    const moto = providerFor(target('moto'));
    try {
      const alias = uniqueName('eu');
      const info = await moto.createKey(
        { name: `aws-kms://alias/${alias}?region=eu-west-1`, spec: 'AES_256' },
        call(),
      );
      expect(info.uri).toMatch(/^aws-kms:\/\/arn:aws:kms:eu-west-1:/);
      const missing = await moto.describeKey({ uri: `aws-kms://alias/${alias}` }, call()).then(
        () => undefined,
        (e: unknown) => moto.mapError(e),
      );
      expect(missing?.code).toBe('NotFound');
      expect((await moto.describeKey({ uri: `aws-kms://alias/${alias}?region=eu-west-1` }, call())).uri).toBe(
        info.uri,
      );
    } finally {
      await moto.close();
    }
  });

  it('uses an already-built KMSClient and leaves it open on close', async () => {
    const client = sdkClientFor(target('local-kms'));
    const provider = new AwsKmsProvider({ client });
    const info = await provider.createKey({ name: uniqueName('given-client'), spec: 'AES_256' }, call());
    await provider.close();
    const out = await client.send(new DescribeKeyCommand({ KeyId: info.uri.slice('aws-kms://'.length) }));
    expect(out.KeyMetadata?.KeyState).toBe('Enabled');
    client.destroy();
  });

  it('works from the default credential chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the harness)', async () => {
    expect(process.env.AWS_ACCESS_KEY_ID, 'the harness sets AWS_ACCESS_KEY_ID').toBeTruthy();
    const provider = awsKms({ region: 'us-east-1', endpoint: target('local-kms').endpoint });
    const info = await provider.createKey({ name: uniqueName('chain'), spec: 'HMAC_256' }, call());
    expect(info.spec).toBe('HMAC_256');
    await provider.close();
  });

  it('refuses ReEncrypt between keys of two endpoints before any call (both keys in one region/endpoint)', async () => {
    const moto = motoReaching(target('local-kms').endpoint);
    const localKms = providerFor(target('local-kms'));
    try {
      const a = await moto.createKey({ name: uniqueName('re-a'), spec: 'AES_256' }, call());
      const b = await localKms.createKey({ name: uniqueName('re-b'), spec: 'AES_256' }, call());
      const sealed = await moto.encrypt({ uri: a.uri }, utf8('x'), {}, call());
      const elsewhere = { uri: `${b.uri}?endpoint=${target('local-kms').endpoint}` };
      await expect(
        moto.reEncrypt({ uri: a.uri }, sealed.ciphertext, { destination: elsewhere }),
      ).rejects.toMatchObject({
        code: 'InvalidArgument',
        message: expect.stringMatching(/one region and endpoint/),
      });
      const otherRegion = { uri: `aws-kms://alias/${uniqueName('re-eu')}?region=eu-west-1` };
      await expect(
        moto.reEncrypt({ uri: a.uri }, sealed.ciphertext, { destination: otherRegion }),
      ).rejects.toMatchObject({ code: 'InvalidArgument' });
    } finally {
      await moto.close();
      await localKms.close();
    }
  });

  it('reaches a key by its ARN in another region than the default (region from the ARN)', async () => {
    const moto = providerFor(target('moto'));
    try {
      const info = await moto.createKey(
        { name: `aws-kms://alias/${uniqueName('arn-eu')}?region=eu-west-1`, spec: 'AES_256' },
        call(),
      );
      const fresh = providerFor(target('moto')); // default region us-east-1, nothing cached
      try {
        const sealed = await fresh.encrypt({ uri: info.uri }, utf8('eu'), {}, call());
        expect(`aws-kms://${sealed.keyArn}`).toBe(info.uri);
        expect((await fresh.disableKey({ uri: info.uri }, call())).state).toBe('disabled');
      } finally {
        await fresh.close();
      }
    } finally {
      await moto.close();
    }
  });

  it('refuses versions, other schemes and malformed URIs with InvalidArgument', async () => {
    const provider = new AwsKmsProvider({
      region: 'us-east-1',
      credentials: TEST_CREDENTIALS,
      client: new KMSClient({ region: 'us-east-1' }),
    });
    for (const ref of [
      { uri: 'aws-kms://alias/x', version: '2' },
      { uri: 'gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k' },
      { uri: 'aws-kms://arn:aws:kms:us-east-1:1:key/x' },
      { uri: 'aws-kms://alias/x?region=nowhere' },
      { uri: 'aws-kms://alias/x?region=us-east-1&region=eu-west-1' },
      { uri: 'aws-kms://alias/x?endpoint=javascript:alert(1)' },
      { uri: 'aws-kms://alias/x?endpoint=http://user:secret@127.0.0.1:1' },
      { uri: 'aws-kms://alias/x?foo=1' },
      { uri: 'aws-kms://alias/x#fragment' },
      { uri: 'aws-kms://alias/a b' },
      { uri: 'aws-kms://alias/%2e%2e' },
      { uri: 'aws-kms://__proto__' },
      { uri: 'aws-kms://alias/x\u0000' },
      { uri: `aws-kms://alias/${'a'.repeat(3000)}` },
      { uri: `aws-kms://alias/${'a'.repeat(100_000)}` },
    ]) {
      await expect(provider.describeKey(ref, call())).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
  });
});
