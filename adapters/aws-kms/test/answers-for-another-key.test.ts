/**
 * An endpoint answering for another key than the one asked (a proxy, a misconfigured endpoint, an
 * attacker answering in AWS's place): no emulator does that, so a stubbed transport answers. AWS
 * answers for the key it was asked about; such an answer is refused (`Internal`), never reported
 * as this key's ARN (what ESDK-style EDKs record), plaintext, metadata, spec or grants.
 */
import { describe, expect, it } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import { DATA_KEY_32, keyMetadata, stubTransport } from './support/stub-transport.js';
import { call, TEST_CREDENTIALS, utf8 } from './support/targets.js';

const ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const ARN = `arn:aws:kms:us-east-1:111122223333:key/${ID}`;
const OTHER_ID = '0000aaaa-12ab-34cd-56ef-1234567890ab';
const OTHER = `arn:aws:kms:us-east-1:111122223333:key/${OTHER_ID}`;
/** The same key id in another account, and in another region. */
const OTHER_ACCOUNT = `arn:aws:kms:us-east-1:999999999999:key/${ID}`;
const OTHER_REGION = `arn:aws:kms:eu-west-1:111122223333:key/${ID}`;

/** A provider whose endpoint answers every key call naming `answerArn`. */
function answering(answerArn: string, meta = keyMetadata('SYMMETRIC_DEFAULT')) {
  const stub = stubTransport((op) => {
    switch (op) {
      case 'DescribeKey':
        return { json: meta };
      case 'Encrypt':
        return { json: { CiphertextBlob: 'AAEC', KeyId: answerArn } };
      case 'Decrypt':
        return { json: { Plaintext: 'c2VjcmV0', KeyId: answerArn } };
      case 'GenerateDataKey':
        return { json: { CiphertextBlob: 'AAEC', Plaintext: DATA_KEY_32, KeyId: answerArn } };
      case 'GenerateDataKeyWithoutPlaintext':
        return { json: { CiphertextBlob: 'AAEC', KeyId: answerArn } };
      case 'ReEncrypt':
        return { json: { CiphertextBlob: 'AAEC', KeyId: answerArn, SourceKeyId: answerArn } };
      case 'ListGrants':
        return {
          json: {
            Grants: [{ KeyId: answerArn, GrantId: 'g-1', GranteePrincipal: 'p', Operations: ['Decrypt'] }],
          },
        };
      case 'GetParametersForImport':
        return {
          json: {
            KeyId: answerArn,
            ImportToken: 'AAEC',
            PublicKey: 'AAEC',
            ParametersValidTo: 1_900_000_000,
          },
        };
      case 'Sign':
        return { json: { Signature: 'AAEC', KeyId: answerArn, SigningAlgorithm: 'ECDSA_SHA_256' } };
      case 'Verify':
        return { json: { SignatureValid: true, KeyId: answerArn, SigningAlgorithm: 'ECDSA_SHA_256' } };
      case 'GenerateMac':
        return { json: { Mac: 'AAEC', KeyId: answerArn, MacAlgorithm: 'HMAC_SHA_256' } };
      case 'VerifyMac':
        return { json: { MacValid: true, KeyId: answerArn, MacAlgorithm: 'HMAC_SHA_256' } };
      case 'GetPublicKey':
        return { json: { PublicKey: 'AAEC', KeyId: answerArn } };
      default:
        return { json: {} };
    }
  });
  const provider = new AwsKmsProvider({
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    clientConfig: stub.clientConfig,
  });
  return { provider, requests: stub.requests };
}

/** What each call answered: the key ARN it reported, or the KeyportError code it ended with. */
async function outcomes(provider: AwsKmsProvider, uri: string) {
  const ref = { uri };
  const settle = (p: Promise<unknown>) =>
    p.then(
      (r) => (r as { keyArn?: string }).keyArn ?? 'ok',
      (e: unknown) => provider.mapError(e)?.code ?? String(e),
    );
  return {
    encrypt: await settle(provider.encrypt(ref, utf8('x'), {}, call())),
    decrypt: await settle(provider.decrypt(ref, utf8('x'), {}, call())),
    generateDataKey: await settle(provider.generateDataKey(ref, {}, call())),
    withoutPlaintext: await settle(provider.generateDataKeyWithoutPlaintext(ref, {})),
    reEncrypt: await settle(provider.reEncrypt(ref, utf8('x'), { destination: ref })),
  };
}

const all = (value: string) => ({
  encrypt: value,
  decrypt: value,
  generateDataKey: value,
  withoutPlaintext: value,
  reEncrypt: value,
});

describe('an answer naming another key than the one asked for', () => {
  it('is refused by encrypt, decrypt, the data-key calls and reEncrypt, whatever the URI names', async () => {
    const cases: [uri: string, answer: string][] = [
      [`aws-kms://${ARN}`, OTHER], // another key
      [`aws-kms://${ARN}`, OTHER_ACCOUNT], // the same key id in another account
      [`aws-kms://${ARN}`, OTHER_REGION], // ... or in another region
      [`aws-kms://${ID}`, OTHER], // a key id: the ARN must end in it
      [`aws-kms://${ID}?region=us-east-1`, OTHER_REGION], // a key id in a region: that region
      ['aws-kms://arn:aws:kms:us-east-1:111122223333:alias/orders', OTHER_ACCOUNT], // an alias ARN: its account
      ['aws-kms://arn:aws:kms:us-east-1:111122223333:alias/orders', OTHER_REGION], // ... and region
      ['aws-kms://alias/orders', 'not-an-arn'], // an alias name: a key ARN at least
    ];
    for (const [uri, answer] of cases) {
      const { provider } = answering(answer);
      expect(await outcomes(provider, uri), `${uri} answered with ${answer}`).toEqual(all('Internal'));
    }
  });

  it('is taken when it names the key asked for (its ARN, the ARN of a key id, an alias target)', async () => {
    const cases: [uri: string, answer: string][] = [
      [`aws-kms://${ARN}`, ARN],
      [`aws-kms://${ID}`, ARN],
      [`aws-kms://${ID}?region=eu-west-1`, OTHER_REGION],
      ['aws-kms://arn:aws:kms:us-east-1:111122223333:alias/orders', OTHER],
      ['aws-kms://alias/orders', OTHER_ACCOUNT], // only AWS knows where an alias name points
    ];
    for (const [uri, answer] of cases) {
      const region = answer.split(':')[3];
      const { provider } = answering(answer, keyMetadata('SYMMETRIC_DEFAULT', undefined, ID, region));
      expect(await outcomes(provider, uri), `${uri} answered with ${answer}`).toEqual(all(answer));
    }
  });

  it("is refused by sign, verify, mac, verifyMac and getPublicKey (another key's public key is not this one's)", async () => {
    const results = async (provider: AwsKmsProvider, uri: string) => {
      const ref = { uri };
      const settle = (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (e: unknown) => provider.mapError(e)?.code ?? String(e),
        );
      const alg = { algorithm: 'ECDSA_SHA_256' } as const;
      return {
        sign: await settle(provider.sign(ref, utf8('x'), alg, call())),
        verify: await settle(provider.verify(ref, utf8('x'), utf8('s'), alg, call())),
        mac: await settle(provider.mac(ref, utf8('x'), call())),
        verifyMac: await settle(provider.verifyMac(ref, utf8('x'), utf8('m'), call())),
        getPublicKey: await settle(provider.getPublicKey(ref, call())),
      };
    };
    const every = (value: string) => ({
      sign: value,
      verify: value,
      mac: value,
      verifyMac: value,
      getPublicKey: value,
    });
    for (const [uri, answer] of [
      [`aws-kms://${ARN}`, OTHER],
      [`aws-kms://${ARN}`, OTHER_ACCOUNT],
      [`aws-kms://${ID}`, OTHER_ID],
      ['aws-kms://arn:aws:kms:us-east-1:111122223333:alias/orders', OTHER_REGION],
    ] as const) {
      expect(await results(answering(answer).provider, uri), `${uri} answered with ${answer}`).toEqual(
        every('Internal'),
      );
    }
    // the key's own ARN or id, and a bare key id for an alias (moto answers GetPublicKey and the MAC calls so)
    for (const [uri, answer] of [
      [`aws-kms://${ARN}`, ARN],
      [`aws-kms://${ARN}`, ID],
      [`aws-kms://${ID}`, ARN],
      ['aws-kms://alias/orders', ID],
      ['aws-kms://arn:aws:kms:us-east-1:111122223333:alias/orders', ARN],
    ] as const) {
      expect(await results(answering(answer).provider, uri), `${uri} answered with ${answer}`).toEqual(
        every('ok'),
      );
    }
  });

  it('describeKey refuses metadata of another key (its ARN or its key id), as does the spec lookup', async () => {
    const another = keyMetadata('SYMMETRIC_DEFAULT', undefined, OTHER_ID);
    const mixed = { KeyMetadata: { ...keyMetadata('SYMMETRIC_DEFAULT').KeyMetadata, KeyId: OTHER_ID } };
    for (const meta of [another, mixed]) {
      const { provider, requests } = answering(ARN, meta);
      const code = (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (e: unknown) => provider.mapError(e)?.code,
        );
      expect(await code(provider.describeKey({ uri: `aws-kms://${ARN}` }, call()))).toBe('Internal');
      // the spec of another key is neither used nor cached: no Encrypt is sent with it
      expect(await code(provider.encrypt({ uri: `aws-kms://${ID}` }, utf8('x'), {}, call()))).toBe(
        'Internal',
      );
      expect(requests.map((r) => r.operation)).toEqual(['DescribeKey', 'DescribeKey']);
    }
    // an alias ARN resolved (grants, management) to a key of another account: refused before the call
    const { provider, requests } = answering(ARN, keyMetadata('SYMMETRIC_DEFAULT'));
    const alias = { uri: 'aws-kms://arn:aws:kms:us-east-1:999999999999:alias/orders' };
    const error = await provider.revokeGrant(alias, 'g-1', call()).catch((e: unknown) => e);
    expect(provider.mapError(error)?.code).toBe('Internal');
    expect(requests.map((r) => r.operation)).toEqual(['DescribeKey']);
  });

  it('listGrants refuses a grant of another key; getImportParameters parameters for another key', async () => {
    const { provider } = answering(OTHER);
    const listed: unknown[] = [];
    const error = await (async () => {
      for await (const g of provider.listGrants({ uri: `aws-kms://${ARN}` }, call())) listed.push(g);
    })().catch((e: unknown) => e);
    expect(provider.mapError(error)?.code).toBe('Internal');
    expect(listed).toEqual([]);
    const params = await provider
      .getImportParameters({ uri: `aws-kms://${ARN}` }, {}, call())
      .catch((e: unknown) => e);
    expect(provider.mapError(params)?.code).toBe('Internal');
    // the key's own grants (by ARN, or by key id as moto lists them) are listed
    for (const answer of [ARN, ID]) {
      const own = answering(answer).provider;
      const grants = [];
      for await (const g of own.listGrants({ uri: `aws-kms://${ARN}` }, call())) grants.push(g);
      expect(grants.map((g) => [g.id, g.keyUri])).toEqual([['g-1', `aws-kms://${ARN}`]]);
    }
  });
});
