import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatKeyUri,
  isKeyportError,
  type ParsedKeyUri,
  parseKeyUri,
  withKeyVersion,
} from '../src/index.js';

const name = fc.stringMatching(/^[A-Za-z0-9_.-]{1,20}$/);
/** Path segments of a Vault URI: `.` and `..` are refused (a URL resolver folds them away). */
const segment = name.filter((n) => n !== '.' && n !== '..');
const gid = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/);
const version = fc.integer({ min: 1, max: 10_000 }).map(String);
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const host = fc.oneof(
  fc.stringMatching(/^[a-z0-9]{1,10}$/).map((v) => `${v}.vault.azure.net`),
  fc.integer({ min: 1, max: 65535 }).map((p) => `127.0.0.1:${p}`),
);
/** Drops undefined fields, as the parser never sets them. */
const strip = (o: object): ParsedKeyUri =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as unknown as ParsedKeyUri;

const parsed: fc.Arbitrary<ParsedKeyUri> = fc.oneof(
  fc
    .record({
      keyId: fc.oneof(
        fc.uuid().map((u) => `arn:aws:kms:us-east-1:111122223333:key/${u}`),
        gid.map((a) => `alias/${a}`),
        fc.uuid(),
      ),
      endpoint: opt(fc.integer({ min: 1, max: 65535 }).map((p) => `http://127.0.0.1:${p}`)),
    })
    .map(({ keyId, endpoint }) =>
      strip({
        scheme: 'aws-kms' as const,
        keyId,
        region: keyId.startsWith('arn:') ? 'us-east-1' : undefined,
        endpoint,
      }),
    ),
  fc
    .record({
      vaultHost: host,
      name: fc.stringMatching(/^[A-Za-z0-9-]{1,30}$/),
      version: opt(fc.stringMatching(/^[0-9a-f]{32}$/)),
    })
    .map((r) => strip({ scheme: 'azurekeyvault' as const, ...r })),
  fc
    .record({ project: gid, location: gid, keyRing: gid, cryptoKey: gid, version: opt(version) })
    .map((r) => strip({ scheme: 'gcp-kms' as const, ...r })),
  fc
    .record({
      address: host,
      mount: fc
        .array(
          segment.filter((n) => n !== 'keys'),
          { minLength: 1, maxLength: 3 },
        )
        .map((a) => a.join('/')),
      name: segment,
      version: opt(version),
    })
    .map((r) => strip({ scheme: 'hcvault' as const, ...r })),
  fc
    .record({
      token: fc.string({ minLength: 1, maxLength: 12 }),
      object: fc.string({ minLength: 1, maxLength: 12 }),
      id: opt(fc.uint8Array({ minLength: 1, maxLength: 8 })),
      modulePath: opt(fc.constant('/usr/lib/softhsm/libsofthsm2.so')),
      version: opt(version),
    })
    .map((r) =>
      strip({
        scheme: 'pkcs11' as const,
        attributes: [
          ['token', r.token],
          ['object', r.object],
        ] as Array<[string, string]>,
        id: r.id,
        query: r.modulePath === undefined ? [] : ([['module-path', r.modulePath]] as Array<[string, string]>),
        version: r.version,
      }),
    ),
  fc
    .record({ path: fc.string({ minLength: 1, maxLength: 30 }), name, version: opt(version) })
    .filter((r) => !/[\ud800-\udfff\0]/.test(r.path))
    .map((r) => strip({ scheme: 'local' as const, ...r })),
);

describe('key URIs', () => {
  it('round-trip exactly: parse(format(x)) = x and format(parse(s)) = s', () => {
    fc.assert(
      fc.property(parsed, (k) => {
        const s = formatKeyUri(k);
        expect(parseKeyUri(s)).toEqual(k);
        expect(formatKeyUri(parseKeyUri(s))).toBe(s);
      }),
      { numRuns: 500 },
    );
  });

  it.each([
    'aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    'aws-kms://alias/payments?region=eu-west-1',
    'aws-kms://alias/payments?region=us-east-1&endpoint=http://127.0.0.1:4566',
    'azurekeyvault://myvault.vault.azure.net/keys/payments',
    'azurekeyvault://myvault.vault.azure.net/keys/payments/0123456789abcdef0123456789abcdef',
    'gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k',
    'gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/3',
    'hcvault://127.0.0.1:8200/transit/keys/orders',
    'hcvault://vault.example.com:8200/team-a/transit/keys/orders?version=2',
    'hcvault://127.0.0.1:8200/transit/keys/keys',
    'pkcs11:token=keyport;object=root%20key;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so',
    'local:///var/lib/keyport/keys.kp#orders',
    'local://./keys.kp?version=2#orders',
  ])('keeps %s as it is', (uri) => {
    expect(formatKeyUri(parseKeyUri(uri))).toBe(uri);
  });

  it.each([
    ['gcs://bucket/key', 'scheme'],
    ['aws-kms://', 'key'],
    ['aws-kms://arn:aws:kms:us-east-1:111122223333:key/abc?region=eu-west-1', 'region'],
    ['aws-kms://arn:aws:kms:nowhere', 'key'],
    ['aws-kms://alias/a?region=us-east-1&region=us-east-1', 'query'],
    ['aws-kms://alias/a?colour=blue', 'query'],
    ['azurekeyvault://myvault.vault.azure.net/secrets/x', 'path'],
    ['azurekeyvault://myvault.vault.azure.net/keys/bad_name', 'name'],
    ['gcp-kms://projects/p/locations/l/keyRings/r', 'path'],
    ['gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/0', 'version'],
    ['hcvault://127.0.0.1:8200/keys/orders', 'path'],
    ['hcvault://127.0.0.1:8200/keys/x/keys/orders', 'mount'],
    ['hcvault://127.0.0.1:8200/transit/keys/orders?version=latest', 'version'],
    ['pkcs11:token=a;token=b;object=x', 'token'],
    ['pkcs11:token=a', 'object'],
    ['pkcs11:token=a;object=x?pin-value=1234', 'pin-value'],
    ['local://keys.kp', 'name'],
    ['local://#orders', 'path'],
    ['local://keys kp#orders', 'uri'],
  ])('refuses %s, naming the %s part', (uri, part) => {
    try {
      parseKeyUri(uri);
      expect.unreachable();
    } catch (e) {
      expect(isKeyportError(e, 'InvalidArgument')).toBe(true);
      expect((e as Error).message).toContain(part);
    }
  });

  it.each([
    'aws-kms://alias/a?region=us-east-1&endpoint=http://u:s3cret@127.0.0.1:4566',
    'aws-kms://alias/a?region=us-east-1&endpoint=http://u:s3cret%40127.0.0.1:4566',
    'aws-kms://alias/a?region=us-east-1&endpoint=http%3A%2F%2Fu%3As3cret%40127.0.0.1%3A4566',
  ])('refuses an endpoint carrying a user name or password, and never echoes it: %s', (uri) => {
    let error: unknown;
    try {
      parseKeyUri(uri);
    } catch (e) {
      error = e;
    }
    expect(isKeyportError(error, 'InvalidArgument')).toBe(true);
    expect((error as Error).message).toContain('endpoint');
    expect(JSON.stringify(error)).not.toContain('s3cret');
    expect((error as Error).message).not.toContain('s3cret');
  });

  it('never echoes a PIN, however its attribute name is spelt or escaped', () => {
    for (const uri of [
      'pkcs11:token=a;object=x?pin-value=s3cret',
      'pkcs11:token=a;object=x?PIN-VALUE=s3cret',
      'pkcs11:token=a;object=x;pin-value=s3cret',
      'pkcs11:token=a;object=x;pin%2Dvalue=s3cret',
      'pkcs11:token=a;object=x?%70in-value=s3cret&module-path=/m.so',
      'pkcs11:pin%2dvalue=s3cret;object=x',
      'pkcs11+hsm:token=a;object=x?Pin%2DValue=s3cret',
    ]) {
      let thrown: unknown;
      try {
        parseKeyUri(uri);
      } catch (e) {
        thrown = e;
      }
      expect(isKeyportError(thrown, 'InvalidArgument'), uri).toBe(true);
      expect(JSON.stringify(thrown), uri).not.toContain('s3cret');
      expect((thrown as Error).message, uri).not.toContain('s3cret');
      expect(String((thrown as { keyUri?: unknown }).keyUri), uri).toContain('<redacted>');
    }
  });

  it('refuses "." and ".." path segments where a URL resolver would fold them, and NUL in a keystore path', () => {
    for (const uri of [
      'hcvault://h:1/transit/keys/..',
      'hcvault://h:1/transit/keys/.',
      'hcvault://h:1/../keys/k',
      'hcvault://h:1/team/./keys/k',
      'gcp-kms://projects/../locations/l/keyRings/r/cryptoKeys/k',
      'gcp-kms://projects/./locations/l/keyRings/r/cryptoKeys/k',
      'local://k%00.kp#a',
    ]) {
      let thrown: unknown;
      try {
        parseKeyUri(uri);
      } catch (e) {
        thrown = e;
      }
      expect(isKeyportError(thrown, 'InvalidArgument'), uri).toBe(true);
    }
    // Dots inside a name stay ordinary characters.
    expect(parseKeyUri('hcvault://h:1/team.a/keys/k.v2')).toMatchObject({ mount: 'team.a', name: 'k.v2' });
    expect(parseKeyUri('hcvault://h:1/transit/keys/...')).toMatchObject({ name: '...' });
  });

  it('refuses look-alikes, encoded separators and control characters, and keeps __proto__ an ordinary name', () => {
    for (const uri of [
      'l\u043ecal://k.kp#a', // Cyrillic o in the scheme
      'local://k.kp#\u0430', // Cyrillic a as the key name
      'local://k%2Fx.kp#a', // an encoded "/" is not the canonical form of a path
      'local://k.kp#a%2Fb',
      'local://k.kp#a\u0000',
      'hcvault://h:1/transit/keys/k%2F..',
      'aws-kms://alias/../x',
      'local+__proto__://k.kp#a',
    ]) {
      expect(() => parseKeyUri(uri), uri).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
    }
    expect(parseKeyUri('local://k.kp#__proto__')).toMatchObject({ name: '__proto__' });
  });

  it('pins and unpins versions', () => {
    const base = 'gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k';
    expect(withKeyVersion(base, '4')).toBe(`${base}/cryptoKeyVersions/4`);
    expect(withKeyVersion(`${base}/cryptoKeyVersions/4`, undefined)).toBe(base);
    expect(withKeyVersion('hcvault://h:1/transit/keys/k', '2')).toBe(
      'hcvault://h:1/transit/keys/k?version=2',
    );
    expect(() => withKeyVersion('aws-kms://alias/a', '1')).toThrow(/no addressable versions/);
  });
});
