/**
 * Cryptographic operations: one KMS call each (plus a cached DescribeKey the first time a key's
 * spec is needed). The encryption context is AWS's native EncryptionContext, which AWS binds only
 * to symmetric keys — so a non-empty context on an RSA key is refused rather than silently dropped
 * (local-kms, for one, ignores it).
 */
import {
  type DataKeyRequest,
  type DataKeyResult,
  type DecryptResult,
  type EncryptionContext,
  type EncryptRequest,
  type EncryptResult,
  type KeyRef,
  type KeySpec,
  type MacResult,
  needs,
  type ProviderCallOptions,
  type SigningAlgorithm,
  type SignRequest,
  type SignResult,
  UnsupportedError,
} from '@keyport/core';
import type { ResolvedKey } from './clients.js';
import { answered, PROVIDER_NAME } from './errors.js';
import type { KmsRuntime } from './runtime.js';
import { kmsSdk } from './sdk.js';
import { encryptionAlgorithmFor, isSymmetric, SIGNING_ALGORITHMS_BY_SPEC } from './specs.js';

/** Results carry the key ARN AWS answered with: ESDK-compatible EDKs record it as provider info. */
export interface AwsEncryptResult extends EncryptResult {
  readonly keyArn: string;
}
export interface AwsDecryptResult extends DecryptResult {
  readonly keyArn: string;
}
export interface AwsDataKeyResult extends DataKeyResult {
  readonly keyArn: string;
}

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

function nonEmpty(context: EncryptionContext | undefined): EncryptionContext | undefined {
  return context !== undefined && Object.keys(context).length > 0 ? context : undefined;
}

/** EncryptionAlgorithm + EncryptionContext for a key of this spec. */
function encryptionParams(key: ResolvedKey, spec: KeySpec, context: EncryptionContext | undefined) {
  const ctx = nonEmpty(context);
  if (!isSymmetric(spec) && ctx !== undefined) {
    throw new UnsupportedError('context', 'AWS KMS binds an encryption context only to symmetric keys', {
      provider: PROVIDER_NAME,
      keyUri: key.uri,
    });
  }
  return {
    EncryptionAlgorithm: encryptionAlgorithmFor(spec),
    ...(ctx !== undefined ? { EncryptionContext: { ...ctx } } : {}),
  };
}

/** Runs a call that depended on a cached spec; a usage error means an alias moved, so forget it. */
async function withSpec<T>(
  rt: KmsRuntime,
  key: ResolvedKey,
  signal: AbortSignal,
  run: (spec: KeySpec) => Promise<T>,
) {
  const spec = await rt.specOf(key, signal);
  try {
    return await run(spec);
  } catch (e) {
    if ((e as { name?: unknown }).name === 'InvalidKeyUsageException') rt.forget(key);
    throw e;
  }
}

export async function encrypt(
  rt: KmsRuntime,
  ref: KeyRef,
  plaintext: Uint8Array,
  req: EncryptRequest,
  o: ProviderCallOptions,
): Promise<AwsEncryptResult> {
  const key = await rt.clients.resolve(ref);
  return withSpec(rt, key, o.signal, async (spec) => {
    const out = await key.client.send(
      new (kmsSdk().EncryptCommand)({
        KeyId: key.keyId,
        Plaintext: plaintext,
        ...encryptionParams(key, spec, req.context),
        ...rt.tokens(),
      }),
      { abortSignal: o.signal },
    );
    return {
      ciphertext: answered(out.CiphertextBlob, 'a ciphertext'),
      keyVersion: undefined,
      keyArn: answered(out.KeyId, 'a key id'),
    };
  });
}

export async function decrypt(
  rt: KmsRuntime,
  ref: KeyRef,
  ciphertext: Uint8Array,
  req: EncryptRequest,
  o: ProviderCallOptions,
): Promise<AwsDecryptResult> {
  const key = await rt.clients.resolve(ref);
  return withSpec(rt, key, o.signal, async (spec) => {
    // KeyId is always sent: AWS then refuses a ciphertext made under any other key
    const out = await key.client.send(
      new (kmsSdk().DecryptCommand)({
        KeyId: key.keyId,
        CiphertextBlob: ciphertext,
        ...encryptionParams(key, spec, req.context),
        ...rt.tokens(),
      }),
      { abortSignal: o.signal },
    );
    return {
      plaintext: answered(out.Plaintext, 'a plaintext'),
      keyVersion: undefined,
      keyArn: answered(out.KeyId, 'a key id'),
    };
  });
}

function dataKeyBytes(req: DataKeyRequest): number {
  const bytes = req.bytes ?? 32;
  needs(Number.isInteger(bytes) && bytes >= 1 && bytes <= 1024, 'AWS KMS data keys are 1 to 1024 bytes');
  return bytes;
}

export async function generateDataKey(
  rt: KmsRuntime,
  ref: KeyRef,
  req: DataKeyRequest,
  o: ProviderCallOptions,
): Promise<AwsDataKeyResult> {
  const key = await rt.clients.resolve(ref);
  const context = nonEmpty(req.context);
  const out = await key.client.send(
    new (kmsSdk().GenerateDataKeyCommand)({
      KeyId: key.keyId,
      NumberOfBytes: dataKeyBytes(req),
      ...(context !== undefined ? { EncryptionContext: { ...context } } : {}),
      ...rt.tokens(),
    }),
    { abortSignal: o.signal },
  );
  return {
    plaintext: answered(out.Plaintext, 'a data key'),
    wrapped: answered(out.CiphertextBlob, 'a wrapped data key'),
    keyVersion: undefined,
    keyArn: answered(out.KeyId, 'a key id'),
  };
}

/** A wrapped data key only, for a party that will hold it until someone else unwraps it. */
export async function generateDataKeyWithoutPlaintext(
  rt: KmsRuntime,
  ref: KeyRef,
  req: DataKeyRequest,
  o: ProviderCallOptions,
): Promise<{ wrapped: Uint8Array; keyArn: string }> {
  const key = await rt.clients.resolve(ref);
  const context = nonEmpty(req.context);
  const out = await key.client.send(
    new (kmsSdk().GenerateDataKeyWithoutPlaintextCommand)({
      KeyId: key.keyId,
      NumberOfBytes: dataKeyBytes(req),
      ...(context !== undefined ? { EncryptionContext: { ...context } } : {}),
      ...rt.tokens(),
    }),
    { abortSignal: o.signal },
  );
  return {
    wrapped: answered(out.CiphertextBlob, 'a wrapped data key'),
    keyArn: answered(out.KeyId, 'a key id'),
  };
}

/** Provider-side rewrap: the plaintext never leaves KMS. Both keys must be served by one endpoint. */
export async function reEncrypt(
  rt: KmsRuntime,
  source: KeyRef,
  ciphertext: Uint8Array,
  req: ReEncryptRequest,
  o: ProviderCallOptions,
): Promise<ReEncryptResult> {
  const from = await rt.clients.resolve(source);
  const to = await rt.clients.resolve(req.destination);
  needs(from.client === to.client, 'ReEncrypt needs both keys in one region and endpoint');
  const [fromSpec, toSpec] = await Promise.all([rt.specOf(from, o.signal), rt.specOf(to, o.signal)]);
  const src = encryptionParams(from, fromSpec, req.sourceContext);
  const dst = encryptionParams(to, toSpec, req.destinationContext);
  const out = await from.client.send(
    new (kmsSdk().ReEncryptCommand)({
      CiphertextBlob: ciphertext,
      SourceKeyId: from.keyId,
      SourceEncryptionAlgorithm: src.EncryptionAlgorithm,
      ...(src.EncryptionContext !== undefined ? { SourceEncryptionContext: src.EncryptionContext } : {}),
      DestinationKeyId: to.keyId,
      DestinationEncryptionAlgorithm: dst.EncryptionAlgorithm,
      ...(dst.EncryptionContext !== undefined ? { DestinationEncryptionContext: dst.EncryptionContext } : {}),
      ...rt.tokens(),
    }),
    { abortSignal: o.signal },
  );
  return {
    ciphertext: answered(out.CiphertextBlob, 'a ciphertext'),
    keyArn: answered(out.KeyId, 'a key id'),
    sourceKeyArn: answered(out.SourceKeyId, 'a source key id'),
  };
}

async function signingAlgorithm(
  rt: KmsRuntime,
  key: ResolvedKey,
  requested: SigningAlgorithm | undefined,
  signal: AbortSignal,
): Promise<SigningAlgorithm> {
  if (requested !== undefined) return requested;
  const spec = await rt.specOf(key, signal);
  const algorithms = SIGNING_ALGORITHMS_BY_SPEC[spec];
  if (algorithms?.[0] === undefined) {
    throw new UnsupportedError('sign', `AWS KMS cannot sign with ${spec} keys`, {
      provider: PROVIDER_NAME,
      keyUri: key.uri,
    });
  }
  return algorithms[0];
}

export async function sign(
  rt: KmsRuntime,
  ref: KeyRef,
  message: Uint8Array,
  req: SignRequest,
  o: ProviderCallOptions,
): Promise<SignResult> {
  const key = await rt.clients.resolve(ref);
  const algorithm = await signingAlgorithm(rt, key, req.algorithm, o.signal);
  const out = await key.client.send(
    new (kmsSdk().SignCommand)({
      KeyId: key.keyId,
      Message: message,
      MessageType: req.messageType === 'digest' ? 'DIGEST' : 'RAW',
      SigningAlgorithm: algorithm,
      ...rt.tokens(),
    }),
    { abortSignal: o.signal },
  );
  return { signature: answered(out.Signature, 'a signature'), algorithm, keyVersion: undefined };
}

/** AWS answers an invalid signature with KMSInvalidSignatureException (moto with a false flag). */
export async function verify(
  rt: KmsRuntime,
  ref: KeyRef,
  message: Uint8Array,
  signature: Uint8Array,
  req: SignRequest & { algorithm: SigningAlgorithm },
  o: ProviderCallOptions,
): Promise<boolean> {
  const key = await rt.clients.resolve(ref);
  try {
    const out = await key.client.send(
      new (kmsSdk().VerifyCommand)({
        KeyId: key.keyId,
        Message: message,
        MessageType: req.messageType === 'digest' ? 'DIGEST' : 'RAW',
        Signature: signature,
        SigningAlgorithm: req.algorithm,
        ...rt.tokens(),
      }),
      { abortSignal: o.signal },
    );
    return out.SignatureValid === true;
  } catch (e) {
    if ((e as { name?: unknown }).name === 'KMSInvalidSignatureException') return false;
    throw e;
  }
}

export async function mac(
  rt: KmsRuntime,
  ref: KeyRef,
  message: Uint8Array,
  o: ProviderCallOptions,
): Promise<MacResult> {
  const key = await rt.clients.resolve(ref);
  const out = await key.client.send(
    new (kmsSdk().GenerateMacCommand)({
      KeyId: key.keyId,
      Message: message,
      MacAlgorithm: 'HMAC_SHA_256',
      ...rt.tokens(),
    }),
    { abortSignal: o.signal },
  );
  return { mac: answered(out.Mac, 'a MAC'), keyVersion: undefined };
}

/** AWS answers a wrong MAC with KMSInvalidMacException (local-kms with a false flag). */
export async function verifyMac(
  rt: KmsRuntime,
  ref: KeyRef,
  message: Uint8Array,
  tag: Uint8Array,
  o: ProviderCallOptions,
): Promise<boolean> {
  const key = await rt.clients.resolve(ref);
  try {
    const out = await key.client.send(
      new (kmsSdk().VerifyMacCommand)({
        KeyId: key.keyId,
        Message: message,
        Mac: tag,
        MacAlgorithm: 'HMAC_SHA_256',
        ...rt.tokens(),
      }),
      { abortSignal: o.signal },
    );
    return out.MacValid === true;
  } catch (e) {
    if ((e as { name?: unknown }).name === 'KMSInvalidMacException') return false;
    throw e;
  }
}

/** The public half of an asymmetric key, SPKI DER (GetPublicKey); symmetric keys have none. */
export async function getPublicKey(rt: KmsRuntime, ref: KeyRef, o: ProviderCallOptions): Promise<Uint8Array> {
  const key = await rt.clients.resolve(ref);
  const out = await key.client.send(
    new (kmsSdk().GetPublicKeyCommand)({ KeyId: key.keyId, ...rt.tokens() }),
    {
      abortSignal: o.signal,
    },
  );
  return answered(out.PublicKey, 'a public key');
}
