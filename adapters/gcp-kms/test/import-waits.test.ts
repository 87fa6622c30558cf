/**
 * The two waits of a Cloud KMS import, driven as an attacker and a careless user would: an
 * import job that never leaves PENDING_GENERATION (or answers STATE_UNSPECIFIED, a state number or
 * name from a newer API, no state at all), an imported version that stays PENDING_IMPORT or ends
 * in a state an import does not leave, a caller's AbortSignal or deadline firing mid-wait, and no
 * deadline at all. Against the Cloud KMS gRPC test server, whose answers are altered in flight by
 * wrapping the real client's methods (as faults.test.ts and readme-claims.test.ts do).
 */
import { randomBytes } from 'node:crypto';
import { wrapForImport } from '@keyport/conformance';
import { type ImportParameters, KeyportError } from '@keyport/core';
import type { CloudKmsServer } from '@keyport/test-servers';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GcpKmsProvider } from '../src/index.js';
import { type Answer, type ClientMethod, keyportOf, wrapClient } from './support/suite.js';
import { grpcProvider, signal, startServer } from './support/targets.js';

const RING = 'projects/keyport-import-waits/locations/global/keyRings/waits';
const ALGORITHM = 'RSA_AES_KEY_WRAP_SHA_256';
let server: CloudKmsServer;
let n = 0;
const name = (hint: string) => `${hint}-${++n}`;
const open: GcpKmsProvider[] = [];

beforeAll(async () => {
  server = await startServer();
});
afterEach(() => {
  vi.restoreAllMocks();
  server.faults.clear();
});
afterAll(async () => {
  for (const p of open) await p.close();
  await plain?.close();
  await server.stop();
});

/**
 * A provider whose client methods are wrapped: `change[method]` may alter each answer (the n-th
 * call of that method, from 1) before the adapter sees it; `calls` records when each call was
 * made (performance.now()), by method.
 */
async function altered(change: Record<string, (answer: Answer, nth: number) => void>) {
  const p = grpcProvider(server, { keyRing: RING });
  open.push(p);
  const calls: Record<string, number[]> = {};
  const timed =
    (times: number[], alter: (answer: Answer, nth: number) => void) =>
    (real: ClientMethod): ClientMethod =>
    async (request, options) => {
      times.push(performance.now());
      const result = await real(request, options);
      alter(result[0] as Answer, times.length);
      return result;
    };
  await wrapClient(
    p,
    Object.fromEntries(
      Object.entries(change).map(([method, alter]) => {
        calls[method] = [];
        return [method, timed(calls[method], alter)];
      }),
    ),
  );
  return { p, calls, kp: keyportOf(p) };
}

/** A client nobody alters, for what each test needs in place before its own calls. */
let plain: GcpKmsProvider;

/** An import-only key. */
async function importOnlyKey(hint: string): Promise<string> {
  plain ??= grpcProvider(server, { keyRing: RING });
  const key = await plain.createKey({ name: name(hint), spec: 'AES_256', external: true }, signal());
  return key.uri;
}

/**
 * One job that did become ACTIVE, shared by the version tests: a job serves every key of its ring,
 * and each job costs the server an RSA key generation.
 */
let shared: Promise<ImportParameters> | undefined;

/** Fresh material for the key, wrapped for the shared job. */
async function wrappedFor(uri: string) {
  shared ??= plain.getImportParameters({ uri }, { algorithm: ALGORITHM }, signal());
  const params = await shared;
  const material = randomBytes(32);
  const req = {
    algorithm: ALGORITHM,
    wrappedMaterial: wrapForImport(ALGORITHM, params.wrappingPublicKey, material),
    ...(params.importToken !== undefined ? { importToken: params.importToken } : {}),
  } as const;
  return { req, material };
}

const gaps = (times: readonly number[]) => times.slice(1).map((t, i) => t - (times[i] as number));
const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A wait that never ends on its own, cut by a 2.5 s deadline: Timeout promptly at the deadline
 * (neither long before nor long after it, with room for a loaded machine), `polls` spaced by
 * growing pauses (a fixed 150 ms pause polls ~16 times in 2.5 s, evenly; a doubling one a
 * handful, each gap longer than the last; gaps include the poll itself), and nothing polling on
 * behind the caller's back once it is over.
 */
async function expectBackedOffUntilDeadline(run: () => Promise<unknown>, polls: () => readonly number[]) {
  const started = performance.now();
  const error = await run().catch((e: unknown) => e);
  const elapsed = performance.now() - started;
  expect(error).toMatchObject({ code: 'Timeout' });
  expect(elapsed).toBeGreaterThan(2300);
  expect(elapsed).toBeLessThan(4000);
  expect(polls().length).toBeGreaterThanOrEqual(2);
  expect(polls().length).toBeLessThanOrEqual(6);
  const between = gaps(polls());
  expect(between.at(-1) as number).toBeGreaterThan(1.5 * (between[0] as number));
  const seen = polls().length;
  await settle(400);
  expect(polls()).toHaveLength(seen);
}

/** No key material in the error, whatever it says: its message, nor its JSON. */
function expectNoMaterial(error: unknown, material: Uint8Array) {
  const text = `${String(error)} ${JSON.stringify(error)}`;
  for (const encoding of ['hex', 'base64', 'base64url'] as const) {
    expect(text).not.toContain(Buffer.from(material).toString(encoding));
  }
}

/**
 * Makes performance.now() jump `ms` ahead each time `jump` is called (the adapter's own bound on a
 * wait with no deadline is measured on that clock), so its 60 s pass in about a second.
 */
function fastClock() {
  const real = performance.now.bind(performance);
  let offset = 0;
  vi.spyOn(performance, 'now').mockImplementation(() => real() + offset);
  return {
    jump: (ms: number) => {
      offset += ms;
    },
  };
}

/** States an import job may not be answered in: undocumented, unknown to this client, or none. */
const UNKNOWN_JOB_STATES: readonly [string, unknown][] = [
  ['IMPORT_JOB_STATE_UNSPECIFIED', 'IMPORT_JOB_STATE_UNSPECIFIED'],
  ['STATE_UNSPECIFIED as the number 0', 0],
  ['an enum number from a newer API (9)', 9],
  ['an enum name from a newer API', 'PENDING_ATTESTATION'],
  ['no state (null)', null],
  ['no state (field absent)', undefined],
];

describe('getImportParameters: waiting for the import job to become ACTIVE', () => {
  it.each(UNKNOWN_JOB_STATES)(
    'a job answered with %s is Internal at once, naming the job and the state, and is not polled',
    async (_, state) => {
      const uri = await importOnlyKey('job-unknown');
      const w = await altered({
        createImportJob: (job) => {
          if (state === undefined) delete job.state;
          else job.state = state;
        },
        getImportJob: (job) => {
          if (state === undefined) delete job.state;
          else job.state = state;
        },
      });
      const started = performance.now();
      const error = await w.kp
        .getImportParameters(uri, { algorithm: ALGORITHM }, { timeoutMs: 1500 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyportError);
      expect(error).toMatchObject({ code: 'Internal', retryable: false, provider: 'gcp-kms', keyUri: uri });
      const message = (error as KeyportError).message;
      expect(message).toMatch(
        /import job "projects\/keyport-import-waits\/.*\/importJobs\/kpi-[0-9a-f]{16}"/,
      );
      if (typeof state === 'string') expect(message).toContain(`"${state}"`);
      if (typeof state === 'number') expect(message).toMatch(new RegExp(`\\b${state}\\b`));
      if (state === undefined || state === null) expect(message).toContain('no state');
      expect(performance.now() - started).toBeLessThan(1000);
      expect(w.calls.getImportJob).toHaveLength(0);
    },
  );

  it('an EXPIRED job is KeyStateConflict, not polled', async () => {
    const uri = await importOnlyKey('job-expired');
    const w = await altered({
      createImportJob: (job) => {
        job.state = 'EXPIRED';
      },
      getImportJob: () => {},
    });
    await expect(w.kp.getImportParameters(uri, { algorithm: ALGORITHM })).rejects.toMatchObject({
      code: 'KeyStateConflict',
    });
    expect(w.calls.getImportJob).toHaveLength(0);
  });

  it('a job that stays PENDING_GENERATION is polled with growing pauses, and the deadline ends the wait with Timeout', async () => {
    const uri = await importOnlyKey('job-pending');
    const pending = (job: Answer) => {
      job.state = 'PENDING_GENERATION';
    };
    const w = await altered({ createImportJob: pending, getImportJob: pending });
    await expectBackedOffUntilDeadline(
      () => w.kp.getImportParameters(uri, { algorithm: ALGORITHM }, { timeoutMs: 2500 }),
      () => w.calls.getImportJob ?? [],
    );
  });

  it('an AbortSignal fired during the pause between polls ends the wait at once with Aborted', async () => {
    const uri = await importOnlyKey('job-abort');
    const pending = (job: Answer) => {
      job.state = 'PENDING_GENERATION';
    };
    const w = await altered({ createImportJob: pending, getImportJob: pending });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 500);
    const started = performance.now();
    const error = await w.kp
      .getImportParameters(uri, { algorithm: ALGORITHM }, { signal: controller.signal })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'Aborted' });
    expect(performance.now() - started).toBeLessThan(800);
    const seen = w.calls.getImportJob?.length ?? 0;
    await settle(400);
    expect(w.calls.getImportJob).toHaveLength(seen);
  });

  it('called directly, an AbortSignal fired during a slow GetImportJob ends the wait at once', async () => {
    const uri = await importOnlyKey('job-abort-poll');
    const w = await altered({
      createImportJob: (job) => {
        job.state = 'PENDING_GENERATION';
      },
      getImportJob: (job) => {
        job.state = 'PENDING_GENERATION';
      },
    });
    server.faults.set({ latencyMs: 3000, methods: ['GetImportJob'] });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 400);
    const started = performance.now();
    const error = await w.p
      .getImportParameters({ uri }, { algorithm: ALGORITHM }, { signal: controller.signal })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyportError);
    expect(error).toMatchObject({ code: 'Aborted', retryable: false });
    expect(performance.now() - started).toBeLessThan(900);
  });

  it('called directly with a signal that never fires, a job stuck in PENDING_GENERATION ends with a retryable Timeout naming the job', async () => {
    const uri = await importOnlyKey('job-forever');
    const clock = fastClock();
    const w = await altered({
      createImportJob: (job) => {
        job.state = 'PENDING_GENERATION';
      },
      // Each poll answers PENDING_GENERATION, and 20 s pass on the adapter's clock meanwhile.
      getImportJob: (job) => {
        job.state = 'PENDING_GENERATION';
        clock.jump(20_000);
      },
    });
    const error = await w.p
      .getImportParameters({ uri }, { algorithm: ALGORITHM }, signal())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyportError);
    expect(error).toMatchObject({ code: 'Timeout', retryable: true, keyUri: uri });
    expect((error as KeyportError).message).toMatch(/import job ".*\/importJobs\/kpi-[0-9a-f]{16}"/);
    expect((error as KeyportError).message).toContain('PENDING_GENERATION');
    expect((w.calls.getImportJob ?? []).length).toBeLessThanOrEqual(5);
  }, 5000);

  it('polls the job it created by the name it gave it, even when the answer carries no name', async () => {
    const uri = await importOnlyKey('job-nameless');
    const w = await altered({
      createImportJob: (job) => {
        delete job.name;
        job.state = 'PENDING_GENERATION';
      },
      getImportJob: () => {},
    });
    const params = await w.kp.getImportParameters(uri, { algorithm: ALGORITHM });
    const token = new TextDecoder().decode(params.importToken);
    expect(token).toMatch(/^projects\/keyport-import-waits\/.*\/importJobs\/kpi-[0-9a-f]{16}$/);
    expect(w.calls.getImportJob?.length).toBeGreaterThanOrEqual(1);
  });
});

/** A version's state as an answer carries it: `undefined` removes the field. */
function setState(version: Answer, state: unknown) {
  if (state === undefined) delete version.state;
  else version.state = state;
}

describe('importKeyMaterial: waiting for the imported version to leave PENDING_IMPORT', () => {
  it('PENDING_IMPORT, then ENABLED: the wait ends and the version becomes primary', async () => {
    const uri = await importOnlyKey('ver-later');
    const { req } = await wrappedFor(uri);
    const w = await altered({
      importCryptoKeyVersion: (v) => setState(v, 'PENDING_IMPORT'),
      getCryptoKeyVersion: (v, nth) => {
        if (nth < 3) setState(v, 'PENDING_IMPORT');
      },
    });
    const info = await w.kp.importKeyMaterial(uri, req);
    expect(info).toMatchObject({ state: 'enabled', primaryVersion: '1' });
    expect(w.calls.getCryptoKeyVersion?.length).toBeGreaterThanOrEqual(3);
  });

  const unknown: readonly [string, unknown][] = [
    ['CRYPTO_KEY_VERSION_STATE_UNSPECIFIED', 'CRYPTO_KEY_VERSION_STATE_UNSPECIFIED'],
    ['an enum number from a newer API (42)', 42],
    ['an enum name from a newer API', 'PENDING_REWRAP'],
    ['no state', undefined],
    ['PENDING_GENERATION (not a state an import leaves)', 'PENDING_GENERATION'],
  ];
  it.each(unknown)(
    'a version answered with %s is Internal naming the version and state, not InvalidArgument blaming the material',
    async (_, state) => {
      const uri = await importOnlyKey('ver-unknown');
      const { req, material } = await wrappedFor(uri);
      const w = await altered({
        importCryptoKeyVersion: (v) => setState(v, state),
        getCryptoKeyVersion: (v) => setState(v, state),
      });
      const error = await w.kp.importKeyMaterial(uri, req, { timeoutMs: 1500 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyportError);
      expect(error).toMatchObject({ code: 'Internal', retryable: false, keyUri: uri });
      const message = (error as KeyportError).message;
      expect(message).toContain('/cryptoKeyVersions/1');
      if (typeof state === 'string') expect(message).toContain(`"${state}"`);
      if (typeof state === 'number') expect(message).toMatch(new RegExp(`\\b${state}\\b`));
      if (state === undefined) expect(message).toContain('no state');
      expectNoMaterial(error, material);
    },
  );

  it('IMPORT_FAILED is InvalidArgument with Cloud KMS’s reason, quoted and escaped, and no key material', async () => {
    const uri = await importOnlyKey('ver-failed');
    const { req, material } = await wrappedFor(uri);
    const w = await altered({
      importCryptoKeyVersion: (v) => {
        setState(v, 'IMPORT_FAILED');
        v.importFailureReason = 'The key material is not a valid AES-256 key\u001b[31m';
      },
    });
    const error = await w.kp.importKeyMaterial(uri, req).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'InvalidArgument', retryable: false, keyUri: uri });
    const message = (error as KeyportError).message;
    expect(message).toContain('IMPORT_FAILED');
    expect(message).toContain('"The key material is not a valid AES-256 key\\u001b[31m"');
    expectNoMaterial(error, material);
  });

  it.each(['DISABLED', 'DESTROY_SCHEDULED', 'DESTROYED'])(
    'a version %s while the import was pending (someone else acted) is KeyStateConflict',
    async (state) => {
      const uri = await importOnlyKey('ver-changed');
      const { req } = await wrappedFor(uri);
      const w = await altered({
        importCryptoKeyVersion: (v) => setState(v, 'PENDING_IMPORT'),
        getCryptoKeyVersion: (v) => setState(v, state),
      });
      const error = await w.kp.importKeyMaterial(uri, req).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'KeyStateConflict', keyUri: uri });
      expect((error as KeyportError).message).toContain(state);
    },
  );

  it('a version that stays PENDING_IMPORT is polled with growing pauses, and the deadline ends the wait with Timeout', async () => {
    const uri = await importOnlyKey('ver-pending');
    const { req } = await wrappedFor(uri);
    const w = await altered({
      importCryptoKeyVersion: (v) => setState(v, 'PENDING_IMPORT'),
      getCryptoKeyVersion: (v) => setState(v, 'PENDING_IMPORT'),
    });
    await expectBackedOffUntilDeadline(
      () => w.kp.importKeyMaterial(uri, req, { timeoutMs: 2500 }),
      () => w.calls.getCryptoKeyVersion ?? [],
    );
  });

  it('an AbortSignal fired during the wait ends it at once with Aborted, and polling stops', async () => {
    const uri = await importOnlyKey('ver-abort');
    const { req } = await wrappedFor(uri);
    const w = await altered({
      importCryptoKeyVersion: (v) => setState(v, 'PENDING_IMPORT'),
      getCryptoKeyVersion: (v) => setState(v, 'PENDING_IMPORT'),
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 500);
    const started = performance.now();
    const error = await w.p
      .importKeyMaterial({ uri }, req, { signal: controller.signal })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyportError);
    expect(error).toMatchObject({ code: 'Aborted', retryable: false });
    expect(performance.now() - started).toBeLessThan(800);
    const seen = w.calls.getCryptoKeyVersion?.length ?? 0;
    await settle(400);
    expect(w.calls.getCryptoKeyVersion).toHaveLength(seen);
  });

  it('called directly with a signal that never fires, a version stuck in PENDING_IMPORT ends with a Timeout that is not retryable', async () => {
    const uri = await importOnlyKey('ver-forever');
    const { req, material } = await wrappedFor(uri);
    const clock = fastClock();
    const w = await altered({
      importCryptoKeyVersion: (v) => setState(v, 'PENDING_IMPORT'),
      getCryptoKeyVersion: (v) => {
        setState(v, 'PENDING_IMPORT');
        clock.jump(20_000);
      },
    });
    const error = await w.p.importKeyMaterial({ uri }, req, signal()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyportError);
    // Not retryable: a retry would import the material a second time, into another version.
    expect(error).toMatchObject({ code: 'Timeout', retryable: false, keyUri: uri });
    expect((error as KeyportError).message).toContain('/cryptoKeyVersions/1');
    expect((error as KeyportError).message).toContain('PENDING_IMPORT');
    expect((w.calls.getCryptoKeyVersion ?? []).length).toBeLessThanOrEqual(5);
    expectNoMaterial(error, material);
  }, 5000);
});
