/**
 * Envelope interop with the AWS Encryption SDK: a message sealed by keyport (@keyport/envelope
 * through this adapter) opens in @aws-crypto/client-node's KmsKeyringNode pointed at the same
 * emulator, and the reverse, on both emulators. The EDK is the ESDK's: provider id `aws-kms`,
 * the key ARN as provider info, the KMS ciphertext blob.
 */
import { buildClient, CommitmentPolicy, KmsKeyringNode } from '@aws-crypto/client-node';
import { KMS } from '@aws-sdk/client-kms';
import { Keyport } from '@keyport/core';
import { openEnvelope, rewrapEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, describe, expect, it } from 'vitest';
import type { AwsKmsProvider } from '../src/index.js';
import {
  call,
  providerFor,
  TARGET_NAMES,
  TEST_CREDENTIALS,
  target,
  text,
  uniqueName,
  utf8,
} from './support/targets.js';

const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
/** The ESDK's own structural client type is stricter than the SDK's under exactOptionalPropertyTypes. */
type ClientSupplier = NonNullable<
  NonNullable<ConstructorParameters<typeof KmsKeyringNode>[0]>['clientProvider']
>;

describe.each(TARGET_NAMES)('ESDK interop on %s', (name) => {
  let provider: AwsKmsProvider | undefined;
  afterAll(async () => provider?.close());

  const setup = async () => {
    const t = target(name);
    provider ??= providerFor(t);
    const keyport = new Keyport({ providers: [provider], retry: { maxAttempts: 1 } });
    const key = await provider.createKey({ name: uniqueName('esdk'), spec: 'AES_256' }, call());
    const arn = key.uri.slice('aws-kms://'.length);
    // the ESDK needs the aggregated KMS client (not KMSClient) for its keyring
    const keyring = new KmsKeyringNode({
      generatorKeyId: arn,
      clientProvider: (() =>
        new KMS({
          region: 'us-east-1',
          endpoint: t.endpoint,
          credentials: TEST_CREDENTIALS,
        })) as unknown as ClientSupplier,
    });
    return { keyport, key, arn, keyring };
  };

  it('a keyport message opens in the ESDK, with its context', async () => {
    const { keyport, key, arn, keyring } = await setup();
    const message = await sealEnvelope(utf8('sealed by keyport'), {
      recipients: [key.uri],
      context: { purpose: 'interop' },
      keys: keyport,
    });
    const { plaintext, messageHeader } = await esdk.decrypt(keyring, message);
    expect(text(plaintext)).toBe('sealed by keyport');
    expect(messageHeader.encryptionContext).toMatchObject({ purpose: 'interop' });
    expect(messageHeader.encryptedDataKeys.map((e) => [e.providerId, e.providerInfo])).toEqual([
      ['aws-kms', arn],
    ]);
  });

  it('an ESDK message opens in keyport, with its context', async () => {
    const { keyport, key, keyring } = await setup();
    const { result } = await esdk.encrypt(keyring, utf8('sealed by the ESDK'), {
      encryptionContext: { purpose: 'interop' },
    });
    const opened = await openEnvelope(result, {
      trust: [key.uri],
      keys: keyport,
      requiredContext: { purpose: 'interop' },
    });
    expect(text(opened.plaintext)).toBe('sealed by the ESDK');
    expect(opened.providerIds).toEqual(['aws-kms']);
  });

  it('an ESDK message whose context has an empty key opens in keyport, and rewraps to another KMS key', async () => {
    // ESDK-JS writes `{ "": value }` and AWS KMS binds its data key to it: keyport hands the
    // message's context to Decrypt as it is (core refuses an empty key only from a caller).
    const { keyport, key, keyring } = await setup();
    const context = { '': 'empty-key value', purpose: 'interop' };
    for (const suiteId of [0x0478, 0x0578] as const) {
      const { result } = await esdk.encrypt(keyring, utf8('sealed by the ESDK'), {
        encryptionContext: context,
        suiteId,
      });
      const opened = await openEnvelope(result, {
        trust: [key.uri],
        keys: keyport,
        requiredContext: { purpose: 'interop' },
      });
      expect(text(opened.plaintext)).toBe('sealed by the ESDK');
      expect(opened.context).toMatchObject(context);

      // A new KMS EDK over the same context (Encrypt carries the empty key), the old one removed.
      const other = await provider?.createKey({ name: uniqueName('esdk-to'), spec: 'AES_256' }, call());
      if (other === undefined) throw new Error('no key');
      const moved = await rewrapEnvelope(result, {
        trust: [key.uri],
        add: [other.uri],
        remove: [key.uri],
        keys: keyport,
      });
      const reopened = await openEnvelope(moved, { trust: [other.uri], keys: keyport });
      expect(text(reopened.plaintext)).toBe('sealed by the ESDK');
      expect(reopened.context).toMatchObject(context);
      // and the ESDK opens the rewrapped message under the new key
      const otherRing = new KmsKeyringNode({
        generatorKeyId: other.uri.slice('aws-kms://'.length),
        clientProvider: (() =>
          new KMS({
            region: 'us-east-1',
            endpoint: target(name).endpoint,
            credentials: TEST_CREDENTIALS,
          })) as unknown as ClientSupplier,
      });
      const back = await esdk.decrypt(otherRing, moved);
      expect(text(back.plaintext)).toBe('sealed by the ESDK');
    }
  });
});
