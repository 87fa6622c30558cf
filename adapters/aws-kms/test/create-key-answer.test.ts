/**
 * A CreateKey answer naming a key in another region than the one the request was sent to (a
 * proxy, a misrouted custom endpoint): no emulator answers so, so a stubbed transport does. Its
 * ARN would be returned as the new key's URI and every later call made with it go elsewhere: it
 * is refused (`Internal`, as other answers naming another key are), the key is neither named nor
 * acted on, and the error says a key may exist, naming its id quoted.
 */
import { describe, expect, it } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import { keyMetadata, stubTransport } from './support/stub-transport.js';
import { call, TEST_CREDENTIALS } from './support/targets.js';

const ID = '1234abcd-12ab-34cd-56ef-1234567890ab';

/** A provider for us-east-1 whose endpoint answers CreateKey with `created`. */
function answering(created: Record<string, unknown>) {
  const stub = stubTransport((op) => (op === 'CreateKey' ? { json: created } : { json: {} }));
  const provider = new AwsKmsProvider({
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    clientConfig: stub.clientConfig,
  });
  return { provider, requests: stub.requests };
}

function withMeta(fields: Record<string, unknown>) {
  return { KeyMetadata: { ...keyMetadata('SYMMETRIC_DEFAULT').KeyMetadata, ...fields } };
}

describe('a CreateKey answer for another key than one made where it was asked', () => {
  it('is refused (Internal): no alias, no clean-up, and the error names the key id it may have made', async () => {
    const hostileId = `${ID}\n[ok] key created`;
    const cases: [name: string, answer: Record<string, unknown>, uri?: string][] = [
      ['region', keyMetadata('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', ID, 'eu-west-1')],
      // the URI's region is the one asked: an answer from the default region is another's
      [
        'region',
        keyMetadata('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', ID, 'us-east-1'),
        'aws-kms://alias/r?region=eu-west-1',
      ],
      ['partition', withMeta({ Arn: `arn:aws-cn:kms:cn-north-1:111122223333:key/${ID}` })],
      ['key id', withMeta({ KeyId: hostileId })],
      ['account', withMeta({ AWSAccountId: '999999999999' })],
      ['no ARN', withMeta({ Arn: 'not-an-arn' })],
    ];
    for (const [what, answer, uri] of cases) {
      const { provider, requests } = answering(answer);
      const error = await provider.createKey({ name: uri ?? 'orders', spec: 'AES_256' }, call()).then(
        (info) => `created ${info.uri}`,
        (e: unknown) => e,
      );
      const mapped = provider.mapError(error);
      expect(mapped?.code, what).toBe('Internal');
      expect(mapped?.retryable, what).toBe(false);
      expect(mapped?.message, what).toMatch(
        /a key may have been created \(key id "1234abcd-12ab-34cd-56ef-1234567890ab/,
      );
      expect(mapped?.message, what).toMatch(/neither named nor scheduled for deletion/);
      // an answer's text is quoted: a forged line cannot pass for ours
      expect(mapped?.message, what).not.toContain('\n');
      expect(
        requests.map((r) => r.operation),
        what,
      ).toEqual(['CreateKey']);
    }
  });

  it('is taken when its key ARN is of the region asked (the default one, or the URI’s)', async () => {
    for (const [region, name] of [
      ['us-east-1', 'orders'],
      ['eu-west-1', 'aws-kms://alias/orders?region=eu-west-1'],
    ] as const) {
      const { provider, requests } = answering(
        keyMetadata('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', ID, region),
      );
      const info = await provider.createKey({ name, spec: 'AES_256' }, call());
      expect(info.uri).toBe(`aws-kms://arn:aws:kms:${region}:111122223333:key/${ID}`);
      expect(requests.map((r) => r.operation)).toEqual(['CreateKey', 'CreateAlias']);
    }
  });
});
