/**
 * The driver used carelessly or with hostile input, called directly (no Keyport checking first):
 * - a rotation policy field AWS cannot honour is refused (`Unsupported`), never dropped
 * - NaN, strings, out-of-range numbers and unknown fields are `InvalidArgument` before any request
 * - no grant tokens means no GrantTokens field; token lists are checked like AWS checks them
 * - a createKey aborted while naming the key leaves no alias naming a key pending deletion
 * Stubbed transport where the point is "no request was made" or the exact request; local-kms
 * where the emulator can show the outcome.
 */
import { createKeyport } from '@keyport/core';
import { describe, expect, it, vi } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import { DATA_KEY_32, keyMetadata, stubTransport } from './support/stub-transport.js';
import { call, providerFor, TEST_CREDENTIALS, target, uniqueName, utf8 } from './support/targets.js';

const KEY = 'aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

function stubbed(answer: Parameters<typeof stubTransport>[0] = () => ({ json: {} }), grantTokens?: unknown) {
  const stub = stubTransport(answer);
  const provider = new AwsKmsProvider({
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    clientConfig: stub.clientConfig,
    ...(grantTokens !== undefined ? { grantTokens: grantTokens as string[] } : {}),
  });
  return { provider, requests: stub.requests };
}

/** The KeyportError code a driver call ends with (the driver throws SDK errors as they are). */
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (e: unknown) => new AwsKmsProvider().mapError(e)?.code ?? String(e),
  );

describe('rotation policies', () => {
  it('refuses nextRotationAt (AWS schedules rotations itself) with Unsupported, changing nothing (local-kms)', async () => {
    const provider = providerFor(target('local-kms'));
    try {
      const key = await provider.createKey({ name: uniqueName('next-rot'), spec: 'AES_256' }, call());
      const nextRotationAt = new Date(Date.now() + 30 * 86_400_000);
      for (const policy of [{ periodDays: 90, nextRotationAt }, { nextRotationAt }]) {
        await expect(provider.setRotationPolicy({ uri: key.uri }, policy, call())).rejects.toMatchObject({
          code: 'Unsupported',
          capability: 'rotationSchedule',
          message: expect.stringContaining('nextRotationAt'),
        });
      }
      expect((await provider.describeKey({ uri: key.uri }, call())).rotation).toEqual({});
      // through a Keyport as well, and at creation
      const keyport = createKeyport({ providers: [provider] });
      await expect(
        keyport.setRotationPolicy(key.uri, { periodDays: 365, nextRotationAt }),
      ).rejects.toMatchObject({ code: 'Unsupported' });
      const name = uniqueName('next-rot-new');
      await expect(
        keyport.createKey('aws-kms', { name, spec: 'AES_256', rotation: { periodDays: 90, nextRotationAt } }),
      ).rejects.toMatchObject({ code: 'Unsupported' });
      // nothing was made under the name
      await expect(provider.describeKey({ uri: `aws-kms://alias/${name}` }, call())).rejects.toMatchObject({
        name: 'NotFoundException',
      });
    } finally {
      await provider.close();
    }
  });

  it('refuses NaN, strings, 0, huge and fractional periods and malformed policies before any request', async () => {
    const { provider, requests } = stubbed();
    const policies: unknown[] = [
      { periodDays: Number.NaN },
      { periodDays: '90' },
      { periodDays: 0 },
      { periodDays: 1e9 },
      { periodDays: 89 },
      { periodDays: 2561 },
      { periodDays: 90.5 },
      { periodDays: Number.POSITIVE_INFINITY },
      { periodDays: 90, nextRotation: new Date() },
      { periodDays: 90, nextRotationAt: 'tomorrow' },
      JSON.parse('{"__proto__": {"periodDays": 90}}'),
      null,
      undefined,
      '90',
    ];
    for (const policy of policies) {
      expect(
        await codeOf(provider.setRotationPolicy({ uri: KEY }, policy as never, call())),
        String(policy),
      ).toBe('InvalidArgument');
      const req = { name: 'rotating', spec: 'AES_256', rotation: policy };
      if (policy !== undefined)
        expect(await codeOf(provider.createKey(req as never, call())), String(policy)).toBe(
          'InvalidArgument',
        );
    }
    expect(requests).toEqual([]);
  });
});

describe('requests checked at the driver', () => {
  it('refuses unknown, mistyped and oversized fields of createKey, scheduleKeyDeletion, createGrant and listing before any request', async () => {
    const { provider, requests } = stubbed();
    const refused: Array<() => Promise<unknown>> = [
      () => provider.createKey({ name: 'x', spec: 'AES_256', exportable: true } as never, call()),
      () => provider.createKey({ name: 42, spec: 'AES_256' } as never, call()),
      () => provider.createKey({ name: 'x', spec: '__proto__' } as never, call()),
      () => provider.createKey({ name: 'x', spec: 'AES_256', labels: { a: 1 } } as never, call()),
      () => provider.createKey({ name: 'x', spec: 'AES_256', description: 'd'.repeat(10_000) }, call()),
      () => provider.createKey(null as never, call()),
      () => provider.scheduleKeyDeletion({ uri: KEY }, { days: '7' } as never, call()),
      () => provider.scheduleKeyDeletion({ uri: KEY }, { days: Number.NaN }, call()),
      () => provider.scheduleKeyDeletion({ uri: KEY }, { days: 7, soon: true } as never, call()),
      () =>
        provider.createGrant(
          { uri: KEY },
          {
            grantee: 'arn:aws:iam::111122223333:role/r',
            operations: ['encrypt'],
            retiringPrincipal: 'x',
          } as never,
          call(),
        ),
      () => provider.createGrant({ uri: KEY }, { grantee: 7, operations: ['encrypt'] } as never, call()),
    ];
    for (const [i, p] of refused.entries()) expect(await codeOf(p()), `case ${i}`).toBe('InvalidArgument');
    for (const pageSize of [Number.NaN, '5', 0, 1.5]) {
      const list = async () => {
        for await (const _ of provider.listKeys({ ...call(), pageSize } as never)) break;
      };
      const grants = async () => {
        for await (const _ of provider.listGrants({ uri: KEY }, { ...call(), pageSize } as never)) break;
      };
      expect(await codeOf(list()), String(pageSize)).toBe('InvalidArgument');
      expect(await codeOf(grants()), String(pageSize)).toBe('InvalidArgument');
    }
    expect(requests).toEqual([]);
  });

  it('narrows a large page size to what AWS takes (ListKeys 1000, ListGrants 100)', async () => {
    const { provider, requests } = stubbed(() => ({ json: {} }));
    for await (const _ of provider.listKeys({ ...call(), pageSize: 5000 })) break;
    for await (const _ of provider.listGrants({ uri: KEY }, { ...call(), pageSize: 5000 })) break;
    expect(requests.map((r) => [r.operation, r.body.Limit])).toEqual([
      ['ListKeys', 1000],
      ['ListGrants', 100],
    ]);
  });
});

describe('grant tokens', () => {
  const answer = (op: string) =>
    op === 'DescribeKey'
      ? { json: keyMetadata('SYMMETRIC_DEFAULT') }
      : { json: { CiphertextBlob: 'AAEC', Plaintext: DATA_KEY_32, KeyId: ARN } };

  it('sends no GrantTokens field when the list is empty', async () => {
    const { provider, requests } = stubbed(answer, []);
    await provider.encrypt({ uri: KEY }, utf8('x'), {}, call());
    await provider.withGrantTokens([]).generateDataKey({ uri: KEY }, {}, call());
    expect(requests.map((r) => r.operation)).toEqual(['DescribeKey', 'Encrypt', 'GenerateDataKey']);
    for (const r of requests) expect(Object.hasOwn(r.body, 'GrantTokens'), r.operation).toBe(false);
  });

  it('takes up to 10 tokens of up to 8192 characters; refuses holes, more, longer or non-strings', async () => {
    const longest = 't'.repeat(8192);
    const { provider, requests } = stubbed(
      answer,
      Array.from({ length: 10 }, () => longest),
    );
    await provider.generateDataKey({ uri: KEY }, {}, call());
    expect(requests[0]?.body.GrantTokens).toHaveLength(10);
    const sparse: string[] = [];
    sparse[1] = 'token';
    for (const tokens of [
      sparse,
      Array.from({ length: 11 }, () => 't'),
      ['t'.repeat(8193)],
      [{ toString: () => 't' }],
      ['\ud800'],
    ]) {
      expect(() => stubbed(answer, tokens), JSON.stringify(tokens).slice(0, 40)).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
      expect(() => provider.withGrantTokens(tokens as string[])).toThrow(
        expect.objectContaining({ code: 'InvalidArgument' }),
      );
    }
  });
});

describe('createKey cut off while naming the key', () => {
  it('drops an alias the aborted CreateAlias made (it would name a key pending deletion)', async () => {
    const seen: string[] = [];
    let aliasMade = false;
    const { provider, requests } = stubbed((op) => {
      seen.push(op);
      if (op === 'CreateKey') return { json: keyMetadata('SYMMETRIC_DEFAULT') };
      if (op === 'CreateAlias') {
        aliasMade = true; // AWS made it; the answer never arrives
        return 'hang';
      }
      if (op === 'DescribeKey')
        return aliasMade
          ? { json: keyMetadata('SYMMETRIC_DEFAULT') }
          : { status: 400, json: { __type: 'NotFoundException' } };
      if (op === 'DeleteAlias') aliasMade = false;
      return { json: {} };
    });
    const controller = new AbortController();
    const pending = provider.createKey({ name: 'cut-off', spec: 'AES_256' }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    expect(await codeOf(pending)).toBe('Aborted');
    await vi.waitFor(() => expect(aliasMade).toBe(false), { timeout: 5_000 });
    expect(seen).toEqual(['CreateKey', 'CreateAlias', 'ScheduleKeyDeletion', 'DescribeKey', 'DeleteAlias']);
    expect(requests.find((r) => r.operation === 'DeleteAlias')?.body).toEqual({ AliasName: 'alias/cut-off' });
  });

  it('never drops the alias when it names another key, nor checks it when AWS refused the alias', async () => {
    const other = keyMetadata('SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT', '99999999-12ab-34cd-56ef-1234567890ab');
    const cutOff = stubbed((op) => {
      if (op === 'CreateKey') return { json: keyMetadata('SYMMETRIC_DEFAULT') };
      if (op === 'CreateAlias') return { status: 503, raw: 'Service Unavailable' };
      if (op === 'DescribeKey') return { json: other };
      return { json: {} };
    });
    expect(await codeOf(cutOff.provider.createKey({ name: 'taken', spec: 'AES_256' }, call()))).toBe(
      'Unavailable',
    );
    // the alias is looked up first (it might name our key: success), then our key scheduled away
    expect(cutOff.requests.map((r) => r.operation)).toEqual([
      'CreateKey',
      'CreateAlias',
      'DescribeKey',
      'ScheduleKeyDeletion',
    ]);
    const refused = stubbed((op) =>
      op === 'CreateKey'
        ? { json: keyMetadata('SYMMETRIC_DEFAULT') }
        : op === 'CreateAlias'
          ? { status: 400, json: { __type: 'AlreadyExistsException' } }
          : { json: {} },
    );
    expect(await codeOf(refused.provider.createKey({ name: 'taken', spec: 'AES_256' }, call()))).toBe(
      'AlreadyExists',
    );
    expect(refused.requests.map((r) => r.operation)).toEqual([
      'CreateKey',
      'CreateAlias',
      'ScheduleKeyDeletion',
    ]);
  });

  it('disables the key instead when the credentials may not schedule its deletion, and says so', async () => {
    const { provider, requests } = stubbed((op) => {
      if (op === 'CreateKey') return { json: keyMetadata('SYMMETRIC_DEFAULT') };
      if (op === 'CreateAlias') return { status: 400, json: { __type: 'AlreadyExistsException' } };
      if (op === 'ScheduleKeyDeletion') return { status: 400, json: { __type: 'AccessDeniedException' } };
      return { json: {} };
    });
    const error = await provider
      .createKey({ name: 'taken', spec: 'AES_256' }, call())
      .catch((e: unknown) => e);
    const mapped = provider.mapError(error);
    expect(mapped?.code).toBe('AlreadyExists');
    expect(mapped?.message).toMatch(
      /key 1234abcd-12ab-34cd-56ef-1234567890ab, which could not be scheduled for deletion and is disabled/,
    );
    expect(requests.map((r) => r.operation)).toEqual([
      'CreateKey',
      'CreateAlias',
      'ScheduleKeyDeletion',
      'DisableKey',
    ]);
  });
});

describe('hostile answers', () => {
  it('a listing whose endpoint repeats a page marker ends Internal instead of looping forever', async () => {
    const meta = keyMetadata('SYMMETRIC_DEFAULT');
    let pages = 0;
    const { provider, requests } = stubbed((op) => {
      if (op === 'DescribeKey') return { json: meta };
      // a listing that never stopped on its own is stopped here, answering something else
      if (op.startsWith('List') && ++pages > 50) return { status: 500, raw: 'enough' };
      if (op === 'ListResourceTags')
        return { json: { Tags: [{ TagKey: 't', TagValue: 'v' }], Truncated: true, NextMarker: 'again' } };
      if (op === 'ListKeys') return { json: { Keys: [], Truncated: true, NextMarker: 'again' } };
      if (op === 'ListGrants') return { json: { Grants: [], Truncated: true, NextMarker: 'again' } };
      if (op === 'GetKeyRotationStatus') return { json: { KeyRotationEnabled: false } };
      return { json: {} };
    });
    expect(await codeOf(provider.describeKey({ uri: KEY }, call()))).toBe('Internal');
    const drain = async (listing: AsyncIterable<unknown>) => {
      for await (const _ of listing);
    };
    expect(await codeOf(drain(provider.listKeys(call())))).toBe('Internal');
    expect(await codeOf(drain(provider.listGrants({ uri: KEY }, call())))).toBe('Internal');
    // each listing asked for one page past the first, then stopped
    expect(requests.filter((r) => r.operation === 'ListResourceTags')).toHaveLength(2);
    expect(requests.filter((r) => r.operation === 'ListKeys')).toHaveLength(2);
    expect(requests.filter((r) => r.operation === 'ListGrants')).toHaveLength(2);
  });

  it('a truncated page without a next marker ends Internal instead of silently dropping the rest', async () => {
    const meta = keyMetadata('SYMMETRIC_DEFAULT');
    const { provider } = stubbed((op) => {
      if (op === 'DescribeKey') return { json: meta };
      if (op === 'ListResourceTags')
        return { json: { Tags: [{ TagKey: 't', TagValue: 'v' }], Truncated: true } };
      if (op === 'ListKeys') return { json: { Keys: [], Truncated: true, NextMarker: '' } };
      if (op === 'ListGrants') return { json: { Grants: [], Truncated: true } };
      if (op === 'GetKeyRotationStatus') return { json: { KeyRotationEnabled: false } };
      return { json: {} };
    });
    const drain = async (listing: AsyncIterable<unknown>) => {
      for await (const _ of listing);
    };
    expect(await codeOf(provider.describeKey({ uri: KEY }, call()))).toBe('Internal');
    expect(await codeOf(drain(provider.listKeys(call())))).toBe('Internal');
    expect(await codeOf(drain(provider.listGrants({ uri: KEY }, call())))).toBe('Internal');
  });

  it('a KeyState naming an Object.prototype member reads as the Enabled flag says, as a string', async () => {
    for (const KeyState of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const { provider } = stubbed((op) => {
        if (op === 'DescribeKey') {
          const { KeyMetadata } = keyMetadata('SYMMETRIC_DEFAULT');
          return { json: { KeyMetadata: { ...KeyMetadata, KeyState, Enabled: false } } };
        }
        if (op === 'GetKeyRotationStatus') return { json: { KeyRotationEnabled: false } };
        return { json: {} };
      });
      expect((await provider.describeKey({ uri: KEY }, call())).state, KeyState).toBe('disabled');
    }
  });
});
