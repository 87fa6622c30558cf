/**
 * Named driver instances: which configured driver a key URI, an instance name or a scheme
 * addresses. A `Keyport` holds one registry; there is no global one (two clients never see
 * each other's drivers).
 *
 * Resolution of a URI `<scheme>[+<instance>]:<rest>`:
 * - with a selector: the instance of that name, which must serve that scheme;
 * - without: the one instance whose driver claims the URI (`claimsUri`: a Vault URI names its
 *   server), else the scheme's default instance — the one `defaults` names, else the instance
 *   named after the scheme, else the only instance of the scheme. Several instances and no
 *   default is an InvalidArgument naming the instances, never a guess.
 */
import { KeyportError, quote } from './errors.js';
import type { KmsProvider } from './provider.js';
import { checkRepeats } from './repeat.js';
import {
  formatBuiltInUri,
  INSTANCE_NAME,
  KEY_URI_SCHEMES,
  type KeyUriGrammar,
  type KeyUriScheme,
  parseBuiltInUri,
  qualifyKeyUri,
  registerKeyUriGrammar,
  splitKeyUri,
} from './uri.js';

/** Driver instances under the user's names, or a list (each named after its scheme). */
export type ProviderInstances = Readonly<Record<string, KmsProvider>> | readonly KmsProvider[];

/** One configured driver instance. */
export interface DriverInstance {
  readonly name: string;
  readonly driver: KmsProvider;
}

/** A URI resolved to its instance. */
export interface ResolvedUri extends DriverInstance {
  /** What the driver sees: the URI without the instance selector. */
  readonly driverUri: string;
}

export class DriverRegistry {
  private readonly byName = new Map<string, KmsProvider>();
  private readonly chosenDefaults = new Map<string, string>();

  constructor(instances: ProviderInstances = [], defaults: Readonly<Record<string, string>> = {}) {
    if (Array.isArray(instances)) {
      for (const driver of instances as readonly KmsProvider[]) this.add(driver.scheme, driver);
    } else {
      for (const [name, driver] of Object.entries(instances as Readonly<Record<string, KmsProvider>>)) {
        this.add(name, driver);
      }
    }
    for (const [scheme, name] of Object.entries(defaults)) this.setDefault(scheme, name);
  }

  /** Adds an instance; a second instance under the same name is refused, never shadowed. */
  add(name: string, driver: KmsProvider): void {
    if (!INSTANCE_NAME.test(name)) {
      throw new KeyportError(
        'InvalidArgument',
        `invalid instance name ${quote(name)}: a lower-case letter, then letters, digits or "-"`,
      );
    }
    if (typeof driver?.scheme !== 'string' || !/^[a-z][a-z0-9.-]*$/.test(driver.scheme)) {
      throw new KeyportError('InvalidArgument', `instance ${quote(name)} is not a driver (no valid scheme)`);
    }
    if (this.byName.has(name)) {
      throw new KeyportError('AlreadyExists', `a driver instance named ${quote(name)} is already registered`);
    }
    checkRepeats(driver, name);
    this.byName.set(name, driver);
    registerKeyUriGrammar(grammarOf(driver, name));
  }

  /** Makes `name` the instance that URIs of `scheme` without a selector address. */
  setDefault(scheme: string, name: string): void {
    const driver = this.byName.get(name);
    if (driver === undefined || driver.scheme !== scheme) {
      throw new KeyportError(
        'InvalidArgument',
        `default for ${quote(scheme)}: no instance ${quote(name)} serving that scheme`,
      );
    }
    this.chosenDefaults.set(scheme, name);
  }

  instances(): DriverInstance[] {
    return [...this.byName].map(([name, driver]) => ({ name, driver }));
  }

  /** The default instance of a scheme, or undefined when there is none or it would be a guess. */
  defaultOf(scheme: string): string | undefined {
    const chosen = this.chosenDefaults.get(scheme);
    if (chosen !== undefined) return chosen;
    if (this.byName.get(scheme)?.scheme === scheme) return scheme;
    const serving = this.namesServing(scheme);
    return serving.length === 1 ? serving[0] : undefined;
  }

  /** The instance a URI addresses. */
  resolveUri(uri: string): ResolvedUri {
    const { scheme, instance, driverUri } = splitKeyUri(uri);
    const name = instance ?? this.claimant(scheme, driverUri) ?? this.defaultName(scheme);
    const driver = this.byName.get(name);
    if (driver === undefined) {
      throw new KeyportError('InvalidArgument', `no driver instance named ${quote(name)} (${this.known()})`, {
        keyUri: uri,
      });
    }
    if (driver.scheme !== scheme) {
      throw new KeyportError(
        'InvalidArgument',
        `instance ${quote(name)} serves scheme ${quote(driver.scheme)}, not ${quote(scheme)}`,
        { keyUri: uri },
      );
    }
    return { name, driver, driverUri };
  }

  /** An instance by name, by scheme (its default instance) or by a URI. */
  resolve(nameSchemeOrUri: string): DriverInstance {
    if (typeof nameSchemeOrUri !== 'string') {
      throw new KeyportError('InvalidArgument', 'expected an instance name, a scheme or a key URI');
    }
    if (nameSchemeOrUri.includes(':')) return this.resolveUri(nameSchemeOrUri);
    const direct = this.byName.get(nameSchemeOrUri);
    if (direct !== undefined) return { name: nameSchemeOrUri, driver: direct };
    const name = this.defaultName(nameSchemeOrUri);
    return { name, driver: this.byName.get(name) as KmsProvider };
  }

  /**
   * The URI callers see for a driver-level URI the instance returned: qualified with the instance
   * name unless the instance is named after its scheme (so single-instance setups keep plain URIs
   * and a second instance added later never changes what the first one's URIs mean).
   */
  publicUri(instance: DriverInstance, driverUri: string): string {
    return instance.name === instance.driver.scheme ? driverUri : qualifyKeyUri(driverUri, instance.name);
  }

  async closeAll(): Promise<void> {
    await Promise.all([...new Set(this.byName.values())].map((d) => d.close?.()));
  }

  private defaultName(scheme: string): string {
    const name = this.defaultOf(scheme);
    if (name !== undefined) return name;
    const serving = this.namesServing(scheme);
    if (serving.length === 0) {
      throw new KeyportError(
        'InvalidArgument',
        `no driver registered for scheme ${quote(scheme)} (${this.known()})`,
      );
    }
    throw new KeyportError(
      'InvalidArgument',
      `scheme ${quote(scheme)} has several instances (${serving.join(', ')}) and no default: ` +
        `name one in the URI (${scheme}+${serving[0]}:...) or set defaults`,
    );
  }

  /** The single instance of several that claims a plain URI, if exactly one does. */
  private claimant(scheme: string, driverUri: string): string | undefined {
    const serving = this.namesServing(scheme);
    if (serving.length < 2) return undefined;
    const claiming = serving.filter((n) => this.byName.get(n)?.claimsUri?.(driverUri) === true);
    return claiming.length === 1 ? claiming[0] : undefined;
  }

  private namesServing(scheme: string): string[] {
    return [...this.byName].filter(([, d]) => d.scheme === scheme).map(([n]) => n);
  }

  private known(): string {
    const list = [...this.byName].map(([n, d]) => (n === d.scheme ? n : `${n} (${d.scheme})`));
    return `registered: ${list.join(', ') || 'none'}`;
  }
}

/**
 * The driver's URI grammar. A driver of a built-in scheme written against the older contract
 * (no `parseUri`/`formatUri`) gets core's grammar for its scheme; any other driver must bring
 * its own.
 */
export function grammarOf(driver: KmsProvider, name = driver.scheme): KeyUriGrammar {
  if (typeof driver.parseUri === 'function' && typeof driver.formatUri === 'function') {
    return {
      scheme: driver.scheme,
      parseUri: driver.parseUri.bind(driver),
      formatUri: driver.formatUri.bind(driver),
    };
  }
  if ((KEY_URI_SCHEMES as readonly string[]).includes(driver.scheme)) {
    const scheme = driver.scheme as KeyUriScheme;
    return { scheme, parseUri: (uri) => parseBuiltInUri(scheme, uri), formatUri: formatBuiltInUri };
  }
  throw new KeyportError(
    'InvalidArgument',
    `instance ${quote(name)} is not a driver (no parseUri/formatUri)`,
  );
}
