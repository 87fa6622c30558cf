/**
 * Deliberately broken providers (the local provider with one defect each). Run only by
 * sabotage.test.ts, which checks that the suite FAILS them at the right tests.
 */
import {
  type Capabilities,
  type DataKeyResult,
  type DriverCapabilities,
  type EncryptResult,
  type Grant,
  type GrantOperation,
  type GrantRequest,
  KeyportError,
  type KeyRef,
  type KmsProvider,
  type ProviderCallOptions,
  UnsupportedError,
} from '@keyport/core';

/** The local provider implements every capability interface the defects touch. */
type FullDriver = KmsProvider & DriverCapabilities;

import { LOCAL_CAPABILITIES, type LocalProvider } from '@keyport/local';
import { afterAll } from 'vitest';
import { describeProviderConformance, type ProofTable, uniqueKeyNames } from '../../src/index.js';
import { type TempKeystore, tempKeystore } from '../support/local-keystore.js';

type Defect = Partial<Record<keyof FullDriver, (target: FullDriver, ...args: never[]) => unknown>>;

function broken(provider: KmsProvider, defect: Defect): KmsProvider {
  return new Proxy(provider, {
    get(target, prop, receiver) {
      const replacement = defect[prop as keyof FullDriver];
      if (replacement !== undefined) return (...args: never[]) => replacement(target as FullDriver, ...args);
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * "Ciphertexts" that carry the plaintext in the clear after the real, authenticated ciphertext:
 * `length (4, big-endian) | real ciphertext | plaintext`. Tampering anywhere still fails.
 */
function carry(inner: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(inner.length);
  return Buffer.concat([head, inner, plaintext]);
}

function invalidCiphertext(ref: KeyRef): KeyportError {
  return new KeyportError('InvalidCiphertext', 'the ciphertext does not open', {
    provider: 'local',
    keyUri: ref.uri,
  });
}

async function openCarried(
  t: FullDriver,
  ref: KeyRef,
  ct: Uint8Array,
  req: never,
  o: ProviderCallOptions,
): Promise<unknown> {
  if (ct.length < 4) throw invalidCiphertext(ref);
  const length = Buffer.from(ct).readUInt32BE(0);
  if (4 + length > ct.length) throw invalidCiphertext(ref);
  const opened = await t.decrypt(ref, ct.subarray(4, 4 + length), req, o);
  if (!Buffer.from(opened.plaintext).equals(Buffer.from(ct.subarray(4 + length))))
    throw invalidCiphertext(ref);
  return opened;
}

/** Which grant operation a grantee-side call needs. */
const GRANTED_BY: Partial<Record<keyof FullDriver, GrantOperation>> = {
  encrypt: 'encrypt',
  decrypt: 'decrypt',
  generateDataKey: 'generate_data_key',
  describeKey: 'describe',
};

/**
 * Grantee-side defect: a principal with no grant of its own on a key is let through on anyone
 * else's unconstrained grant for the operation (the grant is checked, not whom it names).
 */
function granteeIgnoring(keystore: TempKeystore, principal: string): Defect {
  const defect: Defect = {};
  for (const [method, operation] of Object.entries(GRANTED_BY) as Array<[keyof FullDriver, GrantOperation]>) {
    defect[method] = async (t: FullDriver, ref: KeyRef, ...rest: never[]) => {
      const call = (p: FullDriver) =>
        (p[method] as (...a: unknown[]) => Promise<unknown>).call(p, ref, ...rest);
      try {
        return await call(t);
      } catch (e) {
        const owner = keystore.owner as (LocalProvider & FullDriver) | undefined;
        if (!(e instanceof KeyportError) || e.code !== 'AccessDenied' || owner === undefined) throw e;
        const grants: Grant[] = [];
        for await (const g of owner.listGrants(ref, { signal: new AbortController().signal })) grants.push(g);
        if (grants.some((g) => g.grantee === principal)) throw e;
        const someone = grants.some((g) => g.operations.includes(operation) && g.constraints === undefined);
        if (!someone) throw e;
        return call(owner);
      }
    };
  }
  return defect;
}

/**
 * Grantee-side defect: refusals are marked retryable, so a caller's retry policy would repeat a
 * call that can only be refused again.
 */
function retryableRefusals(): Defect {
  const defect: Defect = {};
  for (const method of Object.keys(GRANTED_BY) as Array<keyof FullDriver>) {
    defect[method] = async (t: FullDriver, ...args: never[]) => {
      try {
        return await (t[method] as (...a: unknown[]) => Promise<unknown>).apply(t, args);
      } catch (e) {
        if (!(e instanceof KeyportError) || e.code !== 'AccessDenied') throw e;
        throw new KeyportError('AccessDenied', e.message, {
          provider: 'local',
          keyUri: e.keyUri,
          retryable: true,
        });
      }
    };
  }
  return defect;
}

interface Sabotage {
  /** The owner's provider, broken. */
  readonly defect: Defect;
  /** Declared instead of LOCAL_CAPABILITIES (the narrowed declaration the defect hides behind). */
  readonly capabilities?: Capabilities;
  /** Grants are exercised, with grantees opened on the keystore and broken by this defect. */
  readonly grantee?: (keystore: TempKeystore, principal: string) => Defect;
}

const sabotages: Record<string, Sabotage> = {
  // Silently ignores the encryption context.
  'context-dropping': {
    defect: {
      encrypt: (t, ref: KeyRef, pt: Uint8Array, _req: never, o: ProviderCallOptions) =>
        t.encrypt(ref, pt, {}, o),
      decrypt: (t, ref: KeyRef, ct: Uint8Array, _req: never, o: ProviderCallOptions) =>
        t.decrypt(ref, ct, {}, o),
    },
  },
  // Reports the key disabled but keeps using it.
  'disable-ignoring': {
    defect: {
      disableKey: async (t, ref: KeyRef, o: ProviderCallOptions) => ({
        ...(await t.describeKey(ref, o)),
        state: 'disabled',
      }),
      enableKey: (t, ref: KeyRef, o: ProviderCallOptions) => t.describeKey(ref, o),
    },
  },
  // Authenticated but not confidential: ciphertexts and wrapped data keys carry the plaintext.
  'plaintext-carrying': {
    defect: {
      encrypt: async (t, ref: KeyRef, pt: Uint8Array, req: never, o: ProviderCallOptions) => {
        const sealed: EncryptResult = await t.encrypt(ref, pt, req, o);
        return { ...sealed, ciphertext: carry(sealed.ciphertext, pt) };
      },
      decrypt: openCarried,
      generateDataKey: async (t, ref: KeyRef, req: never, o: ProviderCallOptions) => {
        const made: DataKeyResult = await t.generateDataKey(ref, req, o);
        return { ...made, wrapped: carry(made.wrapped, made.plaintext) };
      },
    },
  },
  // A grant lets in every principal without a grant of its own, not only its grantee.
  'grantee-ignoring': { defect: {}, grantee: granteeIgnoring },
  // Answers AccessDenied as retryable.
  'refusal-retrying': { defect: {}, grantee: retryableRefusals },
  // Declares no grant expiry and refuses expiresAt with UnsupportedError — after granting without it.
  'expiry-dropping': {
    capabilities: { ...LOCAL_CAPABILITIES, grantExpiry: 'none' },
    grantee: () => ({}), // grants exercised, so the suite can list them
    defect: {
      createGrant: async (t, ref: KeyRef, req: GrantRequest, o: ProviderCallOptions) => {
        if (req.expiresAt === undefined) return t.createGrant(ref, req, o);
        const { expiresAt: _dropped, ...rest } = req;
        await t.createGrant(ref, rest, o);
        throw new UnsupportedError('grantExpiry', 'grants here do not expire', {
          provider: 'local',
          keyUri: ref.uri,
        });
      },
    },
  },
};

for (const [name, sabotage] of Object.entries(sabotages)) {
  const keystore = tempKeystore(`sabotage-${name}`);
  afterAll(() => keystore.remove());
  const makeGrantee = sabotage.grantee;
  const proofs: ProofTable = {
    default: { kind: 'real-provider', name: `@keyport/local (${name})` },
    import: { kind: 'not-emulated', reason: 'not needed to show the defect' },
    ...(makeGrantee === undefined
      ? { grants: { kind: 'not-emulated', reason: 'not needed to show the defect' } }
      : {}),
  };
  describeProviderConformance({
    name,
    provider: {
      capabilities: sabotage.capabilities ?? LOCAL_CAPABILITIES,
      open: async () => broken(await keystore.open('owner'), sabotage.defect),
    },
    ...(sabotage.capabilities !== undefined ? { capabilities: sabotage.capabilities } : {}),
    fixtures: {
      keyName: uniqueKeyNames(name),
      missingKeyUri: () => keystore.missingKeyUri(),
      keySpecs: ['AES_256'],
      proofs,
      ...(makeGrantee === undefined
        ? {}
        : {
            grantee: {
              newPrincipal: (hint: string) => `grantee-${hint}-${Math.random().toString(36).slice(2, 8)}`,
              providerFor: async (principal: string) =>
                broken(await keystore.open(principal), makeGrantee(keystore, principal)),
            },
            clock: { now: keystore.now, advance: keystore.advance },
          }),
    },
    log: () => {},
  });
}
