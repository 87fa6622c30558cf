// A stand-in for the AWS KMS data plane (GenerateDataKey, Encrypt, Decrypt) shared by the
// ESDK child process and the keyport side of the aws-kms EDK interop test, so both sides
// see the same blobs. It binds the encryption context like KMS: a different context fails.
// No AWS KMS emulator is started by this package's tests (the aws-kms adapter owns that).
const { createCipheriv, createDecipheriv, randomBytes } = require('node:crypto');

function aad(context) {
  const keys = Object.keys(context ?? {}).sort();
  return Buffer.from(JSON.stringify(keys.map((k) => [k, context[k]])), 'utf8');
}

function makeFakeKms(secret) {
  const key = Buffer.from(secret, 'base64');
  function seal(keyId, plaintext, context) {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(Buffer.concat([Buffer.from(keyId), aad(context)]));
    const body = Buffer.concat([c.update(plaintext), c.final()]);
    const id = Buffer.from(keyId);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(id.length);
    return new Uint8Array(Buffer.concat([len, id, iv, body, c.getAuthTag()]));
  }
  function open(blob, context) {
    const b = Buffer.from(blob);
    const n = b.readUInt16BE(0);
    const keyId = b.subarray(2, 2 + n).toString();
    const iv = b.subarray(2 + n, 14 + n);
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAAD(Buffer.concat([Buffer.from(keyId), aad(context)]));
    d.setAuthTag(b.subarray(b.length - 16));
    const pt = Buffer.concat([d.update(b.subarray(14 + n, b.length - 16)), d.final()]);
    return { keyId, plaintext: new Uint8Array(pt) };
  }
  return {
    seal,
    open,
    // The three calls the ESDK KMS keyring makes, in the AWS SDK v3 shape.
    client: {
      async generateDataKey({ KeyId, NumberOfBytes, EncryptionContext }) {
        const Plaintext = new Uint8Array(randomBytes(NumberOfBytes));
        return { KeyId, Plaintext, CiphertextBlob: seal(KeyId, Plaintext, EncryptionContext) };
      },
      async encrypt({ KeyId, Plaintext, EncryptionContext }) {
        return { KeyId, CiphertextBlob: seal(KeyId, Plaintext, EncryptionContext) };
      },
      async decrypt({ KeyId, CiphertextBlob, EncryptionContext }) {
        const r = open(CiphertextBlob, EncryptionContext);
        if (KeyId !== undefined && KeyId !== r.keyId) throw new Error('IncorrectKeyException');
        return { KeyId: r.keyId, Plaintext: r.plaintext };
      },
    },
  };
}

module.exports = { makeFakeKms };
