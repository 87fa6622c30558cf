/**
 * A lifecycle call whose first attempt took effect but whose answer was lost (the connection
 * dropped on the way back) is repeated by core, and AWS refuses the repeat: ScheduleKeyDeletion
 * of a key already pending deletion, CancelKeyDeletion of one no longer pending, answer
 * KMSInvalidStateException. Through Keyport the call answers with the key as the lost attempt
 * left it, not with that refusal. A middleware on the client the provider uses drops the first
 * answer of the command under test, after the emulator has carried it out. local-kms refuses the
 * repeats as AWS does; moto accepts them (so there the call passes either way).
 */
import { CreateKeyCommand, KMSClient, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import { createKeyport } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { AwsKmsProvider } from '../src/index.js';
import { sdkClientFor, TARGET_NAMES, TEST_CREDENTIALS, target } from './support/targets.js';

function droppingProvider(name: (typeof TARGET_NAMES)[number]) {
  const client = new KMSClient({
    region: 'us-east-1',
    endpoint: target(name).endpoint,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
  });
  let dropNext: string | undefined;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      if (dropNext !== undefined && context.commandName === `${dropNext}Command`) {
        dropNext = undefined;
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      }
      return out;
    },
    { step: 'deserialize', name: 'dropOneAnswer' },
  );
  const provider = new AwsKmsProvider({ client });
  return {
    provider,
    drop: (command: string) => {
      dropNext = command;
    },
    close: async () => {
      await provider.close();
      client.destroy();
    },
  };
}

describe.each(TARGET_NAMES)('answers lost on %s', (name) => {
  it('scheduleKeyDeletion and cancelKeyDeletion answer with the key the lost attempt left', async () => {
    const sdk = sdkClientFor(target(name));
    const made = await sdk.send(new CreateKeyCommand({ KeyUsage: 'ENCRYPT_DECRYPT' }));
    const uri = `aws-kms://${made.KeyMetadata?.Arn}`;
    const { provider, drop, close } = droppingProvider(name);
    const kp = createKeyport({ providers: [provider], retry: { baseDelayMs: 1, maxDelayMs: 5 } });
    try {
      drop('ScheduleKeyDeletion');
      const scheduled = await kp.scheduleKeyDeletion(uri, { days: 7 });
      expect(scheduled.state).toBe('pending_deletion');
      drop('CancelKeyDeletion');
      const cancelled = await kp.cancelKeyDeletion(uri);
      expect(cancelled.state).not.toBe('pending_deletion');
      // Without a lost answer the refusal is the caller's: a key not pending deletion (local-kms
      // refuses as AWS does; moto cancels a deletion that is not pending without complaint).
      if (name === 'local-kms')
        await expect(kp.cancelKeyDeletion(uri)).rejects.toMatchObject({ code: 'KeyStateConflict' });
    } finally {
      await kp.close();
      await close();
      await sdk
        .send(new ScheduleKeyDeletionCommand({ KeyId: made.KeyMetadata?.KeyId, PendingWindowInDays: 7 }))
        .catch(() => undefined);
    }
  });
});
