/**
 * The live state of one suite run: the provider (instrumented), the portable client driving it,
 * key factories and grantee clients. Created in `beforeAll`, closed in `afterAll`.
 */
import {
  type Capabilities,
  type KeyInfo,
  Keyport,
  type KeySpec,
  type KeyUsage,
  type KmsProvider,
} from '@keyport/core';
import type { ConformancePlan } from './capability-plan.js';
import type { ConformanceFixtures } from './fixtures.js';
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

  /** A client acting as a fresh principal (needs the grantee fixture). */
  async asGrantee(hint: string): Promise<{ principal: string; client: Keyport }> {
    const grantee = this.fixtures.grantee;
    if (grantee === undefined) throw new Error('conformance: this test needs fixtures.grantee');
    const principal = grantee.newPrincipal(hint);
    const client = new Keyport({
      providers: [await grantee.providerFor(principal)],
      retry: { maxAttempts: 1 },
    });
    this.grantees.push(client);
    return { principal, client };
  }

  async close(): Promise<void> {
    await Promise.all(this.grantees.map((g) => g.close()));
    if (this.owned) await this.client.close();
  }
}
