/**
 * An alias is a name another principal (anyone with kms:UpdateAlias) may point at another key at
 * any moment. A call made by alias resolves it once and acts on that key; what it returns must
 * describe that same key, never whatever the alias names a moment later:
 * - a lifecycle call (disable, schedule deletion, ...) answers with the state of the key it
 *   changed, not of the key the alias was moved to (a caller seeing "enabled" would act again);
 * - importKeyMaterial / deleteImportedKeyMaterial likewise;
 * - a grant made by alias carries the key ARN it was made on, so revoking it later (by the
 *   grant's keyUri) reaches that grant even after the alias moved.
 * The alias is moved by a middleware on the client the provider uses, right after the request
 * that acted on the key: the window a concurrent UpdateAlias would hit.
 */
import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  KMSClient,
  ListGrantsCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { afterAll, describe, expect, it } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import {
  call,
  sdkClientFor,
  TARGET_NAMES,
  type TargetName,
  TEST_CREDENTIALS,
  target,
  uniqueName,
} from './support/targets.js';

const GRANTEE = 'arn:aws:iam::123456789012:role/keyport-alias-pinning';

/**
 * A provider whose client moves `alias/<alias>` to `movedTo` once a request of `afterCommand`
 * has been answered (once per arm()).
 */
function racedProvider(name: TargetName) {
  const t = target(name);
  const sdk = sdkClientFor(t);
  const client = new KMSClient({
    region: 'us-east-1',
    endpoint: t.endpoint,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
  });
  let armed: { command: string; alias: string; movedTo: string } | undefined;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      const plan = armed;
      if (plan !== undefined && context.commandName === `${plan.command}Command`) {
        armed = undefined;
        await sdk.send(
          new UpdateAliasCommand({ AliasName: `alias/${plan.alias}`, TargetKeyId: plan.movedTo }),
        );
      }
      return out;
    },
    { step: 'initialize', name: 'moveAliasAfter' },
  );
  const provider = new AwsKmsProvider({ client });
  return {
    provider,
    sdk,
    arm: (command: string, alias: string, movedTo: string) => {
      armed = { command, alias, movedTo };
    },
    close: async () => {
      await provider.close();
      client.destroy();
      sdk.destroy();
    },
  };
}

async function newKey(sdk: KMSClient, origin?: 'EXTERNAL'): Promise<{ id: string; arn: string }> {
  // KeyUsage given: moto leaves it out of a key's metadata when CreateKey omits it
  const out = await sdk.send(
    new CreateKeyCommand({
      KeySpec: 'SYMMETRIC_DEFAULT',
      KeyUsage: 'ENCRYPT_DECRYPT',
      ...(origin !== undefined ? { Origin: origin } : {}),
    }),
  );
  return { id: out.KeyMetadata?.KeyId as string, arn: out.KeyMetadata?.Arn as string };
}

/** Key A named by a fresh alias, and key B the alias will be moved to. */
async function aliasedPair(sdk: KMSClient, origin?: 'EXTERNAL') {
  const alias = uniqueName('pin');
  const a = await newKey(sdk, origin);
  const b = await newKey(sdk, origin);
  await sdk.send(new CreateAliasCommand({ AliasName: `alias/${alias}`, TargetKeyId: a.id }));
  return { alias, a, b };
}

const stateOf = async (sdk: KMSClient, keyId: string) =>
  (await sdk.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.KeyState;

describe.each(TARGET_NAMES)('a lifecycle call by alias answers for the key it changed, on %s', (name) => {
  let raced: ReturnType<typeof racedProvider> | undefined;
  const r = () => {
    raced ??= racedProvider(name);
    return raced;
  };
  afterAll(async () => raced?.close());

  it('scheduleKeyDeletion: the key scheduled, pending deletion, though the alias moved meanwhile', async () => {
    const { provider, sdk, arm } = r();
    const { alias, a, b } = await aliasedPair(sdk);
    arm('ScheduleKeyDeletion', alias, b.id);
    const info = await provider.scheduleKeyDeletion({ uri: `aws-kms://alias/${alias}` }, { days: 7 }, call());
    expect(await stateOf(sdk, a.id)).toBe('PendingDeletion');
    expect(await stateOf(sdk, b.id)).toBe('Enabled');
    expect(info.uri).toBe(`aws-kms://${a.arn}`);
    expect(info.state).toBe('pending_deletion');
  });

  it('disableKey: the key disabled, not the enabled key the alias names now', async () => {
    const { provider, sdk, arm } = r();
    const { alias, a, b } = await aliasedPair(sdk);
    arm('DisableKey', alias, b.id);
    const info = await provider.disableKey({ uri: `aws-kms://alias/${alias}` }, call());
    expect(await stateOf(sdk, a.id)).toBe('Disabled');
    expect(info).toMatchObject({ uri: `aws-kms://${a.arn}`, state: 'disabled' });
  });
});

describe('importKeyMaterial by alias answers for the key it imported into, on local-kms', () => {
  let raced: ReturnType<typeof racedProvider> | undefined;
  afterAll(async () => raced?.close());

  it('imports into the key the alias named and describes that key, not the one it names now', async () => {
    raced = racedProvider('local-kms');
    const { provider, sdk, arm } = raced;
    const { alias, a, b } = await aliasedPair(sdk, 'EXTERNAL');
    const uri = `aws-kms://alias/${alias}`;
    const params = await provider.getImportParameters({ uri }, { algorithm: 'RSAES_OAEP_SHA_256' }, call());
    const wrappedMaterial = publicEncrypt(
      {
        key: createPublicKey({ key: Buffer.from(params.wrappingPublicKey), format: 'der', type: 'spki' }),
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: 'sha256',
      },
      randomBytes(32),
    );
    arm('ImportKeyMaterial', alias, b.id);
    const info = await provider.importKeyMaterial(
      { uri },
      {
        wrappedMaterial,
        algorithm: 'RSAES_OAEP_SHA_256',
        ...(params.importToken !== undefined ? { importToken: params.importToken } : {}),
      },
      call(),
    );
    expect(await stateOf(sdk, a.id)).toBe('Enabled');
    expect(await stateOf(sdk, b.id)).toBe('PendingImport');
    expect(info).toMatchObject({ uri: `aws-kms://${a.arn}`, state: 'enabled' });
  });
});

describe('a grant made by alias, on moto', () => {
  let raced: ReturnType<typeof racedProvider> | undefined;
  afterAll(async () => raced?.close());

  it('names the key it was made on, so revoking it by its keyUri after the alias moved still revokes it', async () => {
    raced = racedProvider('moto');
    const { provider, sdk, arm } = raced;
    const { alias, a, b } = await aliasedPair(sdk);
    arm('CreateGrant', alias, b.id);
    const grant = await provider.createGrant(
      { uri: `aws-kms://alias/${alias}` },
      { grantee: GRANTEE, operations: ['decrypt'], constraints: { contextEquals: { tenant: 't-1' } } },
      call(),
    );
    expect(grant.keyUri).toBe(`aws-kms://${a.arn}`);
    const onA = async () => (await sdk.send(new ListGrantsCommand({ KeyId: a.id }))).Grants ?? [];
    expect((await onA()).map((g) => g.GrantId)).toEqual([grant.id]);
    await provider.revokeGrant({ uri: grant.keyUri }, grant.id, call());
    expect(await onA()).toEqual([]);
  });
});
