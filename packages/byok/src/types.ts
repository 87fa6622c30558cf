/** What `importHsmKey` takes and what it records. */
import type { ImportParameters, ImportWrappingAlgorithm, KeyOperations, KeyRef, KeyUri } from '@keyport/core';

/** OAEP hashes a PKCS#11 module can wrap with (`@keyport/pkcs11` probes them at start). */
export type OaepHash = 'sha1' | 'sha256';

/**
 * The HSM side, structurally: `@keyport/pkcs11`'s `Pkcs11Provider` satisfies it. Wrapping runs
 * inside the token (C_WrapKey): the caller only ever receives wrapped bytes.
 */
export interface HsmKeyExporter {
  /** URI scheme of the HSM keys ('pkcs11'); the same provider must be registered in `keyport`. */
  readonly scheme: string;
  readonly oaepHashes: readonly OaepHash[];
  wrapKeyForExport(
    ref: KeyRef,
    options: { readonly wrappingPublicKeySpki: Uint8Array; readonly algorithm: ImportWrappingAlgorithm },
    o?: { readonly signal?: AbortSignal },
  ): Promise<Uint8Array>;
}

/** Generate a new AES-256 key in the HSM (CKA_EXTRACTABLE and CKA_SENSITIVE true). */
export interface NewHsmKey {
  readonly create: {
    readonly name: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly description?: string;
  };
}

/** Take an existing AES-256 HSM key (it must have been created exportable). */
export interface ExistingHsmKey {
  readonly uri: KeyUri;
}

export interface ImportTarget {
  /**
   * The key to import into, created with `external: true` through the same `keyport`
   * (`pending_import`). For hcvault the pending key lives in that provider instance until the
   * import creates it on the server (transit has no key without material).
   */
  readonly uri: KeyUri;
}

export interface ImportHsmKeyOptions {
  /** Keyport with the HSM provider and the target's provider registered. */
  readonly keyport: KeyOperations;
  /** The HSM provider instance (the one registered in `keyport`). */
  readonly hsm: HsmKeyExporter;
  readonly hsmKey: NewHsmKey | ExistingHsmKey;
  readonly target: ImportTarget;
  /** The JSON manifest that records the pairing; created when missing, replaced atomically. */
  readonly manifestPath: string;
  /**
   * Import parameters fetched earlier (e.g. approved out of band). Fetched through `keyport`
   * when absent. Their algorithm must be the one keyport chooses (see `planImport`).
   */
  readonly importParameters?: ImportParameters;
  /** Time source for the parameters' expiry check; `new Date()` by default. */
  readonly clock?: () => Date;
  readonly signal?: AbortSignal;
}

/** One line of the manifest: which HSM object is which target key version. */
export interface ByokPairing {
  readonly hsm: {
    readonly uri: KeyUri;
    /** CKA_LABEL of the key object. */
    readonly label: string;
    /** CKA_ID of the key version object, hex. */
    readonly id: string;
    readonly version: string;
  };
  readonly target: {
    readonly uri: KeyUri;
    /** The target's key version holding the material, where the target names versions. */
    readonly version?: string;
    readonly scheme: string;
    readonly spec: 'AES_256';
    /** The algorithm the material was wrapped with for the import. */
    readonly wrappingAlgorithm: ImportWrappingAlgorithm;
  };
  /** ISO 8601. */
  readonly importedAt: string;
}

/**
 * An import sent to the target but not yet recorded as a pairing: written (atomically) just
 * before `importKeyMaterial`, replaced by the pairing just after. One left in the manifest means
 * the process stopped in between (killed, power lost) or the import's answer was lost: the
 * target may hold this HSM key's material. Rerunning `importHsmKey` with the same HSM key and
 * target finishes it (records the pairing, or imports again if the target is still pending).
 */
export interface ByokPendingImport {
  readonly hsm: ByokPairing['hsm'];
  readonly target: Omit<ByokPairing['target'], 'version'>;
  /** ISO 8601: when the wrapped key was sent. */
  readonly startedAt: string;
}

/**
 * An HSM key `importHsmKey` generates for a target (`hsmKey.create`), recorded before the
 * generation and kept until the pairing of the target is recorded. The key is generated with the
 * label `keyport-byok-import` = `marker` (random): a rerun for the same target that meets its
 * name taken takes the key only if it carries this marker, so a key someone else made under the
 * name is never imported. One left in the manifest means the import stopped after (or while)
 * generating the key: killed, the HSM key refused or unreachable, the import refused.
 */
export interface ByokHsmKeyIntent {
  readonly hsm: {
    /** The HSM provider's URI scheme ('pkcs11'). */
    readonly scheme: string;
    /** `hsmKey.create.name`. */
    readonly name: string;
    /** The value of the key's `keyport-byok-import` label, 32 hex digits. */
    readonly marker: string;
  };
  readonly target: { readonly uri: KeyUri };
  /** ISO 8601: when the generation was recorded. */
  readonly startedAt: string;
}

export interface ByokManifest {
  readonly format: 'keyport-byok-manifest/1';
  readonly pairings: readonly ByokPairing[];
  /** Imports started and not recorded as finished; absent when there are none. */
  readonly pending?: readonly ByokPendingImport[];
  /** HSM keys generated (or being generated) for a target not yet paired; absent when none. */
  readonly generating?: readonly ByokHsmKeyIntent[];
}
