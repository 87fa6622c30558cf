// Idempotent installs into the cache (`~/.cache/keyport`). Each target has a stamp file
// holding the pinned spec it was installed with; a matching stamp plus the binary on disk
// means "installed", so a warm `up` costs no network and no resolver run.
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import {
  azuriteDir,
  cacheDir,
  esdkGoDir,
  esdkJavaDir,
  goBin,
  repoRoot,
  stampDir,
  venvBin,
  venvDir,
} from './paths.mjs';
import { HarnessError, run } from './process.mjs';
import {
  azuritePackage,
  esdkGoModule,
  esdkJavaPom,
  fakeGcsModule,
  localKmsModule,
  pythonRequirements,
  softhsmModule,
  softhsmPackage,
} from './versions.mjs';

const INSTALL_TIMEOUT_MS = 15 * 60_000;

function stampMatches(name, spec, artifact) {
  const file = join(stampDir, name);
  return existsSync(file) && readFileSync(file, 'utf8') === spec && existsSync(artifact);
}

function writeStamp(name, spec) {
  mkdirSync(stampDir, { recursive: true });
  writeFileSync(join(stampDir, name), spec);
}

/** The executable that proves a Python target's packages are installed. */
const pythonArtifact = {
  moto: join(venvBin, 'moto_server'),
  openbao: join(venvBin, 'bao'),
  drongo: join(venvBin, 'drongo'),
  'azure-keyvault': join(venvDir, 'lib'),
  'gcp-kms': join(venvDir, 'lib'),
  'esdk-python': join(venvDir, 'lib'),
};

/**
 * Installs the Python packages of every target in `names` that is not installed yet, in one
 * pip call (one resolver run is much faster than several), serialised with other pip users by
 * `flock /tmp/keyport-pip.lock`. Returns ms spent per target installed (0 when warm).
 */
export async function ensurePython(names) {
  const missing = names.filter(
    (n) =>
      pythonRequirements[n] && !stampMatches(`py-${n}`, pythonRequirements[n].join(' '), pythonArtifact[n]),
  );
  const spent = Object.fromEntries(names.map((n) => [n, 0]));
  if (missing.length === 0) return spent;
  const requirements = missing.flatMap((n) => pythonRequirements[n]);
  const python = process.env.KEYPORT_PYTHON_BOOTSTRAP ?? 'python3';
  const started = Date.now();
  mkdirSync(cacheDir, { recursive: true });
  const pipArgs = ['install', '--quiet', '--disable-pip-version-check', ...requirements];
  const reproduce = `${python} -m venv ${venvDir} && flock /tmp/keyport-pip.lock ${venvBin}/pip ${pipArgs.map(shellQuote).join(' ')}`;
  try {
    if (!existsSync(join(venvBin, 'pip'))) {
      await run(python, ['-m', 'venv', venvDir], { timeoutMs: 120_000 });
    }
    await run('flock', ['/tmp/keyport-pip.lock', join(venvBin, 'pip'), ...pipArgs], {
      timeoutMs: INSTALL_TIMEOUT_MS,
    });
  } catch (err) {
    throw new HarnessError(missing.join(', '), 'install', `pip install failed: ${err.message}`, {
      reproduce,
    });
  }
  const ms = Date.now() - started;
  for (const n of missing) {
    writeStamp(`py-${n}`, pythonRequirements[n].join(' '));
    spent[n] = ms;
  }
  return spent;
}

/** `go install` of a pinned Go program into `<cache>/bin`. Returns ms spent (0 when warm). */
async function ensureGoProgram(name, module, binaryName) {
  const binary = join(goBin, binaryName);
  if (stampMatches(name, module, binary)) return 0;
  const started = Date.now();
  const reproduce = `GOBIN=${goBin} go install ${module}`;
  try {
    await run('flock', [join(cacheDir, '.go-install.lock'), 'go', 'install', module], {
      env: { ...process.env, GOBIN: goBin },
      timeoutMs: INSTALL_TIMEOUT_MS,
    });
  } catch (err) {
    throw new HarnessError(name, 'install', `go install failed: ${err.message}`, { reproduce });
  }
  writeStamp(name, module);
  return Date.now() - started;
}

export const ensureLocalKms = () => ensureGoProgram('local-kms', localKmsModule, 'local-kms');
export const ensureFakeGcs = () => ensureGoProgram('fake-gcs-server', fakeGcsModule, 'fake-gcs-server');

/** `npm install` of the pinned Azurite into `<cache>/azurite`. Returns ms spent (0 when warm). */
export async function ensureAzurite() {
  const binary = join(azuriteDir, 'node_modules', '.bin', 'azurite-blob');
  if (stampMatches('azurite', azuritePackage, binary)) return 0;
  const started = Date.now();
  mkdirSync(azuriteDir, { recursive: true });
  const args = ['install', '--no-audit', '--no-fund', '--prefix', azuriteDir, azuritePackage];
  try {
    await run('flock', [join(cacheDir, '.npm-install.lock'), 'npm', ...args], {
      timeoutMs: INSTALL_TIMEOUT_MS,
    });
  } catch (err) {
    throw new HarnessError('azurite', 'install', `npm install failed: ${err.message}`, {
      reproduce: `npm ${args.join(' ')}`,
    });
  }
  writeStamp('azurite', azuritePackage);
  return Date.now() - started;
}

/** Where `ensureEsdkJava` writes the classpath (`:`-separated: the jars, then the child's classes). */
export const esdkJavaClasspathFile = join(esdkJavaDir, 'classpath.txt');

/**
 * Resolves the pinned pom (`esdkJavaPom`) from Maven Central into the local repository (~/.m2),
 * compiles the test child beside it (`EsdkChild.java`, compiled once here so that a test run
 * starts a JVM, not a compiler) and writes the classpath. The stamp is the hash of the pom and
 * the source, so a changed pin or child installs again. Returns ms spent (0 when warm).
 */
export async function ensureEsdkJava() {
  const pom = join(repoRoot, esdkJavaPom);
  const source = join(dirname(pom), 'EsdkChild.java');
  const hash = createHash('sha256').update(readFileSync(pom)).update(readFileSync(source)).digest('hex');
  const classes = join(esdkJavaDir, `classes-${hash.slice(0, 16)}`);
  if (stampMatches('esdk-java', hash, classes) && existsSync(esdkJavaClasspathFile)) return 0;
  const started = Date.now();
  mkdirSync(esdkJavaDir, { recursive: true });
  // Another `up` may install at the same time (two test runs): Maven is serialised by a lock,
  // and what a running test reads (the classes, the classpath file) only ever appears whole,
  // renamed into place from a private temporary.
  const scratch = mkdtempSync(join(esdkJavaDir, 'tmp-'));
  try {
    const jars = join(scratch, 'jars.txt');
    const mvnArgs = ['-q', '-B', '-f', pom, 'dependency:build-classpath', `-Dmdep.outputFile=${jars}`];
    try {
      await run('flock', [join(cacheDir, '.mvn.lock'), 'mvn', ...mvnArgs], { timeoutMs: INSTALL_TIMEOUT_MS });
    } catch (err) {
      throw new HarnessError('esdk-java', 'install', `mvn failed: ${err.message}`, {
        reproduce: `mvn ${mvnArgs.join(' ')}`,
      });
    }
    const classpath = readFileSync(jars, 'utf8').trim();
    const compiled = join(scratch, 'classes');
    try {
      await run('javac', ['-nowarn', '-cp', classpath, '-d', compiled, source], {
        timeoutMs: INSTALL_TIMEOUT_MS,
      });
    } catch (err) {
      throw new HarnessError('esdk-java', 'install', `javac failed: ${err.message}`, {
        reproduce: `javac -cp "<the jars of ${esdkJavaPom}>" -d ${classes} ${source}`,
      });
    }
    if (!existsSync(classes)) renameSync(compiled, classes);
    const file = join(scratch, 'classpath.txt');
    writeFileSync(file, `${classpath}:${classes}`);
    renameSync(file, esdkJavaClasspathFile);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  writeStamp('esdk-java', hash);
  return Date.now() - started;
}

const esdkGoSource = join(repoRoot, esdkGoModule);
let goChild;
/**
 * Where the Go test child's binary is: `<cache>/esdk-go/child-<hash>`, the hash of go.mod, go.sum
 * and main.go, so a changed pin or child builds again (read once per process: install and start
 * both ask).
 */
export function esdkGoBinary() {
  if (goChild === undefined) {
    const hash = createHash('sha256');
    for (const f of ['go.mod', 'go.sum', 'main.go'])
      hash.update(f).update(readFileSync(join(esdkGoSource, f)));
    goChild = join(esdkGoDir, `child-${hash.digest('hex').slice(0, 16)}`);
  }
  return goChild;
}

/**
 * Builds the Go test child (`esdkGoModule`: main.go against the AWS Encryption SDK for Go, pinned
 * with its libraries by go.mod and go.sum, fetched from the Go module proxy into Go's own module
 * cache) into `esdkGoBinary()`, so a test run starts a binary, not a compiler. Returns ms spent
 * (0 when warm). The binary appears whole: built under a temporary name, then renamed (two `up`s
 * at once each build their own and the second rename is harmless).
 */
export async function ensureEsdkGo() {
  const binary = esdkGoBinary();
  if (existsSync(binary)) return 0;
  const started = Date.now();
  mkdirSync(esdkGoDir, { recursive: true });
  const scratch = mkdtempSync(join(esdkGoDir, 'tmp-'));
  const built = join(scratch, 'child');
  // -mod=readonly: go.sum is the pin; a missing or changed sum fails rather than resolving anew.
  const args = ['build', '-mod=readonly', '-trimpath', '-o', built, '.'];
  try {
    await run('go', args, { cwd: esdkGoSource, timeoutMs: INSTALL_TIMEOUT_MS });
    renameSync(built, binary);
    // Children of older pins go (a running one keeps its file until it exits).
    for (const f of readdirSync(esdkGoDir)) {
      if (f.startsWith('child-') && join(esdkGoDir, f) !== binary)
        rmSync(join(esdkGoDir, f), { force: true });
    }
  } catch (err) {
    throw new HarnessError('esdk-go', 'install', `go build failed: ${err.message}`, {
      reproduce: `cd ${esdkGoModule} && go ${args.join(' ')}`,
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return Date.now() - started;
}

/**
 * Builds a folder of providers' Go samples that run against keyport's test servers
 * (conformance/servers/test/build-go-samples.mjs <folder>: `go test -c` of the samples with
 * keyport's driver, cached by content hash), so the test that runs them starts binaries, not a
 * compiler: Google's Cloud KMS samples for the gcp-kms target, Microsoft's azkeys examples for
 * azure-keyvault. Returns ms spent (0 when warm).
 */
export async function ensureGoSamples(target, folder, what) {
  const script = join(repoRoot, 'conformance/servers/test/build-go-samples.mjs');
  try {
    const out = await run(process.execPath, [script, folder], { timeoutMs: INSTALL_TIMEOUT_MS });
    return JSON.parse(out.trim().split('\n').at(-1)).buildMs;
  } catch (err) {
    throw new HarnessError(target, 'install', `building ${what} failed: ${err.output ?? err.message}`, {
      reproduce: `node ${script} ${folder}`,
    });
  }
}

/** Google's Cloud KMS Go samples (published-samples.gcp-go.test.ts). */
export const ensureGcpGoSamples = () =>
  ensureGoSamples('gcp-kms', 'gcp-kms-go-samples', "Google's Go samples");

/** Microsoft's azkeys Go examples (published-samples.azure-go.test.ts). */
export const ensureAzureGoExamples = () =>
  ensureGoSamples('azure-keyvault', 'azure-keyvault-keys-go-examples', "Microsoft's azkeys Go examples");

/**
 * Builds a folder of Java that runs against keyport's test servers
 * (conformance/servers/test/build-java-checks.mjs <folder>: Maven resolves its pom into ~/.m2,
 * javac compiles it into the cache by content hash), so the test that runs it starts a JVM, not
 * a compiler: keyport's checks through the Azure SDK for Java (azure-keyvault) and Google's Cloud
 * KMS client for Java (gcp-kms). Returns ms spent (0 when warm).
 */
export async function ensureJavaChecks(target, folder, what) {
  const script = join(repoRoot, 'conformance/servers/test/build-java-checks.mjs');
  try {
    const out = await run(process.execPath, [script, folder], { timeoutMs: INSTALL_TIMEOUT_MS });
    return JSON.parse(out.trim().split('\n').at(-1)).buildMs;
  } catch (err) {
    throw new HarnessError(target, 'install', `building ${what} failed: ${err.output ?? err.message}`, {
      reproduce: `node ${script} ${folder}`,
    });
  }
}

/**
 * What the azure-keyvault target builds besides its Python clients: Microsoft's azkeys Go
 * examples (published-samples.azure-go.test.ts) and the Azure SDK for Java check
 * (azure-java-sdk.test.ts).
 */
export const ensureAzureSampleBuilds = async () =>
  (await ensureAzureGoExamples()) +
  (await ensureJavaChecks('azure-keyvault', 'azure-keyvault-keys-java', 'the Azure SDK for Java check'));

/**
 * What the gcp-kms target builds: Google's Go samples (published-samples.gcp-go.test.ts) and the
 * Cloud KMS client for Java check (gcp-java-sdk.test.ts).
 */
export const ensureGcpSampleBuilds = async () =>
  (await ensureGcpGoSamples()) +
  (await ensureJavaChecks('gcp-kms', 'gcp-kms-java', 'the Cloud KMS client for Java check'));

/**
 * `apt-get install softhsm2`, only when the module is missing (the system package manager is
 * the only source of SoftHSM here). Needs root. Returns ms spent (0 when present).
 */
export async function ensureSoftHsm() {
  if (existsSync(softhsmModule) && existsSync('/usr/bin/softhsm2-util')) return 0;
  const reproduce = `apt-get update && apt-get install -y ${softhsmPackage}`;
  if (process.getuid?.() !== 0) {
    throw new HarnessError('softhsm', 'install', `${softhsmModule} is missing and installing it needs root`, {
      reproduce: `sudo sh -c '${reproduce}'`,
    });
  }
  const started = Date.now();
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    await run('flock', ['/tmp/keyport-apt.lock', 'apt-get', 'update', '-qq'], {
      env,
      timeoutMs: INSTALL_TIMEOUT_MS,
    });
    await run('flock', ['/tmp/keyport-apt.lock', 'apt-get', 'install', '-y', '-qq', softhsmPackage], {
      env,
      timeoutMs: INSTALL_TIMEOUT_MS,
    });
  } catch (err) {
    throw new HarnessError('softhsm', 'install', `apt-get failed: ${err.message}`, { reproduce });
  }
  if (!existsSync(softhsmModule)) {
    throw new HarnessError(
      'softhsm',
      'install',
      `${softhsmPackage} installed but ${softhsmModule} is absent`,
      {
        reproduce: `dpkg -L libsofthsm2 | grep '\\.so'`,
      },
    );
  }
  return Date.now() - started;
}

function shellQuote(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
