/**
 * The small driver contract: a driver with only the eight required members works through
 * Keyport; every optional capability it lacks is answered by core with UnsupportedError naming
 * the capability (never a call into the driver), and data keys declared `emulated` are drawn
 * and wrapped by core.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type Capabilities,
  createKeyport,
  type Driver,
  type GrantRequest,
  implementsMethod,
  KeyportError,
  type KeyRef,
  UnsupportedError,
} from '../src/index.js';

const declared: Capabilities = {
  keySpecs: { AES_256: ['encrypt_decrypt'], HMAC_256: ['mac'], EC_P256: ['sign_verify'] },
  context: 'native',
  dataKeys: 'emulated',
  listKeys: true,
  rotation: 'versioned',
  autoRotation: true,
  enableDisable: true,
  scheduledDeletion: 'native',
  destroyVersion: true,
  grants: 'native',
  grantExpiry: 'native',
  grantConstraints: true,
  import: ['RSAES_OAEP_SHA_256'],
  signingAlgorithms: [],
};

/** AES-GCM under one in-memory key, context as AAD: the whole of a minimal driver. */
function minimalDriver(): Driver {
  const key = randomBytes(32);
  const aad = (ctx: Readonly<Record<string, string>> | undefined) =>
    Buffer.from(JSON.stringify(Object.entries(ctx ?? {}).sort()));
  return {
    scheme: 'mini',
    capabilities: declared,
    parseUri: (uri: string): KeyRef => {
      if (!/^mini:\/\/[a-z]+$/.test(uri)) throw new KeyportError('InvalidArgument', 'not a mini URI');
      return { uri };
    },
    formatUri: (ref: KeyRef) => ref.uri,
    async encrypt(_ref, plaintext, req) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv).setAAD(aad(req.context));
      const body = Buffer.concat([c.update(plaintext), c.final()]);
      return { ciphertext: Buffer.concat([iv, body, c.getAuthTag()]), keyVersion: '1' };
    },
    async decrypt(_ref, ciphertext, req) {
      const b = Buffer.from(ciphertext);
      const d = createDecipheriv('aes-256-gcm', key, b.subarray(0, 12)).setAAD(aad(req.context));
      d.setAuthTag(b.subarray(b.length - 16));
      try {
        return {
          plaintext: Buffer.concat([d.update(b.subarray(12, b.length - 16)), d.final()]),
          keyVersion: '1',
        };
      } catch {
        throw new KeyportError('InvalidCiphertext', 'does not open');
      }
    },
    mapError: () => undefined,
    close: async () => {},
  };
}

describe('the small driver contract', () => {
  it('a driver of eight members encrypts and decrypts through Keyport', async () => {
    const kp = createKeyport({ providers: [minimalDriver()] });
    const sealed = await kp.encrypt('mini://k', new Uint8Array([1, 2, 3]), { context: { a: 'b' } });
    const opened = await kp.decrypt('mini://k', sealed.ciphertext, { context: { a: 'b' } });
    expect([...opened.plaintext]).toEqual([1, 2, 3]);
    await expect(kp.decrypt('mini://k', sealed.ciphertext, { context: { a: 'c' } })).rejects.toMatchObject({
      code: 'InvalidCiphertext',
    });
  });

  it('every capability the driver does not implement is UnsupportedError naming it', async () => {
    const kp = createKeyport({ providers: [minimalDriver()] });
    const k = 'mini://k';
    const cases: [() => Promise<unknown>, string][] = [
      [() => kp.createKey('mini', { name: 'x', spec: 'AES_256', usage: 'encrypt_decrypt' }), 'keys'],
      [() => kp.describeKey(k), 'keys'],
      [() => kp.rotateKey(k), 'rotation'],
      [() => kp.setRotationPolicy(k, { periodDays: 90 }), 'autoRotation'],
      [() => kp.disableKey(k), 'enableDisable'],
      [() => kp.scheduleKeyDeletion(k), 'scheduledDeletion'],
      [() => kp.destroyKeyVersion({ uri: k, version: '1' }), 'destroyVersion'],
      [() => kp.mac(k, new Uint8Array(1)), 'mac'],
      [() => kp.sign(k, new Uint8Array(1)), 'sign'],
      [() => kp.getPublicKey(k), 'getPublicKey'],
      [() => kp.createGrant(k, { grantee: 'g', operations: ['decrypt'] }), 'grants'],
      [() => kp.getImportParameters(k), 'import'],
    ];
    for (const [pending, capability] of cases) {
      const error = await pending().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, capability).toBeInstanceOf(UnsupportedError);
      if (capability !== 'keys') expect((error as UnsupportedError).keyUri).toBe(k);
      expect(error).toMatchObject({
        code: 'Unsupported',
        capability,
        provider: 'mini',
      });
    }
    const listed = async () => {
      for await (const _ of kp.listKeys('mini')) break;
    };
    await expect(listed()).rejects.toMatchObject({ capability: 'listKeys' });
    await expect(kp.sweepExpiredGrants([k])).rejects.toMatchObject({
      code: 'Unsupported',
      capability: 'grantExpiry',
    });
    // Its arguments are checked first, like every public call's: a bad `now` decided expiry.
    for (const [keys, options] of [
      [k, undefined],
      [[k], { now: new Date(Number.NaN) }],
      [[k], { now: '2030-01-01' }],
      [[k], { signal: {} }],
      [[k], { nowe: new Date() }],
    ] as const) {
      await expect(
        kp.sweepExpiredGrants(keys as never, options as never),
        JSON.stringify(options ?? keys),
      ).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
  });

  it('a constrained grant on a driver without grant constraints is refused before any call', async () => {
    const created: unknown[] = [];
    const driver = Object.assign(minimalDriver(), {
      capabilities: { ...declared, grants: 'native', grantConstraints: false } as Capabilities,
      createGrant: async (_ref: unknown, req: GrantRequest) => {
        created.push(req);
        return { ...req, id: 'g1', keyUri: 'mini://k' };
      },
      listGrants: async function* () {},
      revokeGrant: async () => {},
    });
    const kp = createKeyport({ providers: [driver] });
    await expect(
      kp.createGrant('mini://k', {
        grantee: 'g',
        operations: ['decrypt'],
        constraints: { contextEquals: { tenant: 'a' } },
      }),
    ).rejects.toMatchObject({ code: 'Unsupported', capability: 'grantConstraints', keyUri: 'mini://k' });
    expect(created).toHaveLength(0);
    await kp.createGrant('mini://k', { grantee: 'g', operations: ['decrypt'] });
    expect(created).toHaveLength(1);
  });

  it('capabilities are the declared ones less what is not implemented', () => {
    const kp = createKeyport({ providers: [minimalDriver()] });
    const caps = kp.capabilities('mini');
    expect(caps).toMatchObject({
      keySpecs: { AES_256: ['encrypt_decrypt'] },
      dataKeys: 'emulated',
      listKeys: false,
      rotation: 'none',
      autoRotation: false,
      enableDisable: false,
      scheduledDeletion: 'none',
      destroyVersion: false,
      grants: 'none',
      grantExpiry: 'none',
      import: [],
    });
    expect(implementsMethod(minimalDriver() as never, 'rotateKey')).toBe(false);
  });

  it('emulated data keys: drawn by core, wrapped by the driver under the context, length rules once', async () => {
    const kp = createKeyport({ providers: [minimalDriver()] });
    const dk = await kp.generateDataKey('mini://k', { context: { t: '1' }, bytes: 24 });
    expect(dk.plaintext).toHaveLength(24);
    expect((await kp.decrypt('mini://k', dk.wrapped, { context: { t: '1' } })).plaintext).toEqual(
      Buffer.from(dk.plaintext),
    );
    expect((await kp.generateDataKey('mini://k')).plaintext).toHaveLength(32);
    for (const bytes of [0, 15, 1025, 1.5, Number.NaN]) {
      await expect(kp.generateDataKey('mini://k', { bytes })).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    }
  });
});
