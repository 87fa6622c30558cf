/** Rotation, rotation policy, disable/enable, scheduled deletion and version destruction. */
import { describe, expect, it } from 'vitest';
import { declaredIn } from '../capability-plan.js';
import { expectError } from '../expect-error.js';
import { lifecycleProbe, lifecycleSpec, type Topic } from './registrar.js';

export function registerLifecycleTests(t: Topic): void {
  const { plan, timeoutMs } = t;
  const chosen = lifecycleSpec(plan);
  if (chosen === undefined) return;
  const newKey = (hint: string) => t.state().createKey(chosen.spec, { usage: chosen.usage, hint });
  const versioned = declaredIn(plan, 'rotation') === 'versioned';

  if (plan.exercised.has('rotation')) {
    describe(`rotation (${chosen.spec})`, () => {
      it(
        'old artefacts still open after rotation; new ones carry the new version',
        async () => {
          const s = t.state();
          const probe = lifecycleProbe(t, chosen);
          const key = await newKey('rotate');
          const before = await probe.use(key);
          const rotated = await s.client.rotateKey(key.uri);
          expect(rotated.uri).toBe(key.uri);
          expect(await before.reopen()).toBe(before.keyVersion);
          if (!versioned) return; // 'transparent' rotation: versions cannot be named, only old artefacts are checked
          expect(rotated.primaryVersion).toBeDefined();
          expect(rotated.primaryVersion).not.toBe(before.keyVersion);
          const after = await probe.use(key);
          expect(after.keyVersion).toBe(rotated.primaryVersion);
          expect(await after.reopen()).toBe(rotated.primaryVersion);
          const described = await s.client.describeKey(key.uri);
          expect(described.primaryVersion).toBe(rotated.primaryVersion);
          const versions = (described.versions ?? []).map((v) => v.version);
          expect(versions).toEqual(expect.arrayContaining([before.keyVersion, rotated.primaryVersion]));
        },
        timeoutMs,
      );

      it(
        'rotating a key that does not exist fails with NotFound',
        async () => {
          const s = t.state();
          await expectError(s.client.rotateKey(s.fixtures.missingKeyUri()), 'NotFound');
        },
        timeoutMs,
      );
    });
  }

  if (plan.exercised.has('autoRotation')) {
    describe('rotation policy', () => {
      it(
        'sets and clears an automatic rotation period',
        async () => {
          const s = t.state();
          const key = await newKey('rotation-policy');
          await s.client.setRotationPolicy(key.uri, { periodDays: 90 });
          expect((await s.client.describeKey(key.uri)).rotation?.periodDays).toBe(90);
          await s.client.setRotationPolicy(key.uri, {});
          expect((await s.client.describeKey(key.uri)).rotation?.periodDays).toBeUndefined();
        },
        timeoutMs,
      );

      it(
        'refuses a negative rotation period (InvalidArgument)',
        async () => {
          const s = t.state();
          const key = await newKey('rotation-policy-bad');
          await expectError(s.client.setRotationPolicy(key.uri, { periodDays: -1 }), 'InvalidArgument');
        },
        timeoutMs,
      );
    });
  }

  if (plan.exercised.has('enableDisable')) {
    describe('disable and enable', () => {
      it(
        'a disabled key refuses use (KeyStateConflict); enabling restores it',
        async () => {
          const s = t.state();
          const probe = lifecycleProbe(t, chosen);
          const key = await newKey('disable');
          const before = await probe.use(key);
          expect((await s.client.disableKey(key.uri)).state).toBe('disabled');
          expect((await s.client.describeKey(key.uri)).state).toBe('disabled');
          await expectError(probe.use(key), 'KeyStateConflict');
          await expectError(before.reopen(), 'KeyStateConflict');
          expect((await s.client.enableKey(key.uri)).state).toBe('enabled');
          await before.reopen();
          await (await probe.use(key)).reopen();
        },
        timeoutMs,
      );

      it(
        'disabling a key that does not exist fails with NotFound',
        async () => {
          const s = t.state();
          await expectError(s.client.disableKey(s.fixtures.missingKeyUri()), 'NotFound');
        },
        timeoutMs,
      );
    });
  }

  if (plan.exercised.has('scheduledDeletion')) {
    describe('scheduled deletion', () => {
      it(
        'a key pending deletion refuses use (KeyStateConflict); cancelling restores it',
        async () => {
          const s = t.state();
          const probe = lifecycleProbe(t, chosen);
          const key = await newKey('delete');
          const before = await probe.use(key);
          const scheduled = await s.client.scheduleKeyDeletion(key.uri, { days: 7 });
          expect(scheduled.state).toBe('pending_deletion');
          expect(scheduled.deletionDate).toBeInstanceOf(Date);
          await expectError(probe.use(key), 'KeyStateConflict');
          await expectError(before.reopen(), 'KeyStateConflict');
          const cancelled = await s.client.cancelKeyDeletion(key.uri);
          // AWS leaves a cancelled key disabled; others re-enable it. Either way it must be usable after enabling.
          expect(['enabled', 'disabled']).toContain(cancelled.state);
          if (cancelled.state === 'disabled') await s.client.enableKey(key.uri);
          await before.reopen();
          await (await probe.use(key)).reopen();
        },
        timeoutMs,
      );

      it(
        'cancelling deletion of a key that is not pending deletion fails (KeyStateConflict)',
        async () => {
          const s = t.state();
          const key = await newKey('cancel-not-pending');
          await expectError(s.client.cancelKeyDeletion(key.uri), 'KeyStateConflict');
        },
        timeoutMs,
      );
    });
  }

  if (plan.exercised.has('destroyVersion') && plan.exercised.has('rotation') && versioned) {
    describe('destroy a key version', () => {
      it(
        'artefacts of a destroyed version no longer open; the other versions still do',
        async () => {
          const s = t.state();
          const probe = lifecycleProbe(t, chosen);
          const key = await newKey('destroy-version');
          const old = await probe.use(key);
          await s.client.rotateKey(key.uri);
          const current = await probe.use(key);
          const version = old.keyVersion;
          expect(version).toBeDefined();
          const after = await s.client.destroyKeyVersion({ uri: key.uri, ...(version ? { version } : {}) });
          const state = after.versions?.find((v) => v.version === version)?.state;
          expect(['destroyed', 'destroy_scheduled']).toContain(state);
          await expectError(old.reopen(), 'KeyStateConflict');
          await current.reopen();
        },
        timeoutMs,
      );

      it(
        'destroying without naming a version, or a version that does not exist, fails',
        async () => {
          const s = t.state();
          const key = await newKey('destroy-bad');
          await expectError(s.client.destroyKeyVersion(key.uri), 'InvalidArgument');
          await expectError(s.client.destroyKeyVersion({ uri: key.uri, version: '9999' }), 'NotFound');
        },
        timeoutMs,
      );
    });
  }
}
