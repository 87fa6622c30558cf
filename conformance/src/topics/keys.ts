/** Key creation, description and listing. */
import { describe, expect, it } from 'vitest';
import { collect, expectError } from '../expect-error.js';
import { impossibleUsage, type Topic } from './registrar.js';

export function registerKeyTests(t: Topic): void {
  const { plan, timeoutMs } = t;
  const first = plan.specs[0];

  describe('keys: create and describe', () => {
    for (const { spec, usages } of plan.specs) {
      for (const usage of usages) {
        it(
          `creates a ${spec} key for ${usage} and describes it`,
          async () => {
            const s = t.state();
            const created = await s.createKey(spec, {
              usage,
              labels: { suite: 'conformance', spec: spec.toLowerCase() },
              description: 'keyport conformance key',
            });
            expect(created).toMatchObject({ spec, usage, state: 'enabled' });
            expect(created.labels).toMatchObject({ suite: 'conformance' });
            const described = await s.client.describeKey(created.uri);
            expect(described).toMatchObject({ uri: created.uri, spec, usage, state: 'enabled' });
            expect(described.labels).toMatchObject({ suite: 'conformance', spec: spec.toLowerCase() });
            if (created.primaryVersion !== undefined)
              expect(described.primaryVersion).toBe(created.primaryVersion);
          },
          timeoutMs,
        );
      }
    }

    if (first !== undefined) {
      it(
        'refuses a second key with the same name (AlreadyExists)',
        async () => {
          const s = t.state();
          const name = s.fixtures.keyName('duplicate');
          const usage = s.usageFor(first.spec);
          await s.client.createKey(s.scheme, { name, spec: first.spec, usage });
          await expectError(s.client.createKey(s.scheme, { name, spec: first.spec, usage }), 'AlreadyExists');
        },
        timeoutMs,
      );

      it(
        'refuses a usage the key spec cannot serve (InvalidArgument)',
        async () => {
          const s = t.state();
          const usage = impossibleUsage(first.spec);
          await expectError(s.createKey(first.spec, { usage, hint: 'bad-usage' }), 'InvalidArgument');
        },
        timeoutMs,
      );
    }

    it(
      'describing a key that does not exist fails with NotFound',
      async () => {
        const s = t.state();
        const uri = s.fixtures.missingKeyUri();
        const error = await expectError(s.client.describeKey(uri), 'NotFound');
        expect(error.keyUri).toBe(uri);
      },
      timeoutMs,
    );
  });

  if (plan.exercised.has('listKeys') && first !== undefined) {
    describe('keys: list', () => {
      it(
        'pages through the keys: several new keys are all listed, none twice',
        async () => {
          const s = t.state();
          const made = await Promise.all(
            [1, 2, 3, 4, 5].map((n) => s.createKey(first.spec, { hint: `list-${n}` })),
          );
          const listed = await collect(s.client.listKeys(s.scheme, { pageSize: 2 }));
          const uris = listed.map((k) => k.uri);
          for (const key of made) expect(uris).toContain(key.uri);
          expect(new Set(uris).size).toBe(uris.length);
          const one = listed.find((k) => k.uri === made[0]?.uri);
          expect(one).toMatchObject({ spec: first.spec, state: 'enabled' });
        },
        timeoutMs,
      );

      it(
        'a listing aborted part-way stops with Aborted',
        async () => {
          const s = t.state();
          await Promise.all([1, 2, 3].map((n) => s.createKey(first.spec, { hint: `list-abort-${n}` })));
          const controller = new AbortController();
          const error = await expectError(async () => {
            for await (const _ of s.client.listKeys(s.scheme, { pageSize: 1, signal: controller.signal })) {
              controller.abort();
            }
          }, 'Aborted');
          expect(error.retryable).toBe(false);
        },
        timeoutMs,
      );
    });
  }
}
