/**
 * `importHsmKey`: a key born in the HSM becomes a key of AWS KMS, Vault/OpenBao transit or the
 * local keystore, and the pairing is recorded. Every check that can fail runs before the target
 * is changed, so a refusal leaves nothing imported half-way:
 *
 *   1. plan      algorithm from the target's capabilities and the HSM's OAEP hashes
 *   2. target    must be AES_256 and pending_import (created with `external: true`)
 *   3. params    fetched through Keyport (or given); algorithm, expiry and wrapping key checked
 *   4. HSM key   generate (exportable AES_256; recorded in the manifest first) or check the given one
 *   5. wrap      inside the HSM (C_WrapKey); only wrapped bytes leave the token
 *   6. import    a pending entry in the manifest, then Keyport importKeyMaterial with the
 *                planned algorithm
 *   7. record    the pairing replaces the pending entry (the manifest replaced atomically)
 *
 * The pending entry is what a process killed between 6 and 7 leaves behind: the target then
 * holds the material with no pairing recorded. A rerun with the same HSM key and target finds it
 * and records the pairing (the target is no longer pending_import) or imports again with that HSM
 * key (it still is); another HSM key is refused, naming the one the entry records.
 *
 * A key generated for the target (`create`) is recorded before the generation (`generating`, with
 * a random marker the key carries as its `keyport-byok-import` label) and until the target's
 * pairing is: a run stopped after the generation (killed, the wrap or the import failed) leaves the
 * key in the token, and a rerun for the same target takes the key of that name only when it
 * carries the recorded marker. A key someone else made under the name is refused, never imported.
 */
import { createPublicKey, type KeyObject, randomBytes } from 'node:crypto';
import {
  checkBytes,
  checkDate,
  checkEnum,
  checkFunction,
  checkOptions,
  checkSignal,
  checkString,
  type ErrorCode,
  IMPORT_WRAPPING_ALGORITHMS,
  type ImportParameters,
  invalidArgument,
  type KeyInfo,
  KeyportError,
  keyUriScheme,
  quote,
  toEncryptionContext,
  wrappingKeyWeakness,
} from '@keyport/core';
import { checkHsmKey, generateHsmKey, hsmObject, resolveHsmKey, wrapInHsm } from './hsm-key.js';
import { localToHsmCiphertext } from './local-ciphertext.js';
import {
  checkManifest,
  dropHsmKeyIntent,
  dropPendingImport,
  finishPendingImport,
  lockImportTarget,
  readManifest,
  recordHsmKeyIntent,
  recordPairing,
  recordPendingImport,
} from './manifest.js';
import { type ImportPlan, planImport } from './plan.js';
import { transitToHsmCiphertext } from './transit-ciphertext.js';
import type {
  ByokHsmKeyIntent,
  ByokManifest,
  ByokPairing,
  ByokPendingImport,
  ImportHsmKeyOptions,
  NewHsmKey,
} from './types.js';

const fail = (code: 'InvalidArgument' | 'KeyStateConflict', message: string, keyUri: string) =>
  new KeyportError(code, message, { provider: 'byok', keyUri });

const callOptions = (o: ImportHsmKeyOptions) => (o.signal === undefined ? {} : { signal: o.signal });

async function describeTarget(o: ImportHsmKeyOptions): Promise<KeyInfo> {
  const info = await o.keyport.describeKey(o.target.uri, callOptions(o));
  if (info.spec !== 'AES_256') {
    throw fail(
      'InvalidArgument',
      `the target key is ${info.spec}; the HSM key is AES_256 material`,
      info.uri,
    );
  }
  return info;
}

/** A target that is not pending_import; the manifest's unfinished import of it, if any, named. */
function notPending(info: KeyInfo, interrupted: ByokPendingImport | undefined): KeyportError {
  if (interrupted === undefined) {
    return fail(
      'KeyStateConflict',
      `the target key is ${info.state}; import needs a key created with external: true (pending_import)`,
      info.uri,
    );
  }
  const hsm = quote(interrupted.hsm.uri, 512);
  return fail(
    'KeyStateConflict',
    `the target key is ${info.state}: the manifest records an unfinished import of the HSM key ${hsm} into it (started ${quote(interrupted.startedAt)}), so it may hold that key's material; rerun with hsmKey { uri: ${hsm} } to record that pairing`,
    info.uri,
  );
}

/**
 * Whether the HSM key of the manifest's unfinished import into this target is the one asked for:
 * with `uri`, that very URI; with `create`, the key this manifest records generating for this
 * target (under that name, carrying the recorded marker). The entry's own fields are not enough:
 * whoever can write the manifest could give another key (a production root) the name being
 * created, and the rerun would record that key as the target's.
 */
async function isAskedFor(
  o: ImportHsmKeyOptions,
  manifest: ByokManifest,
  entry: ByokPendingImport,
): Promise<boolean> {
  const key = o.hsmKey;
  if ('uri' in key) return key.uri === entry.hsm.uri;
  const name = key.create.name;
  const intent = manifest.generating?.find(
    (g) => g.target.uri === o.target.uri && g.hsm.scheme === o.hsm.scheme && g.hsm.name === name,
  );
  if (intent === undefined || keyUriScheme(entry.hsm.uri) !== o.hsm.scheme) return false;
  let info: KeyInfo;
  try {
    info = await o.keyport.describeKey(entry.hsm.uri, callOptions(o));
  } catch (e) {
    if (e instanceof KeyportError && e.code === 'NotFound') return false;
    throw e;
  }
  return isGeneratedFor(info, intent) && hsmObject(info).label === name;
}

/** The label a key generated for an import carries: the marker its manifest entry records. */
const HSM_KEY_MARKER_LABEL = 'keyport-byok-import';

/**
 * `create` meeting AlreadyExists where the manifest records an unfinished import of that key into
 * another target (a rerun that announced a new target), or its generation for another target
 * (the key carrying that entry's marker): names that target, where the HSM key went.
 */
function createdBefore(
  e: KeyportError,
  manifest: ByokManifest,
  o: ImportHsmKeyOptions,
  name: string,
  existing: KeyInfo | undefined,
): KeyportError | undefined {
  const entry = manifest.pending?.findLast(
    (p) => keyUriScheme(p.hsm.uri) === o.hsm.scheme && p.hsm.label === name,
  );
  const marker = existing?.labels[HSM_KEY_MARKER_LABEL];
  const generated = manifest.generating?.findLast(
    (g) =>
      g.hsm.scheme === o.hsm.scheme &&
      g.hsm.name === name &&
      g.target.uri !== o.target.uri &&
      marker !== undefined &&
      g.hsm.marker === marker,
  );
  const hsmUri = entry?.hsm.uri ?? existing?.uri ?? e.keyUri ?? name;
  const other = entry?.target.uri ?? generated?.target.uri;
  if (other === undefined) return undefined;
  return new KeyportError(
    'AlreadyExists',
    `the HSM key ${quote(hsmUri, 512)} already exists: the manifest records an unfinished import of it into ${quote(other, 512)}; rerun with that target to finish it, or with hsmKey { uri } to import it here`,
    { provider: 'byok', keyUri: hsmUri, cause: e },
  );
}

/**
 * `create` meeting a key of that name that is not the one generated for this target: someone
 * else's (or an import's recorded in another manifest). Never imported: its material may be
 * known to whoever made it.
 */
function notGeneratedHere(
  e: KeyportError,
  o: ImportHsmKeyOptions,
  name: string,
  existing: KeyInfo | undefined,
): KeyportError {
  const what =
    existing === undefined
      ? `an object labelled ${quote(name, 512)} already exists in the HSM and is not a whole keyport key`
      : `the HSM key ${quote(existing.uri, 512)} already exists`;
  return new KeyportError(
    'AlreadyExists',
    `${what}, and this manifest does not record generating it for ${quote(o.target.uri, 512)} (a key generated for an import carries the label ${HSM_KEY_MARKER_LABEL} with the marker the manifest records): it is not imported; choose another name, or name the key with hsmKey { uri } if you know it is yours to import`,
    { provider: 'byok', keyUri: existing?.uri ?? e.keyUri, cause: e },
  );
}

/**
 * A run stopped inside the generation of the key this manifest records generating for the
 * target (SIGKILL between the token's C_GenerateKey and the key's metadata) left objects under
 * the name that are not a whole keyport key: never wrapped, never imported, and in the way of the
 * rerun. Said as such, with how to clear it, not as a key someone else made.
 */
function halfMade(e: KeyportError, o: ImportHsmKeyOptions, name: string): KeyportError {
  const label = quote(name, 512);
  return new KeyportError(
    'AlreadyExists',
    `the manifest records generating the HSM key ${label} for ${quote(o.target.uri, 512)}, and objects labelled ${label} are in the HSM but are not a whole keyport key: a run was stopped half-way through generating it (the key without its metadata), so it was never wrapped nor imported; remove the objects labelled ${label} from the token (pkcs11-tool --login --list-objects shows them; pkcs11-tool --login --delete-object --type secrkey --label <name>, and --type data for a metadata object) and rerun the same import, which generates the key again`,
    { provider: 'byok', keyUri: e.keyUri, cause: e },
  );
}

/**
 * The key an AlreadyExists names, as the HSM provider describes it; `partial` when the provider
 * finds no whole keyport key under the name (NotFound: no metadata; KeyStateConflict: objects it
 * cannot read as one key); undefined when it cannot tell.
 */
async function existingHsmKey(
  o: ImportHsmKeyOptions,
  e: KeyportError,
): Promise<KeyInfo | 'partial' | undefined> {
  const uri = e.keyUri;
  if (uri === undefined) return undefined;
  try {
    if (keyUriScheme(uri) !== o.hsm.scheme) return undefined;
    return await o.keyport.describeKey(uri, callOptions(o));
  } catch (d) {
    return d instanceof KeyportError && (d.code === 'NotFound' || d.code === 'KeyStateConflict')
      ? 'partial'
      : undefined;
  }
}

/**
 * Generates the HSM key for this target, recorded first (see `ByokHsmKeyIntent`). A name already
 * taken by the key a stopped run generated for this target (it carries the recorded marker) is
 * that key; taken by any other, refused. The record is taken back when the HSM refused the
 * generation (nothing was made), so such a refusal leaves the manifest as it was; it stays
 * whenever the key was (or may have been) generated, until the target's pairing is recorded.
 */
async function generateForTarget(
  o: ImportHsmKeyOptions,
  manifest: ByokManifest,
  key: NewHsmKey,
): Promise<KeyInfo> {
  const name = key.create.name;
  const { intent, added } = await recordHsmKeyIntent(
    o.manifestPath,
    { scheme: o.hsm.scheme, name, targetUri: o.target.uri },
    o.signal,
  );
  const takeBack = async (): Promise<void> => {
    if (added) await dropHsmKeyIntent(o.manifestPath, intent).catch(() => undefined);
  };
  const labels = { ...(key.create.labels ?? {}), [HSM_KEY_MARKER_LABEL]: intent.hsm.marker };
  let info: KeyInfo;
  try {
    info = await generateHsmKey(o.keyport, o.hsm, { create: { ...key.create, labels } }, o.signal);
  } catch (e) {
    if (!(e instanceof KeyportError) || !REFUSED.has(e.code)) throw e;
    if (e.code !== 'AlreadyExists') {
      await takeBack();
      throw e;
    }
    const found = await existingHsmKey(o, e);
    const existing = found === 'partial' ? undefined : found;
    if (existing === undefined || !isGeneratedFor(existing, intent)) {
      await takeBack();
      // `added` false: the entry was there before this run, which holds the target's lock, so
      // the half-made objects are what an earlier run of this import left.
      throw (
        createdBefore(e, manifest, o, name, existing) ??
        (found === 'partial' && !added ? halfMade(e, o, name) : notGeneratedHere(e, o, name, existing))
      );
    }
    info = existing;
  }
  return checkHsmKey(info);
}

const isGeneratedFor = (info: KeyInfo, intent: ByokHsmKeyIntent): boolean =>
  Object.hasOwn(info.labels, HSM_KEY_MARKER_LABEL) && info.labels[HSM_KEY_MARKER_LABEL] === intent.hsm.marker;

/**
 * Codes that say the target refused the import: its material is not this import's. Any other
 * (Aborted, Timeout, Unavailable, Internal, a foreign error) leaves unknown whether it landed.
 * Trusting a refusal keeps a loser of two imports into one target from keeping an entry a rerun
 * would turn into a false pairing. An `AlreadyExists` whose target proves to hold this HSM key's
 * material (`landedBefore`: an earlier import of it landed unseen) is no refusal: the pairing is
 * recorded. Where no proof is possible (AWS KMS), such an import leaves no entry.
 */
const REFUSED: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'NotFound',
  'AlreadyExists',
  'AccessDenied',
  'InvalidArgument',
  'InvalidCiphertext',
  'KeyStateConflict',
  'Unsupported',
  'Throttled',
  'Integrity',
]);

/**
 * Whether the target's material is this HSM key's, where the two share a ciphertext layout
 * (transit and the local keystore write AES-GCM the HSM reads once re-framed): a random probe
 * the target encrypts (its primary version) that the HSM key decrypts is the same key; one it
 * cannot (the tag fails) is another. `unproven` where it cannot be tried: AWS KMS (opaque
 * ciphertexts), a target that does not encrypt (disabled), an HSM key that does not decrypt,
 * no answer. Nothing is kept of the probe: it is random and protects nothing.
 */
async function provePairing(
  o: ImportHsmKeyOptions,
  hsm: ByokPairing['hsm'],
  scheme: string,
  call: { readonly signal?: AbortSignal; readonly timeoutMs?: number },
): Promise<'same' | 'other' | 'unproven'> {
  if (scheme !== 'hcvault' && scheme !== 'local') return 'unproven';
  const probe = randomBytes(32);
  let inHsm: Uint8Array;
  try {
    const sealed = await o.keyport.encrypt(o.target.uri, probe, call);
    inHsm =
      scheme === 'hcvault'
        ? transitToHsmCiphertext(new TextDecoder().decode(sealed.ciphertext), Number(hsm.version))
        : localToHsmCiphertext(sealed.ciphertext, Number(hsm.version));
  } catch {
    return 'unproven';
  }
  try {
    const opened = await o.keyport.decrypt(hsm.uri, inHsm, call);
    return Buffer.from(opened.plaintext).equals(probe) ? 'same' : 'other';
  } catch (e) {
    return e instanceof KeyportError && e.code === 'InvalidCiphertext' ? 'other' : 'unproven';
  }
}

/**
 * An import refused as `AlreadyExists` (transit: the key exists now, though it was
 * pending_import when read under the lock) where the target proves to hold this HSM key's
 * material: an earlier import of it landed (one whose answer was lost, still in flight when a
 * rerun read the target) and this import is done. Returns the target as it is then; undefined
 * when it is not proven (another client's material, or no proof possible): a refusal, as before.
 */
async function landedBefore(
  o: ImportHsmKeyOptions,
  pending: ByokPendingImport,
  error: unknown,
): Promise<KeyInfo | undefined> {
  if (!(error instanceof KeyportError) || error.code !== 'AlreadyExists') return undefined;
  // Not the caller's signal: the target may hold the material, and a pairing left unrecorded
  // costs more than these two bounded calls.
  const call = { timeoutMs: 10_000 };
  let target: KeyInfo;
  try {
    target = await o.keyport.describeKey(o.target.uri, call);
  } catch {
    return undefined;
  }
  if (target.state === 'pending_import' || target.origin === 'provider') return undefined;
  return (await provePairing(o, pending.hsm, pending.target.scheme, call)) === 'same' ? target : undefined;
}

/**
 * After a failed import: the pending entry goes when the import surely did not land (refused, or
 * the target still pending_import), so a refusal leaves the manifest as it was; otherwise it stays
 * for a rerun to finish. Best effort: the import's own error is what the caller gets.
 */
async function settleFailedImport(
  o: ImportHsmKeyOptions,
  pending: ByokPendingImport,
  error: unknown,
): Promise<void> {
  try {
    let landed = !(error instanceof KeyportError && REFUSED.has(error.code));
    if (landed) {
      // Not the caller's signal: it may be what stopped the import.
      const info = await o.keyport.describeKey(o.target.uri, { timeoutMs: 10_000 });
      landed = info.state !== 'pending_import';
    }
    if (!landed) await dropPendingImport(o.manifestPath, pending);
  } catch {
    // The entry stays: a rerun reads the target's state and finishes or replaces it.
  }
}

async function parametersFor(o: ImportHsmKeyOptions, plan: ImportPlan): Promise<ImportParameters> {
  const params =
    o.importParameters ??
    (await o.keyport.getImportParameters(o.target.uri, { algorithm: plan.algorithm }, callOptions(o)));
  if (params.algorithm !== plan.algorithm) {
    throw fail(
      'InvalidArgument',
      `the import parameters are for ${params.algorithm}; this import wraps with ${plan.algorithm}`,
      o.target.uri,
    );
  }
  checkNotExpired(o, params);
  checkWrappingKey(params.wrappingPublicKey, o.target.uri);
  return params;
}

/**
 * Read when the parameters arrive and again just before the wrap: between the two the run may
 * wait for the manifest's lock and the HSM may generate the key, and key material is never
 * wrapped under parameters past their expiry.
 */
function checkNotExpired(o: ImportHsmKeyOptions, params: ImportParameters): void {
  const now: unknown = (o.clock ?? (() => new Date()))();
  // An invalid Date compares false with everything: it would let expired parameters through.
  if (!(now instanceof Date) || Number.isNaN(now.getTime()))
    throw invalidArgument('options.clock', 'expected a function returning a valid Date');
  if (
    params.expiresAt !== undefined &&
    (!(params.expiresAt instanceof Date) || Number.isNaN(params.expiresAt.getTime()))
  )
    throw invalidArgument('options.importParameters.expiresAt', 'expected a valid Date');
  if (params.expiresAt !== undefined && params.expiresAt.getTime() <= now.getTime()) {
    throw fail(
      'InvalidArgument',
      `the import parameters expired at ${params.expiresAt.toISOString()}; fetch new ones`,
      o.target.uri,
    );
  }
}

/**
 * The HSM wraps under any RSA key it is given, and parameters can come from the caller, so a key
 * core's rule calls weak (`wrappingKeyWeakness`), or one larger than any target hands out, is
 * refused here, before anything is generated or wrapped.
 */
function checkWrappingKey(spki: Uint8Array, keyUri: string): void {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    throw fail('InvalidArgument', 'the wrapping public key is not an SPKI DER RSA key', keyUri);
  }
  const weakness = wrappingKeyWeakness(key);
  if (weakness !== undefined) throw fail('InvalidArgument', weakness, keyUri);
}

const OPTIONS = {
  keyport: true,
  hsm: true,
  hsmKey: true,
  target: true,
  manifestPath: true,
  importParameters: true,
  clock: true,
  signal: true,
} as const satisfies Record<keyof ImportHsmKeyOptions, true>;

const NEW_HSM_KEY = { name: true, labels: true, description: true } as const satisfies Record<
  keyof NewHsmKey['create'],
  true
>;

const IMPORT_PARAMETERS = {
  keyUri: true,
  algorithm: true,
  wrappingPublicKey: true,
  importToken: true,
  expiresAt: true,
} as const satisfies Record<keyof ImportParameters, true>;

/**
 * The key to generate: a misspelt field (`lables`) or a wrong type would otherwise reach the
 * HSM's createKey only after the target was read.
 */
function checkNewHsmKey(value: unknown): NewHsmKey['create'] {
  const c = checkOptions(value, 'options.hsmKey.create', NEW_HSM_KEY);
  if (value === undefined) throw invalidArgument('options.hsmKey.create', 'expected { name }');
  const labels =
    c.labels !== undefined ? toEncryptionContext(c.labels, 'options.hsmKey.create.labels') : undefined;
  // The marker importHsmKey sets: a caller's value would be overwritten, or would pass for one.
  if (labels !== undefined && Object.hasOwn(labels, HSM_KEY_MARKER_LABEL))
    throw invalidArgument(
      'options.hsmKey.create.labels',
      `${HSM_KEY_MARKER_LABEL} is the label importHsmKey sets on the key it generates`,
    );
  return {
    name: checkString(c.name, 'options.hsmKey.create.name', { min: 1 }),
    ...(labels !== undefined ? { labels } : {}),
    ...(c.description !== undefined
      ? { description: checkString(c.description, 'options.hsmKey.create.description', { max: 8192 }) }
      : {}),
  };
}

/** Parameters given by the caller: the fields getImportParameters answers, each of its type. */
function checkImportParameters(value: unknown): ImportParameters {
  const option = 'options.importParameters';
  const p = checkOptions(value, option, IMPORT_PARAMETERS);
  if (p.keyUri !== undefined) checkString(p.keyUri, `${option}.keyUri`, { min: 1 });
  checkEnum(p.algorithm, `${option}.algorithm`, IMPORT_WRAPPING_ALGORITHMS);
  checkBytes(p.wrappingPublicKey, `${option}.wrappingPublicKey`);
  if (p.importToken !== undefined) checkBytes(p.importToken, `${option}.importToken`);
  if (p.expiresAt !== undefined) checkDate(p.expiresAt, `${option}.expiresAt`);
  return p as unknown as ImportParameters;
}

/**
 * The options, checked before anything is touched: a missing or misspelt field would otherwise
 * fail as a TypeError half-way, or (a manifest path that is not a string) only once the target
 * holds the material. Returns a prototype-free copy read once (accessors are refused).
 */
function checkImportOptions(value: unknown): ImportHsmKeyOptions {
  const o = checkOptions(value, 'options', OPTIONS);
  const object = (v: unknown, option: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null) throw invalidArgument(option, 'expected an object');
    return v as Record<string, unknown>;
  };
  object(o.keyport, 'options.keyport');
  const hsm = object(o.hsm, 'options.hsm');
  // wrapKeyForExport too: without it the failure would be a TypeError after the HSM key was made.
  if (
    typeof hsm.scheme !== 'string' ||
    !Array.isArray(hsm.oaepHashes) ||
    typeof hsm.wrapKeyForExport !== 'function'
  )
    throw invalidArgument('options.hsm', 'expected the PKCS#11 provider registered in keyport');
  const hsmKey = checkOptions(o.hsmKey, 'options.hsmKey', { create: true, uri: true });
  if ((hsmKey.create === undefined) === (hsmKey.uri === undefined))
    throw invalidArgument('options.hsmKey', 'expected { create: { name } } or { uri }');
  if (hsmKey.uri !== undefined) checkString(hsmKey.uri, 'options.hsmKey.uri', { min: 1 });
  else hsmKey.create = checkNewHsmKey(hsmKey.create);
  const target = checkOptions(o.target, 'options.target', { uri: true });
  checkString(target.uri, 'options.target.uri', { min: 1 });
  checkString(o.manifestPath, 'options.manifestPath', { min: 1 });
  if (o.importParameters !== undefined) o.importParameters = checkImportParameters(o.importParameters);
  if (o.clock !== undefined) checkFunction(o.clock, 'options.clock');
  if (o.signal !== undefined) checkSignal(o.signal, 'options.signal');
  return { ...o, hsmKey, target } as unknown as ImportHsmKeyOptions;
}

/** Imports an HSM key into the target and records the pairing; returns the manifest entry. */
export async function importHsmKey(options: ImportHsmKeyOptions): Promise<ByokPairing> {
  const o = checkImportOptions(options);
  const plan = planImport(o.keyport, o.hsm.oaepHashes, o.target);
  // The manifest is checked first: one that is damaged or unreadable is refused before the target
  // holds material whose pairing could then not be recorded.
  await checkManifest(o.manifestPath);
  const lock = await lockImportTarget(o.manifestPath, o.target.uri, o.signal);
  try {
    // Read again under the lock: a run into this target that held it may have finished since.
    return await importLocked(o, plan, await readManifest(o.manifestPath));
  } finally {
    await lock.release();
  }
}

/** `importHsmKey` holding the lock of its target. */
async function importLocked(
  o: ImportHsmKeyOptions,
  plan: ImportPlan,
  manifest: ByokManifest,
): Promise<ByokPairing> {
  const interrupted = manifest.pending?.findLast((p) => p.target.uri === o.target.uri);
  // The target first, then its parameters: a refused target or refused parameters (another
  // algorithm, expired, a weak wrapping key) must not leave a freshly generated HSM key behind,
  // whose name a retry would then find taken.
  const target = await describeTarget(o);
  if (target.state !== 'pending_import') {
    // A material the provider generated was never imported: the entry is stale, not finished.
    if (
      interrupted !== undefined &&
      target.origin !== 'provider' &&
      (await isAskedFor(o, manifest, interrupted))
    )
      return finishInterrupted(o, interrupted, target);
    throw notPending(target, interrupted);
  }
  const params = await parametersFor(o, plan);
  // A key an interrupted run generated for this target is found by generateForTarget (its name
  // taken, the recorded marker on it), never taken from the pending entry's URI.
  const hsmKey =
    'create' in o.hsmKey
      ? await generateForTarget(o, manifest, o.hsmKey)
      : await resolveHsmKey(o.keyport, o.hsm, o.hsmKey, o.signal);

  checkNotExpired(o, params);
  const wrapped = await wrapInHsm(
    o.hsm,
    { uri: hsmKey.uri, version: hsmKey.primaryVersion as string },
    params.wrappingPublicKey,
    plan.algorithm,
    o.signal,
  );
  // Recorded before the import, so a process killed once the target holds the material leaves
  // a record of which HSM key it holds (a rerun finishes it); a manifest that cannot take it
  // stops the import here, with the target untouched.
  const pending: ByokPendingImport = {
    hsm: hsmObject(hsmKey),
    target: { uri: o.target.uri, scheme: plan.scheme, spec: 'AES_256', wrappingAlgorithm: plan.algorithm },
    startedAt: new Date().toISOString(),
  };
  await recordPendingImport(o.manifestPath, pending, o.signal);
  let imported: KeyInfo;
  try {
    imported = await o.keyport.importKeyMaterial(
      o.target.uri,
      {
        wrappedMaterial: wrapped,
        algorithm: plan.algorithm,
        ...(params.importToken !== undefined ? { importToken: params.importToken } : {}),
      },
      callOptions(o),
    );
  } catch (e) {
    const landed = await landedBefore(o, pending, e);
    if (landed === undefined) {
      await settleFailedImport(o, pending, e);
      throw e;
    }
    imported = landed;
  }

  const pairing: ByokPairing = {
    hsm: pending.hsm,
    target: {
      uri: o.target.uri,
      ...(imported.primaryVersion !== undefined ? { version: imported.primaryVersion } : {}),
      scheme: plan.scheme,
      spec: 'AES_256',
      wrappingAlgorithm: plan.algorithm,
    },
    importedAt: new Date().toISOString(),
  };
  try {
    // Not the caller's signal: the target holds the material now, and a pairing left unrecorded
    // costs more than the lock's bounded wait (10 s, then the error below with the pairing).
    await recordPairing(o.manifestPath, pairing);
  } catch (e) {
    // The target holds the material now: say so, and give the pairing to record (it names
    // objects and versions, no key material), whatever stopped the write (a full disk, a
    // manifest damaged or replaced since it was read). The pending entry, where it was written,
    // lets a rerun with the same arguments record it too.
    throw new KeyportError(
      'Unavailable',
      `the key was imported into ${o.target.uri} but the pairing could not be recorded in the manifest; record it with recordPairing (or rerun importHsmKey with the same HSM key and target once the manifest is writable): ${JSON.stringify(pairing)}`,
      { provider: 'byok', keyUri: o.target.uri, retryable: false, cause: e },
    );
  }
  return pairing;
}

/**
 * The rerun of an import that landed but was not recorded: its pending entry becomes the pairing.
 * The entry was written just before the import was sent, and the target, then pending_import,
 * now holds material it did not generate itself.
 */
async function finishInterrupted(
  o: ImportHsmKeyOptions,
  entry: ByokPendingImport,
  target: KeyInfo,
): Promise<ByokPairing> {
  // Another client may have imported into the target after this import failed unseen (transit
  // names a key anyone can create): the entry says the material may be there, not that it is.
  // A target the manifest pairs with another HSM key is refused below, naming that key.
  const pairedElsewhere = (await readManifest(o.manifestPath)).pairings.some(
    (p) => p.target.uri === o.target.uri && p.hsm.uri !== entry.hsm.uri,
  );
  if (
    !pairedElsewhere &&
    (await provePairing(o, entry.hsm, entry.target.scheme, callOptions(o))) === 'other'
  ) {
    throw fail(
      'KeyStateConflict',
      `the target key holds material it did not generate, but not the HSM key ${quote(entry.hsm.uri, 512)} of the manifest's unfinished import into it: a test encryption with its primary version does not decrypt with that HSM key (another client imported into it); the pairing is not recorded`,
      target.uri,
    );
  }
  const pairing: ByokPairing = {
    hsm: entry.hsm,
    target: {
      uri: o.target.uri,
      ...(target.primaryVersion !== undefined ? { version: target.primaryVersion } : {}),
      scheme: entry.target.scheme,
      spec: 'AES_256',
      wrappingAlgorithm: entry.target.wrappingAlgorithm,
    },
    importedAt: entry.startedAt,
  };
  await finishPendingImport(o.manifestPath, pairing, o.signal);
  return pairing;
}
