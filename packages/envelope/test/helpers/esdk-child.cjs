// Runs ESDK-JS (@aws-crypto/client-node) in a plain Node process for the interop tests:
// the vitest worker resolves the `module` export condition for require(), which breaks the
// AWS SDK's CommonJS build. One JSON request per line on stdin, one JSON answer per line out.
const { constants } = require('node:crypto');
const readline = require('node:readline');
const esdk = require('@aws-crypto/client-node');
const { makeFakeKms } = require('./fake-aws-kms.cjs');

const clients = {
  require: esdk.buildClient(esdk.CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT),
  legacy: esdk.buildClient(esdk.CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT),
};

function keyring(k) {
  if (k.type === 'kms') {
    const fake = makeFakeKms(k.secret);
    return new esdk.KmsKeyringNode({ generatorKeyId: k.arn, clientProvider: () => fake.client });
  }
  if (k.type === 'aes') {
    return new esdk.RawAesKeyringNode({
      keyName: k.name,
      keyNamespace: k.namespace,
      unencryptedMasterKey: new Uint8Array(Buffer.from(k.key, 'base64')),
      wrappingSuite: esdk.RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
      // undefined: ESDK-JS's default, the legacy localeCompare order of the context keys
      ...(k.utf8Sorting === undefined ? {} : { utf8Sorting: k.utf8Sorting }),
    });
  }
  return new esdk.RawRsaKeyringNode({
    keyName: k.name,
    keyNamespace: k.namespace,
    rsaKey: { privateKey: k.privateKey, publicKey: k.publicKey },
    padding: constants.RSA_PKCS1_OAEP_PADDING,
    oaepHash: 'sha256',
  });
}

async function handle(req) {
  const client = clients[req.policy ?? 'require'];
  const kr =
    req.keyrings.length === 1
      ? keyring(req.keyrings[0])
      : new esdk.MultiKeyringNode({
          generator: keyring(req.keyrings[0]),
          children: req.keyrings.slice(1).map(keyring),
        });
  if (req.op === 'encrypt') {
    const opts = { encryptionContext: req.context ?? {} };
    if (req.suiteId !== undefined) opts.suiteId = req.suiteId;
    if (req.frameLength !== undefined) opts.frameLength = req.frameLength;
    const { result } = await client.encrypt(kr, Buffer.from(req.data, 'base64'), opts);
    return { data: Buffer.from(result).toString('base64') };
  }
  const { plaintext, messageHeader } = await client.decrypt(kr, Buffer.from(req.data, 'base64'));
  return {
    data: Buffer.from(plaintext).toString('base64'),
    suiteId: messageHeader.suiteId,
    context: messageHeader.encryptionContext,
    frameLength: messageHeader.frameLength,
  };
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const req = JSON.parse(line);
  handle(req).then(
    (r) => process.stdout.write(`${JSON.stringify({ id: req.id, ok: true, ...r })}\n`),
    (e) => process.stdout.write(`${JSON.stringify({ id: req.id, ok: false, error: String(e?.message) })}\n`),
  );
});
