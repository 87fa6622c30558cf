// The targets: how each is installed, started, probed with a real request, and initialised.
// The commands are the ones DESIGN.md records as working on this machine kind.
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ensureAzureSampleBuilds,
  ensureAzurite,
  ensureEsdkGo,
  ensureEsdkJava,
  ensureFakeGcs,
  ensureGcpSampleBuilds,
  ensureLocalKms,
  ensurePython,
  ensureSoftHsm,
  esdkGoBinary,
  esdkJavaClasspathFile,
} from './install.mjs';
import { azuriteDir, goBin, logFile, repoRoot, stateDir, venvBin } from './paths.mjs';
import {
  probeAwsKms,
  probeAzurite,
  probeDrongo,
  probeFakeGcs,
  probeGrpc,
  probeHttps,
  probeOpenBao,
} from './probes.mjs';
import { freePort, HarnessError, isAlive, run, spawnDetached, stopGroup, waitFor } from './process.mjs';
import {
  azuritePackage,
  fakeGcsModule,
  localKmsModule,
  pythonRequirements,
  softhsmModule,
} from './versions.mjs';

export const READY_TIMEOUT_MS = Number(process.env.KEYPORT_READY_TIMEOUT_MS ?? 60_000);

/** Each start gets a fresh log; the previous one is kept beside it as `<name>.previous.log`. */
function startLog(log, command) {
  if (existsSync(log)) renameSync(log, log.replace(/\.log$/, '.previous.log'));
  writeFileSync(log, `# ${new Date().toISOString()} ${command}\n`);
}

/**
 * Starts a long-running target process and waits until `probe(port)` succeeds. On failure the
 * process group is stopped and the error carries the command and the log.
 */
async function startProcess(name, { command, args, env = {}, probe, port, timeoutMs = READY_TIMEOUT_MS }) {
  const log = logFile(name);
  const envText = Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const reproduce = `${envText ? `${envText} ` : ''}${command} ${args.join(' ')}`;
  startLog(log, reproduce);
  let proc;
  try {
    proc = await spawnDetached(command, args, { env: { ...process.env, ...env }, cwd: stateDir, log });
  } catch (err) {
    throw new HarnessError(name, 'start', err.message, { reproduce, log });
  }
  try {
    await waitFor(() => probe(port), {
      timeoutMs,
      alive: () => isAlive(proc.pid, proc.startTime),
      what: `${name} to answer on 127.0.0.1:${port}`,
    });
  } catch (err) {
    await stopGroup(proc.pid, proc.startTime);
    throw new HarnessError(name, 'ready', err.message, { reproduce, log });
  }
  return proc;
}

/** moto and local-kms take the same probe: a signed-looking KMS ListKeys. */
const moto = {
  name: 'moto',
  version: pythonRequirements.moto[0],
  install: async () => (await ensurePython(['moto'])).moto,
  async start() {
    const port = await freePort();
    const proc = await startProcess('moto', {
      command: join(venvBin, 'moto_server'),
      args: ['-H', '127.0.0.1', '-p', String(port)],
      probe: probeAwsKms,
      port,
    });
    return { ...proc, env: { KEYPORT_MOTO_ENDPOINT: `http://127.0.0.1:${port}` } };
  },
};

const localKms = {
  name: 'local-kms',
  version: localKmsModule.split('@')[1],
  install: ensureLocalKms,
  async start() {
    const port = await freePort();
    const dataDir = join(stateDir, 'local-kms-data');
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });
    // local-kms has no bind-address option: it listens on all interfaces. Only the loopback
    // address is ever written to the env file, and the data is throwaway test keys.
    const proc = await startProcess('local-kms', {
      command: join(goBin, 'local-kms'),
      args: [],
      env: {
        PORT: String(port),
        KMS_REGION: 'us-east-1',
        KMS_ACCOUNT_ID: '111122223333',
        KMS_DATA_PATH: dataDir,
      },
      probe: probeAwsKms,
      port,
    });
    return { ...proc, env: { KEYPORT_LOCALKMS_ENDPOINT: `http://127.0.0.1:${port}` } };
  },
};

/** The well-known Azurite development account (public in Azure's docs; not a secret). */
const AZURITE_ACCOUNT = 'devstoreaccount1';
const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

const azurite = {
  name: 'azurite',
  version: azuritePackage.split('@')[1],
  install: ensureAzurite,
  async start() {
    const port = await freePort();
    const dataDir = join(stateDir, 'azurite-data');
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });
    const proc = await startProcess('azurite', {
      command: join(azuriteDir, 'node_modules', '.bin', 'azurite-blob'),
      args: [
        '--blobHost',
        '127.0.0.1',
        '--blobPort',
        String(port),
        '--location',
        dataDir,
        '--skipApiVersionCheck',
        '--loose',
      ],
      probe: probeAzurite,
      port,
    });
    const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
    return {
      ...proc,
      env: {
        KEYPORT_AZURITE_BLOB_ENDPOINT: endpoint,
        KEYPORT_AZURITE_CONNECTION_STRING: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`,
      },
    };
  },
};

const fakeGcs = {
  name: 'fake-gcs-server',
  version: fakeGcsModule.split('@')[1],
  install: ensureFakeGcs,
  async start() {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const proc = await startProcess('fake-gcs-server', {
      command: join(goBin, 'fake-gcs-server'),
      args: [
        '-scheme',
        'http',
        '-host',
        '127.0.0.1',
        '-port',
        String(port),
        '-backend',
        'memory',
        '-external-url',
        url,
        '-public-host',
        `127.0.0.1:${port}`,
        '-log-level',
        'warn',
      ],
      probe: probeFakeGcs,
      port,
    });
    return { ...proc, env: { KEYPORT_FAKEGCS_ENDPOINT: url } };
  },
};

/**
 * An OpenBao dev server. `openbao-dr` is a second, independent one (its own port, token and
 * storage), so a test can address two Vault clusters from one client.
 */
const openbaoTarget = (name, variablePrefix) => ({
  name,
  version: pythonRequirements.openbao[0],
  install: async () => (await ensurePython(['openbao'])).openbao,
  async start() {
    const port = await freePort();
    const token = `keyport-${randomBytes(12).toString('hex')}`;
    const addr = `http://127.0.0.1:${port}`;
    // Its own HOME: `bao server -dev` writes the root token to ~/.vault-token.
    const home = join(stateDir, `${name}-home`);
    mkdirSync(home, { recursive: true });
    const proc = await startProcess(name, {
      command: join(venvBin, 'bao'),
      args: ['server', '-dev', `-dev-root-token-id=${token}`, `-dev-listen-address=127.0.0.1:${port}`],
      env: { HOME: home, BAO_ADDR: addr },
      probe: probeOpenBao,
      port,
    });
    const response = await fetch(`${addr}/v1/sys/mounts/transit`, {
      method: 'POST',
      headers: { 'X-Vault-Token': token, 'Content-Type': 'application/json' },
      body: JSON.stringify({ type: 'transit' }),
      signal: AbortSignal.timeout(10_000),
    }).catch((err) => err);
    if (!(response instanceof Response) || !response.ok) {
      await stopGroup(proc.pid, proc.startTime);
      const why =
        response instanceof Response ? `HTTP ${response.status} ${await response.text()}` : String(response);
      throw new HarnessError(name, 'init', `mounting transit failed: ${why}`, {
        reproduce: `BAO_ADDR=${addr} BAO_TOKEN=<root token> ${join(venvBin, 'bao')} secrets enable transit`,
        log: logFile(name),
      });
    }
    return {
      ...proc,
      env: { [`${variablePrefix}_ADDR`]: addr, [`${variablePrefix}_TOKEN`]: token },
    };
  },
});

const openbao = openbaoTarget('openbao', 'KEYPORT_OPENBAO');
const openbaoDr = openbaoTarget('openbao-dr', 'KEYPORT_OPENBAO_DR');

const drongo = {
  name: 'drongo',
  version: pythonRequirements.drongo.join(' '),
  install: async () => (await ensurePython(['drongo'])).drongo,
  async start() {
    const port = await freePort();
    const proc = await startProcess('drongo', {
      command: join(venvBin, 'drongo'),
      args: ['server', '--host', '127.0.0.1', '--port', String(port)],
      probe: probeDrongo,
      port,
    });
    return { ...proc, env: { KEYPORT_DRONGO_ENDPOINT: `http://127.0.0.1:${port}` } };
  },
};

/** SoftHSM is a library, not a server: "up" means a token initialised in our own token dir. */
const softhsm = {
  name: 'softhsm',
  version: 'softhsm2 (Debian)',
  install: ensureSoftHsm,
  async start() {
    const dir = join(stateDir, 'softhsm');
    const tokens = join(dir, 'tokens');
    const conf = join(dir, 'softhsm2.conf');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(tokens, { recursive: true });
    writeFileSync(
      conf,
      `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
    );
    const pin = String(randomInt(10 ** 7, 10 ** 8));
    const soPin = String(randomInt(10 ** 7, 10 ** 8));
    const env = { ...process.env, SOFTHSM2_CONF: conf };
    const log = logFile('softhsm');
    startLog(
      log,
      `SOFTHSM2_CONF=${conf} softhsm2-util --init-token --free --label keyport --so-pin <so-pin> --pin <pin>`,
    );
    try {
      await run(
        'softhsm2-util',
        ['--init-token', '--free', '--label', 'keyport', '--so-pin', soPin, '--pin', pin],
        {
          env,
          timeoutMs: 30_000,
        },
      );
      const slots = await run('softhsm2-util', ['--show-slots'], { env, timeoutMs: 30_000 });
      if (!/Label:\s+keyport\b/.test(slots))
        throw new Error('the token "keyport" is not listed by --show-slots');
    } catch (err) {
      throw new HarnessError(
        'softhsm',
        'init',
        err.message.replaceAll(pin, '<pin>').replaceAll(soPin, '<so-pin>'),
        {
          reproduce: `SOFTHSM2_CONF=${conf} softhsm2-util --init-token --free --label keyport --so-pin <so-pin> --pin <pin>`,
          log,
        },
      );
    }
    writeFileSync(join(dir, 'so-pin'), soPin, { mode: 0o600 });
    const version = (await run('softhsm2-util', ['--version'], { timeoutMs: 10_000 })).trim();
    return {
      pid: null,
      startTime: undefined,
      files: [conf, tokens],
      version: `softhsm2 ${version}`,
      env: {
        KEYPORT_SOFTHSM_MODULE: softhsmModule,
        SOFTHSM2_CONF: conf,
        KEYPORT_SOFTHSM_TOKEN: 'keyport',
        KEYPORT_SOFTHSM_PIN: pin,
        KEYPORT_SOFTHSM_SO_PIN: soPin,
      },
    };
  },
};

/** keyport's own test servers (TypeScript), started by `test-server.mjs` through vite's runner. */
export const testServerSources = {
  'azure-keyvault': { file: 'conformance/servers/src/azure/index.ts', start: 'startAzureKeyVaultServer' },
  'gcp-kms': { file: 'conformance/servers/src/gcp/index.ts', start: 'startCloudKmsServer' },
};

function keyportServer(name, toEnv, probe, installMore = async () => 0) {
  const source = testServerSources[name];
  return {
    name,
    version: 'keyport (workspace)',
    // Only the clients that check the server against another SDK need installing.
    install: async () => (await ensurePython([name]))[name] + (await installMore()),
    async start() {
      const sourcePath = join(repoRoot, source.file);
      if (!existsSync(sourcePath) || !readFileSync(sourcePath, 'utf8').includes(source.start)) {
        throw new HarnessError(
          name,
          'start',
          `keyport's test server is not built yet: ${source.file} does not export ${source.start}`,
          {
            reproduce: `ls ${source.file}`,
          },
        );
      }
      const readyFile = join(stateDir, `${name}.ready.json`);
      rmSync(readyFile, { force: true });
      const log = logFile(name);
      const runner = join(repoRoot, 'conformance/bin/test-server.mjs');
      const args = [runner, name, readyFile, join(stateDir, name)];
      const reproduce = `node ${args.join(' ')}`;
      startLog(log, reproduce);
      const proc = await spawnDetached(process.execPath, args, { env: process.env, cwd: repoRoot, log });
      try {
        const ready = await waitFor(
          () => existsSync(readyFile) && JSON.parse(readFileSync(readyFile, 'utf8')),
          {
            timeoutMs: READY_TIMEOUT_MS,
            alive: () => isAlive(proc.pid, proc.startTime),
            what: `${name} to write ${readyFile}`,
          },
        );
        await waitFor(() => probe(ready), { timeoutMs: 15_000, what: `${name} to answer a request` });
        return { ...proc, env: toEnv(ready) };
      } catch (err) {
        await stopGroup(proc.pid, proc.startTime);
        throw new HarnessError(name, 'ready', err.message, { reproduce, log });
      }
    },
  };
}

const python = join(venvBin, 'python');

const azureKeyVault = keyportServer(
  'azure-keyvault',
  (ready) => ({
    KEYPORT_AZUREKV_URL: ready.url,
    KEYPORT_AZUREKV_CA: ready.caFile,
    KEYPORT_AZUREKV_TOKEN: ready.token,
    KEYPORT_PYTHON: python,
  }),
  (ready) => probeHttps(ready.url, ready.caFile),
  // Microsoft's azkeys Go examples (published-samples.azure-go.test.ts) and the Azure SDK for
  // Java check (azure-java-sdk.test.ts) run against it too.
  ensureAzureSampleBuilds,
);

const gcpKms = keyportServer(
  'gcp-kms',
  (ready) => ({
    KEYPORT_GCPKMS_GRPC: `127.0.0.1:${ready.port}`,
    KEYPORT_GCPKMS_REST: ready.restUrl,
    KEYPORT_PYTHON: python,
  }),
  (ready) => probeGrpc(ready.port),
  // Google's Go samples (published-samples.gcp-go.test.ts) and the Cloud KMS client for Java
  // check (gcp-java-sdk.test.ts) run against it too.
  ensureGcpSampleBuilds,
);

/**
 * The AWS Encryption SDK for Python in the venv: nothing runs; tests start it as a child
 * (packages/envelope/test/helpers/esdk_child.py) with the Python named here.
 */
const IMPORTS = 'import aws_encryption_sdk, aws_cryptographic_material_providers';
const esdkPython = {
  name: 'esdk-python',
  version: pythonRequirements['esdk-python'].join(' '),
  install: async () => (await ensurePython(['esdk-python']))['esdk-python'],
  async start() {
    try {
      await run(python, ['-c', IMPORTS], { timeoutMs: 30_000 });
    } catch (err) {
      throw new HarnessError(
        'esdk-python',
        'ready',
        `the venv's Python cannot import the ESDK: ${err.message}`,
        {
          reproduce: `${python} -c '${IMPORTS}'`,
        },
      );
    }
    return {
      pid: null,
      startTime: undefined,
      files: [python],
      version: pythonRequirements['esdk-python'].join(' '),
      env: { KEYPORT_ESDK_PYTHON: python },
    };
  },
};

/**
 * The AWS Encryption SDK for Java, resolved by Maven: nothing runs; tests start
 * packages/envelope/test/esdk-java/EsdkChild.java as a child with the classpath named here.
 */
const esdkJava = {
  name: 'esdk-java',
  version: 'com.amazonaws:aws-encryption-sdk-java (packages/envelope/test/esdk-java/pom.xml)',
  install: ensureEsdkJava,
  async start() {
    let version;
    try {
      version = (await run('java', ['-version'], { timeoutMs: 30_000 })).trim().split('\n')[0];
    } catch (err) {
      throw new HarnessError('esdk-java', 'ready', `java does not run: ${err.message}`, {
        reproduce: 'java -version',
      });
    }
    return {
      pid: null,
      startTime: undefined,
      files: [esdkJavaClasspathFile],
      version: `aws-encryption-sdk-java on ${version}`,
      env: { KEYPORT_ESDK_JAVA_CLASSPATH: esdkJavaClasspathFile },
    };
  },
};

/**
 * The AWS Encryption SDK for Go, built with the test child by `go build`: nothing runs; tests
 * start packages/envelope/test/esdk-go's binary, named here, as a child.
 */
const esdkGo = {
  name: 'esdk-go',
  version:
    'github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk (packages/envelope/test/esdk-go/go.mod)',
  install: ensureEsdkGo,
  async start() {
    const binary = esdkGoBinary();
    if (!existsSync(binary)) {
      throw new HarnessError('esdk-go', 'ready', `the Go child is not built: ${binary}`, {
        reproduce: 'node conformance/bin/emulators.mjs up esdk-go',
      });
    }
    return {
      pid: null,
      startTime: undefined,
      files: [binary],
      version: 'aws-encryption-sdk for Go (go.mod pin)',
      env: { KEYPORT_ESDK_GO: binary },
    };
  },
};

/** In start order: cheap ones first so a broken install fails before the slow ones run. */
export const targets = [
  moto,
  localKms,
  azurite,
  fakeGcs,
  openbao,
  openbaoDr,
  drongo,
  softhsm,
  azureKeyVault,
  gcpKms,
  esdkPython,
  esdkJava,
  esdkGo,
];
export const targetNames = targets.map((t) => t.name);
export const targetByName = Object.fromEntries(targets.map((t) => [t.name, t]));
