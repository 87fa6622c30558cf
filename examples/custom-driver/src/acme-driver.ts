/**
 * A keyport driver written outside the project, for an invented provider "Acme KMS" whose keys
 * are `acme://<name>[?version=<n>]`. Acme here keeps its keys in process memory; a real driver
 * would make one SDK call where this one touches the map. It implements the required contract
 * (scheme, URIs, encrypt, decrypt, errors, close) plus key management, rotation and key states;
 * everything else (grants, signing, import...) core answers with UnsupportedError, and data keys
 * core draws and wraps with `encrypt` because the capabilities say `dataKeys: 'emulated'`.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import {
  type Capabilities,
  type CreateKeyRequest,
  type Driver,
  type EncryptRequest,
  encodeContext,
  type KeyInfo,
  type KeyManagement,
  KeyportError,
  type KeyRef,
  type KeyRotation,
  type KeyStates,
  type ListOptions,
} from '@keyport/core';

export const ACME_CAPABILITIES: Capabilities = {
  keySpecs: { AES_256: ['encrypt_decrypt'] },
  context: 'native',
  dataKeys: 'emulated',
  listKeys: true,
  rotation: 'versioned',
  autoRotation: false,
  enableDisable: true,
  scheduledDeletion: 'none',
  destroyVersion: false,
  grants: 'none',
  grantExpiry: 'none',
  grantConstraints: false,
  import: [],
  signingAlgorithms: [],
};

interface AcmeKey {
  readonly name: string;
  readonly versions: Buffer[]; // versions[i] is version i + 1
  enabled: boolean;
  readonly createdAt: Date;
  readonly labels: Readonly<Record<string, string>>;
}

const URI = /^acme:\/\/([a-z0-9][a-z0-9-]{0,62})(?:\?version=([1-9][0-9]{0,8}))?$/;
const fail = (
  code: 'InvalidArgument' | 'NotFound' | 'AlreadyExists' | 'InvalidCiphertext' | 'KeyStateConflict',
  why: string,
  keyUri?: string,
): never => {
  throw new KeyportError(code, why, { provider: 'acme', ...(keyUri === undefined ? {} : { keyUri }) });
};

export class AcmeDriver implements Driver, KeyManagement, KeyRotation, KeyStates {
  readonly scheme = 'acme';
  readonly capabilities = ACME_CAPABILITIES;
  private readonly keys = new Map<string, AcmeKey>();

  parseUri(uri: string): KeyRef {
    const m = URI.exec(uri) ?? fail('InvalidArgument', 'expected acme://<name>[?version=<n>]', uri);
    return m[2] === undefined ? { uri } : { uri, version: m[2] };
  }
  formatUri(ref: KeyRef): string {
    const name = (URI.exec(ref.uri) ?? fail('InvalidArgument', 'not an acme URI', ref.uri))[1];
    return `acme://${name}${ref.version === undefined ? '' : `?version=${ref.version}`}`;
  }

  async encrypt(ref: KeyRef, plaintext: Uint8Array, req: EncryptRequest) {
    const key = this.usable(ref);
    const version = Number(ref.version ?? key.versions.length);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.material(key, version, ref.uri), iv);
    cipher.setAAD(encodeContext(req.context));
    const header = Buffer.alloc(4);
    header.writeUInt32BE(version);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return {
      ciphertext: Buffer.concat([header, iv, body, cipher.getAuthTag()]),
      keyVersion: String(version),
    };
  }

  async decrypt(ref: KeyRef, ciphertext: Uint8Array, req: EncryptRequest) {
    const key = this.usable(ref);
    const c = Buffer.from(ciphertext);
    if (c.length < 4 + 12 + 16) fail('InvalidCiphertext', 'ciphertext too short', ref.uri);
    const version = c.readUInt32BE(0);
    if (version === 0 || version > key.versions.length)
      fail('InvalidCiphertext', 'unknown key version', ref.uri);
    const decipher = createDecipheriv('aes-256-gcm', this.material(key, version, ref.uri), c.subarray(4, 16));
    decipher.setAAD(encodeContext(req.context));
    decipher.setAuthTag(c.subarray(c.length - 16));
    try {
      const plaintext = Buffer.concat([decipher.update(c.subarray(16, c.length - 16)), decipher.final()]);
      return { plaintext, keyVersion: String(version) };
    } catch {
      return fail('InvalidCiphertext', 'ciphertext or context does not match this key', ref.uri);
    }
  }

  /** Acme raises KeyportErrors itself; nothing else to translate. */
  mapError(): undefined {
    return undefined;
  }
  async close(): Promise<void> {
    for (const key of this.keys.values()) for (const v of key.versions) v.fill(0);
    this.keys.clear();
  }

  async createKey(req: CreateKeyRequest): Promise<KeyInfo> {
    if (req.spec !== 'AES_256' || (req.usage ?? 'encrypt_decrypt') !== 'encrypt_decrypt')
      fail('InvalidArgument', 'Acme keys are AES_256 for encrypt_decrypt');
    const uri = this.formatUri({ uri: `acme://${req.name}` });
    if (this.keys.has(req.name)) fail('AlreadyExists', 'a key of that name exists', uri);
    const key = {
      name: req.name,
      versions: [randomBytes(32)],
      enabled: true,
      createdAt: new Date(),
      labels: { ...req.labels },
    };
    this.keys.set(req.name, key);
    return this.info(key);
  }
  async describeKey(ref: KeyRef): Promise<KeyInfo> {
    return this.info(this.find(ref));
  }
  async *listKeys(o: ListOptions): AsyncIterable<KeyInfo> {
    for (const key of [...this.keys.values()]) {
      o.signal.throwIfAborted();
      yield this.info(key);
    }
  }
  async rotateKey(ref: KeyRef): Promise<KeyInfo> {
    const key = this.usable(ref);
    key.versions.push(randomBytes(32));
    return this.info(key);
  }
  async enableKey(ref: KeyRef): Promise<KeyInfo> {
    return this.setEnabled(ref, true);
  }
  async disableKey(ref: KeyRef): Promise<KeyInfo> {
    return this.setEnabled(ref, false);
  }

  private setEnabled(ref: KeyRef, enabled: boolean): KeyInfo {
    const key = this.find(ref);
    key.enabled = enabled;
    return this.info(key);
  }
  private find(ref: KeyRef): AcmeKey {
    const name = (URI.exec(ref.uri) ?? fail('InvalidArgument', 'not an acme URI', ref.uri))[1] as string;
    return this.keys.get(name) ?? fail('NotFound', 'no such key', ref.uri);
  }
  private usable(ref: KeyRef): AcmeKey {
    const key = this.find(ref);
    if (!key.enabled) fail('KeyStateConflict', 'the key is disabled', ref.uri);
    return key;
  }
  private material(key: AcmeKey, version: number, uri: string): Buffer {
    return key.versions[version - 1] ?? fail('NotFound', 'no such key version', uri);
  }
  private info(key: AcmeKey): KeyInfo {
    const primaryVersion = String(key.versions.length);
    return {
      uri: `acme://${key.name}`,
      spec: 'AES_256',
      usage: 'encrypt_decrypt',
      state: key.enabled ? 'enabled' : 'disabled',
      createdAt: key.createdAt,
      primaryVersion,
      versions: key.versions.map((_, i) => ({ version: String(i + 1), state: 'enabled' as const })),
      labels: key.labels,
      origin: 'provider',
    };
  }
}
