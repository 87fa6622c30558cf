/**
 * The live state of one suite run: the provider (instrumented), the portable client driving it,
 * key factories and grantee clients. Created in `beforeAll`, closed in `afterAll`.
 */
import {
  type Capabilities,
  type Grant,
  type GrantOperation,
  type KeyInfo,
  Keyport,
  type KeySpec,
  type KeyUsage,
  type KmsProvider,
} from '@keyport/core';
import type { ConformancePlan } from './capability-plan.js';
import {
  type ConformanceFixtures,
  type CredentialGranteeFixture,
  type GranteeFixture,
  isCredentialGrantee,
} from './fixtures.js';
import { type InstrumentedProvider, instrumentProvider } from './instrumented-provider.js';

/**
 * The provider itself (the caller closes it), or its declared capabilities and a factory the
 * suite calls in `beforeAll` (the suite closes what it opened). Capabilities are needed up front
 * because vitest registers tests synchronously and the tests are chosen from them.
 */
export type ProviderSource =
  | KmsProvider
  | { readonly capabilities: Capabilities; open(): KmsProvider | Promise<KmsProvider> };

export function isLazySource(
  source: ProviderSource,
): source is { readonly capabilities: Capabilities; open(): KmsProvider | Promise<KmsProvider> } {
  return typeof (source as { open?: unknown }).open === 'function';
}

export interface NewKeyOptions {
  readonly usage?: KeyUsage;
  readonly hint?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly description?: string;
  readonly external?: boolean;
}

/** A grantee of the grant tests: the name granted to, and how to call as it under a grant. */
export interface GranteeHandle {
  readonly name: string;
  /** Principal grantees: the same client whatever the grant; credential grantees: one per grant. */
  clientFor(grant: Grant): Promise<Keyport>;
}

/** The data operations a grant on a key of each usage can allow. */
const OPERATIONS_BY_USAGE: Readonly<Record<KeyUsage, readonly GrantOperation[]>> = {
  encrypt_decrypt: ['encrypt', 'decrypt'],
  sign_verify: ['sign', 'verify'],
  mac: ['mac', 'verify_mac'],
};

function credentialGranteeName(grantee: CredentialGranteeFixture, hint: string): string {
  return grantee.newGrantee?.(hint) ?? `conformance-${hint}-${Math.random().toString(36).slice(2, 8)}`;
}

export class SuiteState {
  readonly scheme: string;
  private readonly shared = new Map<string, Promise<KeyInfo>>();
  private readonly grantees: Keyport[] = [];

  private constructor(
    readonly client: Keyport,
    readonly instrumented: InstrumentedProvider,
    readonly fixtures: ConformanceFixtures,
    readonly plan: ConformancePlan,
    private readonly owned: boolean,
  ) {
    this.scheme = instrumented.provider.scheme;
  }

  static async open(
    source: ProviderSource,
    fixtures: ConformanceFixtures,
    plan: ConformancePlan,
    capabilities?: Capabilities,
  ): Promise<SuiteState> {
    const owned = isLazySource(source);
    const provider = isLazySource(source) ? await source.open() : source;
    const instrumented = instrumentProvider(provider, capabilities);
    // No retries: the suite asserts on what one call does, and a retried failure would hide a flaky provider.
    const client = new Keyport({ providers: [instrumented.provider], retry: { maxAttempts: 1 } });
    return new SuiteState(client, instrumented, fixtures, plan, owned);
  }

  get capabilities(): Capabilities {
    return this.instrumented.provider.capabilities;
  }

  /** The usage a spec is exercised with by default: the first one the provider offers. */
  usageFor(spec: KeySpec): KeyUsage {
    const usage = this.capabilities.keySpecs[spec]?.[0];
    if (usage === undefined) throw new Error(`conformance: ${spec} is not declared by the provider`);
    return usage;
  }

  /** A fresh key of `spec`. */
  createKey(spec: KeySpec, options: NewKeyOptions = {}): Promise<KeyInfo> {
    const usage = options.usage ?? this.usageFor(spec);
    return this.client.createKey(this.scheme, {
      name: this.fixtures.keyName(options.hint ?? `${spec}-${usage}`),
      spec,
      usage,
      ...(options.labels !== undefined ? { labels: options.labels } : {}),
      ...(options.description !== undefined ? { description: options.description } : {}),
      ...(options.external === true ? { external: true } : {}),
    });
  }

  /** One key per spec and usage shared by tests that do not change key state. */
  sharedKey(spec: KeySpec, usage: KeyUsage = this.usageFor(spec)): Promise<KeyInfo> {
    const id = `${spec}/${usage}`;
    let key = this.shared.get(id);
    if (key === undefined) {
      key = this.createKey(spec, { usage, hint: `shared-${spec}-${usage}` });
      this.shared.set(id, key);
    }
    return key;
  }

  /** The grantee fixture; the grant tests only run with one. */
  private granteeFixture(): GranteeFixture {
    const grantee = this.fixtures.grantee;
    if (grantee === undefined) throw new Error('conformance: this test needs fixtures.grantee');
    return grantee;
  }

  /** A fresh `grantee` for a grant request, opening nothing (for requests that must be refused). */
  granteeName(hint: string): string {
    const grantee = this.fixtures.grantee;
    if (grantee === undefined) return `conformance-${hint}`;
    return isCredentialGrantee(grantee) ? credentialGranteeName(grantee, hint) : grantee.newPrincipal(hint);
  }

  /**
   * A fresh grantee: the name to grant to, and the client acting as it under a grant. A principal
   * grantee is opened at once (it exists before any grant); a credential grantee only has a
   * client once a grant has minted its credential.
   */
  async grantee(hint: string): Promise<GranteeHandle> {
    const grantee = this.granteeFixture();
    if (isCredentialGrantee(grantee)) {
      return {
        name: credentialGranteeName(grantee, hint),
        clientFor: async (grant) => this.track(await grantee.providerForGrant(grant)),
      };
    }
    const name = grantee.newPrincipal(hint);
    const client = this.track(await grantee.providerFor(name));
    return { name, clientFor: () => Promise.resolve(client) };
  }

  /**
   * A client with no rights on `like`: a fresh principal nobody granted anything, or — where a
   * credential exists only through a grant — the credential of a grant on another key of the
   * same spec and usage, so it is refused by key, not merely for lacking any credential.
   */
  async stranger(hint: string, like: KeyInfo): Promise<Keyport> {
    const grantee = this.granteeFixture();
    if (!isCredentialGrantee(grantee))
      return this.track(await grantee.providerFor(grantee.newPrincipal(hint)));
    const decoy = await this.createKey(like.spec, { usage: like.usage, hint: `${hint}-decoy` });
    const handle = await this.grantee(hint);
    const grant = await this.client.createGrant(decoy.uri, {
      grantee: handle.name,
      operations: [...OPERATIONS_BY_USAGE[like.usage], 'describe'],
    });
    const client = await handle.clientFor(grant);
    // A live credential, so a refusal on `like` is about the key and not a credential that works nowhere.
    await client.describeKey(decoy.uri);
    return client;
  }

  private track(provider: KmsProvider): Keyport {
    const client = new Keyport({ providers: [provider], retry: { maxAttempts: 1 } });
    this.grantees.push(client);
    return client;
  }

  async close(): Promise<void> {
    await Promise.all(this.grantees.map((g) => g.close()));
    if (this.owned) await this.client.close();
  }
}
