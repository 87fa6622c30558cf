/**
 * Rewrap: add and/or remove recipients without touching the body. One trusted EDK is
 * unwrapped, the new recipients wrap the same data key, the header is written again with a
 * new authentication tag (it covers the EDKs), and the body bytes are copied as they are.
 *
 * Signed suites (0x0578): the original signing key is gone after seal, so rewrap makes a new
 * signing key. Its public key is part of the encryption context, which every EDK's wrap is
 * bound to, so every kept EDK is wrapped again too (KMS EDKs through `keys`, raw ones by a
 * matching recipient in `trust` or `add`), the old signature is verified while the body is
 * copied, and the new footer signs the new header and the unchanged body.
 */
import type { KeyObject } from 'node:crypto';
import { type EncryptionContext, KeyportError, quote } from '@keyport/core';
import { gcmTag } from './aead.js';
import { bytesEqual, invalidCiphertext, u32be, u64be, utf8Decode, utf8Encode } from './bytes.js';
import { ChunkQueue } from './chunk-queue.js';
import { serializeOpenedContext } from './context-codec.js';
import { SEQUENCE_END } from './frames.js';
import { CONTENT_FRAMED, type EncryptedDataKey, type ParsedHeader, serializeHeaderBody } from './header.js';
import type { ResolvedLimits } from './limits.js';
import { type RecipientLike, type TrustEntry, toRecipient, toTrusted } from './materials.js';
import { type OpenOptions, readVerifiedHeader } from './open-header.js';
import { checkAborted, checkSource, listOption, REWRAP_OPTION_NAMES, readOptions } from './options.js';
import { AWS_KMS_PROVIDER_ID, kmsRecipient } from './recipients/kms.js';
import { type Recipient, type RecipientEnv, recipientEnv } from './recipients/recipient.js';
import { generateSigningKey, newSigner, newVerifier } from './signing.js';
import { PUBLIC_KEY_CONTEXT_KEY } from './suites.js';

export interface RewrapOptions extends Omit<OpenOptions, 'concurrency'> {
  /** Recipients to add (wrapping the same data key). */
  readonly add?: readonly RecipientLike[];
  /** EDKs matching any of these are dropped. */
  readonly remove?: readonly TrustEntry[];
}

/**
 * Copies the body's frames as they are, checking only their structure and the open limits:
 * each piece is buffered whole before it is passed on, so a non-framed body claiming a huge
 * length must be refused before it is buffered (without the check a stream kept every byte
 * it was sent), and the frame count is bounded as on open.
 */
async function* bodyBytes(
  queue: ChunkQueue,
  header: ParsedHeader,
  limits: ResolvedLimits,
): AsyncGenerator<Uint8Array> {
  if (header.contentType !== CONTENT_FRAMED) {
    await queue.need(20);
    const v = queue.view(20);
    const length = u64be(v, 12);
    if (length > limits.maxNonFramedBytes) {
      throw invalidCiphertext(`non-framed body is larger than ${limits.maxNonFramedBytes} bytes`);
    }
    const size = 20 + length + 16;
    await queue.need(size);
    yield Uint8Array.from(queue.view(size));
    queue.consume(size);
    return;
  }
  for (let expected = 1; ; expected++) {
    if (expected > limits.maxFrames)
      throw invalidCiphertext(`the message has more than ${limits.maxFrames} frames`);
    await queue.need(4);
    const final = u32be(queue.view(4), 0) === SEQUENCE_END;
    const prefix = final ? 24 : 16;
    await queue.need(prefix);
    const head = queue.view(prefix);
    if (u32be(head, final ? 4 : 0) !== expected) throw invalidCiphertext('frame out of sequence');
    const length = final ? u32be(head, 20) : header.frameLength;
    if (length > header.frameLength) throw invalidCiphertext('final frame is longer than the frame length');
    const size = prefix + length + 16;
    await queue.need(size);
    yield Uint8Array.from(queue.view(size));
    queue.consume(size);
    if (final) return;
  }
}

/** An aws-kms recipient's id: this prefix, then the key ARN (see kmsRecipient). */
const KMS_ID_PREFIX = `${AWS_KMS_PROVIDER_ID}:`;

/**
 * The recipient that can wrap again for a kept EDK of a signed message. An aws-kms multi-Region
 * key also matches its replicas' EDKs, so the recipient for exactly the EDK's ARN is taken
 * first: otherwise a message sealed to replicas in two regions, both trusted, came out of the
 * rewrap wrapped twice under the first region's key and not at all under the other's.
 */
function rewrapperFor(edk: EncryptedDataKey, candidates: readonly Recipient[]): Recipient {
  const usable = (r: Recipient) => r.matches(edk) && !r.id.startsWith('any:');
  const exact =
    edk.providerId === AWS_KMS_PROVIDER_ID
      ? candidates.find(
          (r) =>
            r.id.startsWith(KMS_ID_PREFIX) &&
            bytesEqual(utf8Encode(r.id.slice(KMS_ID_PREFIX.length)), edk.providerInfo) &&
            usable(r),
        )
      : undefined;
  const found = exact ?? candidates.find(usable);
  if (found !== undefined) return found;
  // A key the message merely names is used only when the caller opted into discovery for its
  // scheme (`anyKeyOf`): otherwise whoever sealed the message would choose which key, and which
  // endpoint, this rewrap calls.
  const discovered = candidates.some((r) => r.id.startsWith('any:') && r.matches(edk));
  if (discovered && edk.providerId === AWS_KMS_PROVIDER_ID)
    return kmsRecipient(`aws-kms://${utf8Decode(edk.providerInfo)}`);
  if (discovered && edk.providerId.startsWith('keyport:')) return kmsRecipient(utf8Decode(edk.providerInfo));
  throw new KeyportError(
    'InvalidArgument',
    `rewrapping a signed message re-wraps every kept key; trust a recipient for ${quote(edk.providerId)} (its key, or anyKeyOf its scheme)`,
  );
}

/** Equal for byte-identical EDKs only (the provider id is length-prefixed, base64 has no ':'). */
function edkIdentity(e: EncryptedDataKey): string {
  const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64');
  return `${e.providerId.length}:${e.providerId}:${b64(e.providerInfo)}:${b64(e.ciphertext)}`;
}

/** What a rewrap keeps, and for a signed message who wraps each kept EDK again. */
interface RewrapPlan {
  readonly kept: readonly EncryptedDataKey[];
  /** Signed suites: the recipients that wrap the kept EDKs again, once each; undefined when unsigned. */
  readonly rewrappers: readonly Recipient[] | undefined;
  /** The `add` recipients that wrap the data key: each once, none that a kept EDK already serves. */
  readonly adders: readonly Recipient[];
}

/**
 * Everything a rewrap refuses that the authenticated header decides: v1, no recipient left, a
 * kept EDK of a signed message that no recipient can wrap again, more EDKs than `open` with the
 * same limits would read. Checked before any wrap starts:
 * found part-way through the wraps, the refusal left the earlier ones running (billed KMS calls
 * for a rewrap that had failed), and a wrap that then failed was a rejection nobody handled,
 * which ends a Node process. Not before the header's tag is checked (which needs the data key):
 * a header changed in transit is InvalidCiphertext, never a refusal of the caller's options.
 *
 * What is kept is kept once: a byte-identical copy of a kept EDK opens nothing the first does
 * not, and for a signed message each kept EDK costs a wrap (a billed KMS call), so a sender
 * repeating one EDK up to the EDK limit made every rewrap of the message pay that many calls.
 * For the same reason a signed message's kept EDKs are wrapped again once per recipient (two
 * EDKs of one key, or a key also in `add`, give one wrap, not two).
 *
 * An `add` recipient is asked once however often it is named, and not at all when the message
 * is unsigned and keeps an EDK that recipient matches: that EDK opens the message already, and a
 * second one would be a billed call for nothing and one more EDK towards the limit each time a
 * nightly job adds the same key. (Signed: the kept EDK is wrapped again anyway, by that adder.)
 * To wrap a kept recipient afresh, name it in both `remove` and `add`.
 */
function planRewrap(
  h: ParsedHeader,
  trusted: readonly Recipient[],
  removers: readonly Recipient[],
  adders: readonly Recipient[],
  limits: ResolvedLimits,
): RewrapPlan {
  if (h.suite.messageFormat !== 2) {
    throw new KeyportError(
      'InvalidArgument',
      'rewrap writes format 2.0 only; migrate v1 messages by open and seal',
    );
  }
  // Sets, not pairwise comparisons: with maxEncryptedDataKeys raised to 65535, comparing each
  // EDK with every one kept before it is 2 * 10^9 comparisons for one hostile header.
  const seen = new Set<string>();
  const kept: EncryptedDataKey[] = [];
  for (const e of h.encryptedDataKeys) {
    if (removers.some((r) => r.matches(e))) continue;
    const identity = edkIdentity(e);
    if (seen.has(identity)) continue;
    seen.add(identity);
    kept.push(e);
  }
  const named = new Set<string>();
  const adding: Recipient[] = [];
  for (const a of adders) {
    if (named.has(a.id)) continue;
    named.add(a.id);
    if (!h.suite.signed && kept.some((e) => a.matches(e))) continue;
    adding.push(a);
  }
  let rewrappers: Recipient[] | undefined;
  if (h.suite.signed) {
    const candidates = [...trusted, ...adding];
    const wrapping = new Set(adding.map((a) => a.id));
    rewrappers = [];
    for (const e of kept) {
      const r = rewrapperFor(e, candidates);
      if (wrapping.has(r.id)) continue;
      wrapping.add(r.id);
      rewrappers.push(r);
    }
  }
  const count = (rewrappers ?? kept).length + adding.length;
  if (count === 0)
    throw new KeyportError('InvalidArgument', 'rewrap would leave the message with no recipient');
  // Written, such a message would be refused by every open with these limits (the default is
  // 16): a nightly `add` of the same key would make a message unreadable after a few weeks.
  if (count > limits.maxEncryptedDataKeys) {
    throw new KeyportError(
      'InvalidArgument',
      `rewrap would write ${count} encrypted data keys, more than maxEncryptedDataKeys (${limits.maxEncryptedDataKeys}) lets open read; remove recipients or raise the limit`,
    );
  }
  return { kept, rewrappers, adders: adding };
}

/**
 * Each recipient wraps the data key, at once. Through an async function, so a recipient whose
 * `wrap` throws instead of rejecting still leaves every other wrap to `Promise.all`.
 */
function wrapAll(
  recipients: readonly Recipient[],
  dataKey: Uint8Array,
  context: EncryptionContext,
  env: RecipientEnv,
): Promise<EncryptedDataKey[]> {
  return Promise.all(recipients.map(async (r) => r.wrap(dataKey, context, env)));
}

/**
 * Rewraps a message arriving as chunks; yields the new message. Signed suites get a new signing
 * key (see the module comment): the old signature is checked after the body has been yielded,
 * and if it fails the stream errors before the footer, so the output never opens.
 */
export async function* rewrapStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  given: RewrapOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  const options = readOptions<RewrapOptions>(given, 'rewrap options', REWRAP_OPTION_NAMES);
  checkSource(source);
  const queue = new ChunkQueue(source, options.signal);
  let failed = false;
  try {
    const removers = listOption(options.remove ?? [], 'remove', toTrusted);
    const adders = listOption(options.add ?? [], 'add', toRecipient);
    const v = await readVerifiedHeader(queue, options, true);
    const dataKey = v.dataKey as Uint8Array;
    const h = v.header;
    try {
      const plan = planRewrap(h, v.trusted, removers, adders, v.limits);
      const { kept, rewrappers } = plan;
      // The wraps bind the message's own context, which open's rules read: not a caller's.
      const env: RecipientEnv = { ...recipientEnv(options), contextFromMessage: true };
      const signingKey = h.suite.signed ? generateSigningKey() : undefined;
      // Every wrap sees the whole context, unstored pairs included (the header stores the rest).
      const context =
        signingKey === undefined
          ? v.context
          : { ...v.context, [PUBLIC_KEY_CONTEXT_KEY]: signingKey.publicKeyBase64 };
      const keptEdks = rewrappers === undefined ? kept : await wrapAll(rewrappers, dataKey, context, env);
      const added = await wrapAll(plan.adders, dataKey, context, env);
      const edks = [...keptEdks, ...added];
      const body = serializeHeaderBody({
        ...h,
        contextBytes:
          signingKey === undefined
            ? h.contextBytes
            : // The message's context as it is (an empty key included), only the public key new.
              serializeOpenedContext({ ...h.context, [PUBLIC_KEY_CONTEXT_KEY]: signingKey.publicKeyBase64 }),
        encryptedDataKeys: edks,
      });
      // The tag covers the pairs the message authenticates without storing, as the old one did.
      const tagged = v.authenticatedOnly.length === 0 ? body : Buffer.concat([body, v.authenticatedOnly]);
      const header = Buffer.concat([body, gcmTag(v.key, new Uint8Array(12), tagged)]);
      const oldVerifier = h.suite.curve === undefined ? undefined : newVerifier(h.suite.curve);
      oldVerifier?.update(v.bytes);
      queue.consume(h.length);
      const signer = signingKey === undefined ? undefined : newSigner();
      signer?.update(header);
      dataKey.fill(0);
      yield header;
      for await (const frame of bodyBytes(queue, h, v.limits)) {
        checkAborted(options.signal);
        oldVerifier?.update(frame);
        signer?.update(frame);
        yield frame;
      }
      if (oldVerifier !== undefined && signer !== undefined && signingKey !== undefined) {
        await queue.need(2);
        const l = queue.view(2);
        const sigLength = (l[0] as number) * 256 + (l[1] as number);
        await queue.need(2 + sigLength);
        const oldSig = queue.view(2 + sigLength).subarray(2);
        if (!oldVerifier.verify({ key: v.verificationKey as KeyObject, dsaEncoding: 'der' }, oldSig)) {
          throw invalidCiphertext('the message signature does not verify');
        }
        queue.consume(2 + sigLength);
        const sig = signer.sign({ key: signingKey.privateKey, dsaEncoding: 'der' });
        const foot = Buffer.allocUnsafe(2 + sig.length);
        foot.writeUInt16BE(sig.length, 0);
        foot.set(sig, 2);
        yield foot;
      }
      if (!(await queue.atEnd())) throw invalidCiphertext('trailing bytes after the end of the message');
    } finally {
      dataKey.fill(0);
    }
  } catch (e) {
    failed = true;
    throw e;
  } finally {
    await queue.close(failed);
  }
}

/** Rewraps a whole message (signed suites: re-signed with a new key, once the old signature verifies). */
export async function rewrapEnvelope(message: Uint8Array, options: RewrapOptions): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of rewrapStream([message], options)) parts.push(p);
  return Buffer.concat(parts);
}
