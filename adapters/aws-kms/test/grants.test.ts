/**
 * Grants. moto stores, lists, revokes and retires grants but does not enforce them; local-kms has
 * no grant API at all (answers 501). Enforcement is therefore not emulated anywhere: what is proven
 * here is the translation (operations, constraints, names carrying expiry) and the sweep.
 */
import { CreateGrantCommand, ListGrantsCommand } from '@aws-sdk/client-kms';
import { createKeyport } from '@keyport/core';
import { afterAll, describe, expect, it } from 'vitest';
import { type AwsKmsProvider, decodeGrantName, encodeGrantName } from '../src/index.js';
import { call, providerFor, sdkClientFor, target, uniqueName } from './support/targets.js';

const GRANTEE = 'arn:aws:iam::123456789012:role/keyport-grantee';

describe('grants on moto', () => {
  let provider: AwsKmsProvider | undefined;
  const p = (): AwsKmsProvider => {
    provider ??= providerFor(target('moto'));
    return provider;
  };
  afterAll(async () => provider?.close());
  const newKey = async () =>
    (await p().createKey({ name: uniqueName('grants'), spec: 'AES_256' }, call())).uri;
  const list = async (uri: string) => {
    const out = [];
    for await (const g of p().listGrants({ uri }, { ...call(), pageSize: 1 })) out.push(g);
    return out;
  };

  it('a grant made outside keyport lists what keyport has no name for, never leaves it out', async () => {
    // A grantee with ReEncryptFrom alone can re-encrypt the data under a key it holds (as good as
    // decrypt); with CreateGrant it can hand access on. Listed as [] and ['decrypt'] before.
    const uri = await newKey();
    const sdk = sdkClientFor(target('moto'));
    const KeyId = uri.slice('aws-kms://'.length);
    const made = async (Operations: string[]) =>
      (
        await sdk.send(
          new CreateGrantCommand({
            KeyId,
            GranteePrincipal: GRANTEE,
            Operations: Operations as never,
          }),
        )
      ).GrantId;
    const reEncryptFrom = await made(['ReEncryptFrom']);
    const passOn = await made(['CreateGrant', 'Decrypt']);
    const pairs = await made(['GenerateDataKeyPair', 'GenerateDataKeyWithoutPlaintext']);
    const whole = await made([
      'ReEncryptFrom',
      'ReEncryptTo',
      'GenerateDataKey',
      'GenerateDataKeyWithoutPlaintext',
    ]);
    const byId = new Map((await list(uri)).map((g) => [g.id, g]));
    expect(byId.get(reEncryptFrom as string)).toMatchObject({
      operations: [],
      unmodeledOperations: ['ReEncryptFrom'],
    });
    expect(byId.get(passOn as string)).toMatchObject({
      operations: ['decrypt'],
      unmodeledOperations: ['CreateGrant'],
    });
    expect(byId.get(pairs as string)).toMatchObject({
      operations: [],
      unmodeledOperations: ['GenerateDataKeyPair', 'GenerateDataKeyWithoutPlaintext'],
    });
    // Everything named: no unmodeledOperations field at all.
    const named = byId.get(whole as string);
    expect(named?.operations).toEqual(['generate_data_key', 're_encrypt']);
    expect(named).not.toHaveProperty('unmodeledOperations');
  });

  it('creates a grant with operations and a context constraint, and lists it back', async () => {
    const uri = await newKey();
    const expiresAt = new Date(Date.now() + 3_600_000);
    const grant = await p().createGrant(
      { uri },
      {
        grantee: GRANTEE,
        operations: ['encrypt', 'decrypt', 'generate_data_key'],
        constraints: { contextSubset: { tenant: 't-1' } },
        name: 'payments',
        expiresAt,
      },
      call(),
    );
    expect(grant.id).not.toBe('');
    expect(grant.token).toBeTypeOf('string');
    const raw = await sdkClientFor(target('moto')).send(
      new ListGrantsCommand({ KeyId: uri.slice('aws-kms://'.length) }),
    );
    expect(raw.Grants?.[0]).toMatchObject({
      GranteePrincipal: GRANTEE,
      Operations: ['Encrypt', 'Decrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext'],
      Constraints: { EncryptionContextSubset: { tenant: 't-1' } },
      Name: `payments__keyport-exp-${Math.ceil(expiresAt.getTime() / 1000)}`,
    });
    const [listed] = await list(uri);
    expect(listed).toMatchObject({
      id: grant.id,
      keyUri: uri,
      grantee: GRANTEE,
      operations: ['encrypt', 'decrypt', 'generate_data_key'],
      constraints: { contextSubset: { tenant: 't-1' } },
      name: 'payments',
    });
    expect(listed?.expiresAt?.getTime()).toBe(Math.ceil(expiresAt.getTime() / 1000) * 1000);
  });

  it('pages through grants and revokes one', async () => {
    const uri = await newKey();
    const a = await p().createGrant({ uri }, { grantee: GRANTEE, operations: ['sign'] }, call());
    const b = await p().createGrant(
      { uri },
      { grantee: GRANTEE, operations: ['describe'], constraints: { contextEquals: { a: '1' } } },
      call(),
    );
    expect((await list(uri)).map((g) => g.id).sort()).toEqual([a.id, b.id].sort());
    await p().revokeGrant({ uri }, a.id, call());
    expect((await list(uri)).map((g) => g.id)).toEqual([b.id]);
    const error = await p()
      .revokeGrant({ uri }, a.id, call())
      .catch((e: unknown) => e);
    expect(p().mapError(error)?.code).toBe('NotFound');
  });

  it('works through an alias URI', async () => {
    const alias = uniqueName('grant-alias');
    await p().createKey({ name: alias, spec: 'AES_256' }, call());
    const uri = `aws-kms://alias/${alias}`;
    const g = await p().createGrant({ uri }, { grantee: GRANTEE, operations: ['decrypt'] }, call());
    expect((await list(uri)).map((x) => x.id)).toEqual([g.id]);
    await p().revokeGrant({ uri }, g.id, call());
    expect(await list(uri)).toEqual([]);
  });

  it('retires a grant by its token', async () => {
    const uri = await newKey();
    const g = await p().createGrant({ uri }, { grantee: GRANTEE, operations: ['encrypt'] }, call());
    await p().retireGrant({ token: g.token as string });
    expect(await list(uri)).toEqual([]);
  });

  it('retires a grant by key and grant id, also through an alias', async () => {
    const alias = uniqueName('retire-id');
    const { uri } = await p().createKey({ name: alias, spec: 'AES_256' }, call());
    const a = await p().createGrant({ uri }, { grantee: GRANTEE, operations: ['encrypt'] }, call());
    const b = await p().createGrant({ uri }, { grantee: GRANTEE, operations: ['decrypt'] }, call());
    await p().retireGrant({ key: { uri }, grantId: a.id });
    expect((await list(uri)).map((g) => g.id)).toEqual([b.id]);
    await p().retireGrant({ key: { uri: `aws-kms://alias/${alias}` }, grantId: b.id });
    expect(await list(uri)).toEqual([]);
  });

  it('sweepExpiredGrants revokes exactly the grants past their expiry', async () => {
    const uri = await newKey();
    const soon = await p().createGrant(
      { uri },
      { grantee: GRANTEE, operations: ['encrypt'], expiresAt: new Date(Date.now() + 60_000) },
      call(),
    );
    const later = await p().createGrant(
      { uri },
      { grantee: GRANTEE, operations: ['encrypt'], expiresAt: new Date(Date.now() + 7_200_000) },
      call(),
    );
    const forever = await p().createGrant(
      { uri },
      { grantee: GRANTEE, operations: ['decrypt'], name: 'forever' },
      call(),
    );
    const keys = createKeyport({ providers: [p()] });
    expect(await keys.sweepExpiredGrants([uri])).toEqual([]);
    const swept = await keys.sweepExpiredGrants([uri], { now: new Date(Date.now() + 3_600_000) });
    expect(swept.map((s) => s.grantId)).toEqual([soon.id]);
    expect(swept[0]?.name).toBe('keyport-grant');
    expect((await list(uri)).map((g) => g.id).sort()).toEqual([later.id, forever.id].sort());
  });

  it('refuses both constraint kinds at once, past expiry, and names AWS would reject', async () => {
    const uri = await newKey();
    const bad = [
      {
        grantee: GRANTEE,
        operations: ['encrypt'],
        constraints: { contextEquals: { a: '1' }, contextSubset: { a: '1' } },
      },
      { grantee: GRANTEE, operations: ['encrypt'], expiresAt: new Date(Date.now() - 1000) },
      { grantee: GRANTEE, operations: ['encrypt'], name: 'has space' },
      { grantee: GRANTEE, operations: [] },
    ] as const;
    for (const req of bad) {
      await expect(p().createGrant({ uri }, req, call())).rejects.toMatchObject({ code: 'InvalidArgument' });
    }
  });
});

describe('grants on local-kms (not emulated: no grant API)', () => {
  it('surfaces the missing API as Unsupported', async () => {
    const provider = providerFor(target('local-kms'));
    const { uri } = await provider.createKey({ name: uniqueName('nogrant'), spec: 'AES_256' }, call());
    const error = await provider
      .createGrant({ uri }, { grantee: GRANTEE, operations: ['encrypt'] }, call())
      .catch((e: unknown) => e);
    expect(provider.mapError(error)?.code).toBe('Unsupported');
    await provider.close();
  });
});

describe('grant names carry the expiry', () => {
  it('round-trips names and expiries', () => {
    const at = new Date('2027-01-02T03:04:05Z');
    expect(encodeGrantName('ops', at)).toBe('ops__keyport-exp-1798859045');
    expect(decodeGrantName('ops__keyport-exp-1798859045')).toEqual({ name: 'ops', expiresAt: at });
    expect(encodeGrantName(undefined, at)).toBe('keyport-grant__keyport-exp-1798859045');
    expect(encodeGrantName('plain', undefined)).toBe('plain');
    expect(decodeGrantName('plain')).toEqual({ name: 'plain' });
    expect(() => encodeGrantName('x__keyport-exp-12', undefined)).toThrow(/expiry mark/);
  });
});
