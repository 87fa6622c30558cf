/**
 * Cryptographic operations: one KMS call each (plus a cached DescribeKey the first time a key's
 * spec is needed). The encryption context is AWS's native EncryptionContext, which AWS binds only
 * to symmetric keys — so a non-empty context on an RSA key is refused (core's rule) rather than
 * silently dropped (local-kms, for one, ignores it).
 */
import {
  assertContextBindable,
  checkedFor,
  type DataKeyRequest,
  type DataKeyResult,
  type DecryptResult,
  dataKeyLength,
  type EncryptionContext,
  type EncryptResult,
  type KeyRef,
  type KeySpec,
  keyportError,
  needs,
  optionalContext,
  type ProviderCallOptions,
  type SignRequest,
  signingAlgorithmFor,
  takeSecretBytes,
} from '@keyport/core';
import { withoutEcho } from './echo.js';
import { answeredBytes, PROVIDER_NAME } from './errors.js';
import { answeredKey, type DriverOp, type InputOf, type KmsRpc, type ResolvedKey } from './rpc.js';
import { encryptionAlgorithmFor } from './specs.js';
import { isAlias, keyArnParts } from './uri.js';

/** Results carry the key ARN AWS answered with: ESDK-compatible EDKs record it as provider info. */
export type AwsEncryptResult = EncryptResult & { readonly keyArn: string };
export type AwsDecryptResult = DecryptResult & { readonly keyArn: string };
export type AwsDataKeyResult = DataKeyResult & { readonly keyArn: string };

export interface ReEncryptRequest {
  readonly sourceContext?: EncryptionContext;
  readonly destination: KeyRef;
  readonly destinationContext?: EncryptionContext;
}

export interface ReEncryptResult {
  readonly ciphertext: Uint8Array;
  readonly keyArn: string;
  readonly sourceKeyArn: string;
}

/**
 * A context as core holds it (prototype-free string pairs), checked here as well: the driver and
 * the AWS-only helpers (`reEncrypt`, `generateDataKeyWithoutPlaintext`, whose requests core does
 * not convert) may be handed what core's API accepts, a Map among it. Read with `Object.keys`, a
 * Map has no pairs: its context would be silently dropped and the ciphertext bound to none.
 * Contexts core already checked are taken as they are.
 */
function checkedContext(context: unknown, option: string, keyUri: string): EncryptionContext | undefined {
  return checkedFor(PROVIDER_NAME, keyUri, () => optionalContext(context, option));
}

function contextOf(context: EncryptionContext | undefined): { EncryptionContext?: Record<string, string> } {
  return context !== undefined && Object.keys(context).length > 0
    ? { EncryptionContext: { ...context } }
    : {};
}

/** What AWS takes as a plaintext or a message (Encrypt, Sign, Verify, GenerateMac, VerifyMac). */
const MAX_PLAINTEXT = 4096;
/** The longest plaintext RSAES_OAEP_SHA_256 encrypts under each RSA key size (AWS's table). */
const MAX_RSA_PLAINTEXT: Partial<Record<KeySpec, number>> = { RSA_2048: 190, RSA_3072: 318, RSA_4096: 446 };
/** The longest ciphertext blob AWS takes (Decrypt, ReEncrypt). */
const MAX_CIPHERTEXT = 6144;

/**
 * Refuses bytes AWS would refuse for their size, before any request: an endpoint may echo a
 * refused value in its error (local-kms quotes the whole plaintext or message, which would then
 * sit in the error's cause and in every log printing it), and local-kms answers an RSA plaintext
 * too long for the key with a retried InternalFailure. The message says the size, never the bytes.
 */
function checkSize(bytes: Uint8Array, what: string, max: number, key: ResolvedKey): void {
  needs(
    bytes.length >= 1 && bytes.length <= max,
    `AWS KMS takes a ${what} of 1 to ${max} bytes, not ${bytes.length}`,
    {
      provider: PROVIDER_NAME,
      keyUri: key.uri,
    },
  );
}

/** A ciphertext of a size no AWS KMS ciphertext has cannot open: refused as one that does not. */
function checkCiphertextSize(ciphertext: Uint8Array, key: ResolvedKey): void {
  if (ciphertext.length < 1 || ciphertext.length > MAX_CIPHERTEXT)
    throw keyportError(
      'InvalidCiphertext',
      `an AWS KMS ciphertext is 1 to ${MAX_CIPHERTEXT} bytes, not ${ciphertext.length}`,
      { provider: PROVIDER_NAME, keyUri: key.uri, retryable: false },
    );
}

/** EncryptionAlgorithm + EncryptionContext for a key of this spec. */
function encryptionParams(key: ResolvedKey, spec: KeySpec, context: EncryptionContext | undefined) {
  assertContextBindable(spec, context, 'none', { provider: PROVIDER_NAME, keyUri: key.uri });
  return { EncryptionAlgorithm: encryptionAlgorithmFor(spec), ...contextOf(context) };
}

/**
 * Encrypt or Decrypt, whose requests depend on the key's (cached) spec. KeyId is always sent, so
 * AWS refuses a ciphertext made under any other key; a usage error means an alias was moved to a
 * key of another spec, so the cached spec is forgotten.
 */
async function crypt<Op extends 'Encrypt' | 'Decrypt'>(
  rpc: KmsRpc,
  ref: KeyRef,
  op: Op,
  data: Omit<InputOf<Op>, 'KeyId'>,
  context: EncryptionContext | undefined,
  signal: AbortSignal,
) {
  const key = await rpc.resolve(ref);
  // before the spec lookup: a context that is no context is refused without any request
  const checked = checkedContext(context, 'req.context', key.uri);
  const bytes = op === 'Encrypt' ? (data as { Plaintext: Uint8Array }).Plaintext : undefined;
  if (bytes !== undefined) checkSize(bytes, 'plaintext', MAX_PLAINTEXT, key);
  else checkCiphertextSize((data as { CiphertextBlob: Uint8Array }).CiphertextBlob, key);
  const spec = await rpc.specOf(key, signal);
  const rsaMax = MAX_RSA_PLAINTEXT[spec];
  if (bytes !== undefined && rsaMax !== undefined)
    checkSize(bytes, `plaintext for an ${spec} key (RSAES_OAEP_SHA_256)`, rsaMax, key);
  const params = encryptionParams(key, spec, checked);
  const input = { ...data, KeyId: key.keyId, ...params } as InputOf<Op>;
  try {
    return { out: await rpc.send(key, op, input, signal), key };
  } catch (e) {
    if ((e as { name?: unknown }).name === 'InvalidKeyUsageException') rpc.forget(key);
    // A refusal quoting the plaintext (local-kms does, for values it validates) must not carry it.
    throw bytes === undefined ? e : withoutEcho(e, bytes, 'plaintext');
  }
}

export const encrypt: DriverOp<'encrypt', Promise<AwsEncryptResult>> = async (
  rpc,
  ref,
  plaintext,
  req,
  o,
) => {
  const { out, key } = await crypt(rpc, ref, 'Encrypt', { Plaintext: plaintext }, req.context, o.signal);
  return {
    ciphertext: answeredBytes(out.CiphertextBlob, 'a ciphertext'),
    keyVersion: undefined,
    keyArn: answeredKey(out.KeyId, key, 'a key id'),
  };
};

export const decrypt: DriverOp<'decrypt', Promise<AwsDecryptResult>> = async (
  rpc,
  ref,
  ciphertext,
  req,
  o,
) => {
  const data = { CiphertextBlob: ciphertext };
  const { out, key } = await crypt(rpc, ref, 'Decrypt', data, req.context, o.signal);
  const plaintext = takeSecretBytes(answeredBytes(out.Plaintext, 'a plaintext'));
  try {
    // the plaintext of another key's ciphertext is no answer to this call (the ESDK refuses it too)
    return { plaintext, keyVersion: undefined, keyArn: answeredKey(out.KeyId, key, 'a key id') };
  } catch (e) {
    plaintext.fill(0);
    throw e;
  }
};

/** Data-key lengths follow core's rule (16 to 1024 bytes); AWS allows 1 to 1024. */
function dataKeyInput(key: ResolvedKey, req: DataKeyRequest) {
  const context = checkedContext(req.context, 'req.context', key.uri);
  return { KeyId: key.keyId, NumberOfBytes: dataKeyLength(req.bytes), ...contextOf(context) };
}

export const generateDataKey: DriverOp<'generateDataKey', Promise<AwsDataKeyResult>> = async (
  rpc,
  ref,
  req,
  o,
) => {
  const key = await rpc.resolve(ref);
  const input = dataKeyInput(key, req);
  const out = await rpc.send(key, 'GenerateDataKey', input, o.signal);
  // The SDK decodes it into a view of Node's shared Buffer pool: see core's takeSecretBytes.
  const plaintext = takeSecretBytes(answeredBytes(out.Plaintext, 'a data key'));
  try {
    // A shorter key is a weaker one. Core checks this for a Keyport; the driver may be called
    // without one (as every request check here assumes), so it refuses the answer itself.
    if (plaintext.length !== input.NumberOfBytes)
      throw keyportError(
        'Internal',
        `AWS KMS answered GenerateDataKey with a ${plaintext.length}-byte data key (${input.NumberOfBytes} asked for)`,
        { provider: PROVIDER_NAME, keyUri: key.uri, retryable: false },
      );
    return {
      plaintext,
      wrapped: answeredBytes(out.CiphertextBlob, 'a wrapped data key'),
      keyVersion: undefined,
      keyArn: answeredKey(out.KeyId, key, 'a key id'),
    };
  } catch (e) {
    plaintext.fill(0); // refused: nobody gets to use this key
    throw e;
  }
};

/** A wrapped data key only, for a party that will hold it until someone else unwraps it. */
export async function generateDataKeyWithoutPlaintext(
  rpc: KmsRpc,
  ref: KeyRef,
  req: DataKeyRequest,
  o: ProviderCallOptions,
): Promise<{ wrapped: Uint8Array; keyArn: string }> {
  const key = await rpc.resolve(ref);
  const out = await rpc.send(key, 'GenerateDataKeyWithoutPlaintext', dataKeyInput(key, req), o.signal);
  return {
    wrapped: answeredBytes(out.CiphertextBlob, 'a wrapped data key'),
    keyArn: answeredKey(out.KeyId, key, 'a key id'),
  };
}

/** Provider-side rewrap: the plaintext never leaves KMS. Both keys must be served by one endpoint. */
export async function reEncrypt(
  rpc: KmsRpc,
  source: KeyRef,
  ciphertext: Uint8Array,
  req: ReEncryptRequest,
  o: ProviderCallOptions,
): Promise<ReEncryptResult> {
  const from = await rpc.resolve(source);
  checkCiphertextSize(ciphertext, from);
  const to = await rpc.resolve(req.destination);
  needs(from.route.location === to.route.location, 'ReEncrypt needs both keys in one region and endpoint');
  const sourceContext = checkedContext(req.sourceContext, 'req.sourceContext', from.uri);
  const destinationContext = checkedContext(req.destinationContext, 'req.destinationContext', to.uri);
  const [fromSpec, toSpec] = await Promise.all([rpc.specOf(from, o.signal), rpc.specOf(to, o.signal)]);
  const src = encryptionParams(from, fromSpec, sourceContext);
  const dst = encryptionParams(to, toSpec, destinationContext);
  const input = {
    CiphertextBlob: ciphertext,
    SourceKeyId: from.keyId,
    SourceEncryptionAlgorithm: src.EncryptionAlgorithm,
    SourceEncryptionContext: src.EncryptionContext,
    DestinationKeyId: to.keyId,
    DestinationEncryptionAlgorithm: dst.EncryptionAlgorithm,
    DestinationEncryptionContext: dst.EncryptionContext,
  };
  const out = await rpc.send(from, 'ReEncrypt', input, o.signal);
  return {
    ciphertext: answeredBytes(out.CiphertextBlob, 'a ciphertext'),
    keyArn: answeredKey(out.KeyId, to, 'a key id'),
    sourceKeyArn: answeredKey(out.SourceKeyId, from, 'a source key id'),
  };
}

/**
 * Refuses (`Internal`) a Sign, Verify, GenerateMac, VerifyMac or GetPublicKey answer naming
 * another key than the one asked: another key's public key would be taken as this key's (a
 * verifier then trusts the wrong key), its signature, MAC or verdict as made by this key. These
 * results carry no key ARN, so an answer without a KeyId is taken; so is a bare key id for an
 * alias (moto answers GetPublicKey and the MAC calls so), which only AWS can resolve.
 */
function answeredFor(keyId: unknown, key: ResolvedKey): void {
  if (keyId === undefined) return;
  if (typeof keyId === 'string' && keyArnParts(keyId) === undefined && isAlias(key.keyId)) return;
  answeredKey(keyId as string, key, 'a key id');
}

const messageType = (req: SignRequest): 'DIGEST' | 'RAW' => (req.messageType === 'digest' ? 'DIGEST' : 'RAW');

export const sign: DriverOp<'sign'> = async (rpc, ref, message, req, o) => {
  const key = await rpc.resolve(ref);
  checkSize(message, 'message', MAX_PLAINTEXT, key);
  // core has checked a requested algorithm against the declared ones; AWS checks it fits the key
  const details = { provider: PROVIDER_NAME, keyUri: key.uri };
  const algorithm = req.algorithm ?? signingAlgorithmFor(await rpc.specOf(key, o.signal), undefined, details);
  const input = {
    KeyId: key.keyId,
    Message: message,
    MessageType: messageType(req),
    SigningAlgorithm: algorithm,
  };
  const out = await rpc.send(key, 'Sign', input, o.signal);
  answeredFor(out.KeyId, key);
  return { signature: answeredBytes(out.Signature, 'a signature'), algorithm, keyVersion: undefined };
};

/** AWS answers an invalid signature or MAC with an exception (emulators with a false flag). */
async function validity(
  key: ResolvedKey,
  answer: Promise<{
    SignatureValid?: boolean | undefined;
    MacValid?: boolean | undefined;
    KeyId?: string | undefined;
  }>,
  invalid: string,
) {
  try {
    const out = await answer;
    answeredFor(out.KeyId, key);
    return out.SignatureValid === true || out.MacValid === true;
  } catch (e) {
    if ((e as { name?: unknown }).name === invalid) return false;
    throw e;
  }
}

export const verify: DriverOp<'verify'> = async (rpc, ref, message, signature, req, o) => {
  const key = await rpc.resolve(ref);
  checkSize(message, 'message', MAX_PLAINTEXT, key);
  const input = {
    KeyId: key.keyId,
    Message: message,
    MessageType: messageType(req),
    Signature: signature,
    SigningAlgorithm: req.algorithm,
  };
  return validity(key, rpc.send(key, 'Verify', input, o.signal), 'KMSInvalidSignatureException');
};

export const mac: DriverOp<'mac'> = async (rpc, ref, message, o) => {
  const key = await rpc.resolve(ref);
  checkSize(message, 'message', MAX_PLAINTEXT, key);
  const input = { KeyId: key.keyId, Message: message, MacAlgorithm: 'HMAC_SHA_256' } as const;
  const out = await rpc.send(key, 'GenerateMac', input, o.signal);
  answeredFor(out.KeyId, key);
  return { mac: answeredBytes(out.Mac, 'a MAC'), keyVersion: undefined };
};

export const verifyMac: DriverOp<'verifyMac'> = async (rpc, ref, message, tag, o) => {
  const key = await rpc.resolve(ref);
  checkSize(message, 'message', MAX_PLAINTEXT, key);
  const input = { KeyId: key.keyId, Message: message, Mac: tag, MacAlgorithm: 'HMAC_SHA_256' } as const;
  return validity(key, rpc.send(key, 'VerifyMac', input, o.signal), 'KMSInvalidMacException');
};

/** The public half of an asymmetric key, SPKI DER (GetPublicKey); symmetric keys have none. */
export const getPublicKey: DriverOp<'getPublicKey'> = async (rpc, ref, o) => {
  const key = await rpc.resolve(ref);
  const out = await rpc.send(key, 'GetPublicKey', { KeyId: key.keyId }, o.signal);
  answeredFor(out.KeyId, key);
  return answeredBytes(out.PublicKey, 'a public key');
};
