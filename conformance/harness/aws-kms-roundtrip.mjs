// CreateKey + Encrypt + Decrypt with an encryption context through @aws-sdk/client-kms, run as
// a plain Node process: `node aws-kms-roundtrip.mjs <endpoint>` prints one JSON line.
//
// Why a separate process: vitest starts its workers with `--conditions module` (from the root
// config's resolve conditions), under which Node loads @aws-sdk/core's dist-es files, whose
// extensionless imports it cannot resolve. Without that condition the SDK loads normally.
import { CreateKeyCommand, DecryptCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';

const endpoint = process.argv[2];
const kms = new KMSClient({ endpoint, region: process.env.AWS_REGION ?? 'us-east-1' });
try {
  const created = await kms.send(new CreateKeyCommand({ Description: 'keyport harness smoke' }));
  const context = { purpose: 'smoke' };
  const plaintext = new TextEncoder().encode('aws-kms smoke');
  const encrypted = await kms.send(
    new EncryptCommand({
      KeyId: created.KeyMetadata?.KeyId,
      Plaintext: plaintext,
      EncryptionContext: context,
    }),
  );
  const decrypted = await kms.send(
    new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob, EncryptionContext: context }),
  );
  let mismatch = 'accepted';
  try {
    await kms.send(
      new DecryptCommand({
        CiphertextBlob: encrypted.CiphertextBlob,
        EncryptionContext: { purpose: 'other' },
      }),
    );
  } catch (err) {
    mismatch = err.name;
  }
  process.stdout.write(
    `${JSON.stringify({
      arn: created.KeyMetadata?.Arn,
      ciphertextBytes: encrypted.CiphertextBlob?.length,
      plaintext: new TextDecoder().decode(decrypted.Plaintext),
      mismatch,
    })}\n`,
  );
} finally {
  kms.destroy();
}
