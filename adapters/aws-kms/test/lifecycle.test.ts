/**
 * Lifecycle. local-kms enforces key states (disabled, pending deletion); moto records them but
 * keeps encrypting, so enforcement is proven on local-kms and moto checks the recorded state.
 * local-kms lacks RotateKeyOnDemand (answers 501): on-demand rotation is proven on moto.
 */
import { createKeyport } from '@keyport/core';
import { afterAll, describe, expect, it } from 'vitest';
import type { AwsKmsProvider } from '../src/index.js';
import { keyMetadata, stubTransport } from './support/stub-transport.js';
import {
  call,
  providerFor,
  TARGET_NAMES,
  TEST_CREDENTIALS,
  target,
  uniqueName,
  utf8,
} from './support/targets.js';

describe.each(TARGET_NAMES)('lifecycle on %s', (name) => {
  let provider: AwsKmsProvider | undefined;
  const p = (): AwsKmsProvider => {
    provider ??= providerFor(target(name));
    return provider;
  };
  afterAll(async () => provider?.close());
  const enforces = name === 'local-kms';
  const newKey = async () => (await p().createKey({ name: uniqueName('life'), spec: 'AES_256' }, call())).uri;
  const encryptCode = async (uri: string) =>
    p()
      .encrypt({ uri }, utf8('x'), {}, call())
      .then(
        () => 'ok',
        (e: unknown) => p().mapError(e)?.code,
      );

  it('disables and re-enables a key', async () => {
    const uri = await newKey();
    expect((await p().disableKey({ uri }, call())).state).toBe('disabled');
    expect(await encryptCode(uri)).toBe(enforces ? 'KeyStateConflict' : 'ok');
    expect((await p().enableKey({ uri }, call())).state).toBe('enabled');
    expect(await encryptCode(uri)).toBe('ok');
  });

  it('schedules deletion within 7-30 days and cancels it', async () => {
    const uri = await newKey();
    for (const days of [6, 31, 7.5]) {
      await expect(p().scheduleKeyDeletion({ uri }, { days }, call())).rejects.toMatchObject({
        code: 'InvalidArgument',
      });
    }
    const before = Date.now();
    const pending = await p().scheduleKeyDeletion({ uri }, { days: 7 }, call());
    expect(pending.state).toBe('pending_deletion');
    const waitDays = ((pending.deletionDate?.getTime() ?? 0) - before) / 86_400_000;
    expect(waitDays).toBeGreaterThan(6.9);
    expect(waitDays).toBeLessThan(7.1);
    expect(await encryptCode(uri)).toBe(enforces ? 'KeyStateConflict' : 'ok');
    const cancelled = await p().cancelKeyDeletion({ uri }, call());
    // AWS (and moto) leave a cancelled key disabled; local-kms re-enables it
    expect(cancelled.state).toBe(name === 'moto' ? 'disabled' : 'enabled');
    expect((await p().enableKey({ uri }, call())).state).toBe('enabled');
    expect(await encryptCode(uri)).toBe('ok');
  });

  it('turns automatic rotation on with a period and off again', async () => {
    const uri = await newKey();
    expect((await p().describeKey({ uri }, call())).rotation).toEqual({});
    const on = await p().setRotationPolicy({ uri }, { periodDays: 180 }, call());
    // neither emulator stores the period (both answer only KeyRotationEnabled); the request is
    // checked with the stubbed transport below
    expect(on.rotation?.periodDays).toBeGreaterThan(0);
    expect((await p().setRotationPolicy({ uri }, {}, call())).rotation).toEqual({});
    await expect(p().setRotationPolicy({ uri }, { periodDays: 89 }, call())).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });

  it(`rotates on demand ${name === 'moto' ? '(old ciphertexts keep opening)' : '(not emulated: local-kms answers 501)'}`, async () => {
    const uri = await newKey();
    const before = await p().encrypt({ uri }, utf8('old'), {}, call());
    const rotated = await p()
      .rotateKey({ uri }, call())
      .catch((e: unknown) => p().mapError(e));
    if (name === 'moto') {
      expect(rotated).toMatchObject({ uri, state: 'enabled' });
      expect((await p().decrypt({ uri }, before.ciphertext, {}, call())).plaintext).toEqual(utf8('old'));
    } else {
      expect(rotated).toMatchObject({ code: 'Unsupported' });
    }
  });

  it('has no version destruction: the driver lacks the method and core answers Unsupported', async () => {
    expect('destroyKeyVersion' in p()).toBe(false);
    const keys = createKeyport({ providers: [p()] });
    await expect(keys.destroyKeyVersion({ uri: await newKey(), version: '1' })).rejects.toMatchObject({
      code: 'Unsupported',
      capability: 'destroyVersion',
    });
  });
});

describe('rotation period (stubbed transport: no emulator stores it)', () => {
  it('resolves an alias to its key id, sends RotationPeriodInDays and reads it back', async () => {
    const stub = stubTransport((op) => {
      if (op === 'DescribeKey') return { json: keyMetadata('SYMMETRIC_DEFAULT') };
      if (op === 'GetKeyRotationStatus')
        return {
          json: { KeyRotationEnabled: true, RotationPeriodInDays: 180, NextRotationDate: 1_900_000_000 },
        };
      if (op === 'ListResourceTags') return { json: { Tags: [], Truncated: false } };
      return { json: {} };
    });
    const provider = new (await import('../src/index.js')).AwsKmsProvider({
      region: 'us-east-1',
      credentials: TEST_CREDENTIALS,
      clientConfig: stub.clientConfig,
    });
    const uri = 'aws-kms://alias/rotating';
    const info = await provider.setRotationPolicy({ uri }, { periodDays: 180 }, call());
    // AWS accepts no alias on management calls: DescribeKey resolves it first
    expect(stub.requests.slice(0, 2)).toMatchObject([
      { operation: 'DescribeKey', body: { KeyId: 'alias/rotating' } },
      {
        operation: 'EnableKeyRotation',
        body: { KeyId: '1234abcd-12ab-34cd-56ef-1234567890ab', RotationPeriodInDays: 180 },
      },
    ]);
    expect(info.rotation).toEqual({ periodDays: 180, nextRotationAt: new Date(1_900_000_000_000) });
  });
});
