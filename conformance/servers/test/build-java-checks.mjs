#!/usr/bin/env node
// Builds a folder of Java under fixtures/ (named by the one argument, default
// azure-keyvault-keys-java) into the harness cache, outside the clone, once per hash of its files
// (pom.xml and every *.java): Maven resolves the pom's dependencies from Maven Central into its
// own repository (~/.m2; `mvn dependency:build-classpath`, serialised with the harness's other
// Maven user by the same lock), javac compiles the sources against them. Folders:
// - azure-keyvault-keys-java: keyport's check of the Key Vault test server through the Azure SDK
//   for Java (azure-java-sdk.test.ts); the harness builds it when it installs the
//   azure-keyvault target (`pnpm emulators up azure-keyvault`);
// - gcp-kms-java: keyport's check of the Cloud KMS test server through Google's Cloud KMS client
//   for Java (gcp-java-sdk.test.ts); the harness builds it when it installs the gcp-kms target.
// So a test run starts a JVM, not a compiler; the test runs this again, which on a warm cache
// only prints the paths. Prints one JSON line `{ classpath, buildMs }` (classpath: the jars, then
// the compiled classes); exits 1 naming what is missing (a JDK, Maven, an artifact Maven Central
// would not serve) and how to reproduce: a missing prerequisite fails the test, never skips it.
import { spawnSync } from 'node:child_process';
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
import { homedir } from 'node:os';
import { join } from 'node:path';

const FOLDERS = ['azure-keyvault-keys-java', 'gcp-kms-java'];
const folder = process.argv[2] ?? 'azure-keyvault-keys-java';
if (!FOLDERS.includes(folder)) fail(`unknown Java folder '${folder}': one of ${FOLDERS.join(', ')}`);
const SOURCES = join(import.meta.dirname, 'fixtures', folder);
const CACHE = process.env.KEYPORT_CACHE ?? join(homedir(), '.cache', 'keyport');
const ROOT = join(CACHE, folder);
const POM = join(SOURCES, 'pom.xml');

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

const javaFiles = readdirSync(SOURCES)
  .filter((f) => f.endsWith('.java'))
  .sort();
const hash = createHash('sha256');
for (const f of ['pom.xml', ...javaFiles])
  hash
    .update(f)
    .update('\0')
    .update(readFileSync(join(SOURCES, f)));
const dir = join(ROOT, hash.digest('hex').slice(0, 16));
const classpathFile = join(dir, 'classpath.txt');

/** The jars (as Maven resolved them into ~/.m2) and the compiled classes; they must still be there. */
function builtClasspath() {
  if (!existsSync(classpathFile)) return undefined;
  const classpath = readFileSync(classpathFile, 'utf8').trim();
  return classpath.split(':').every((p) => existsSync(p)) ? classpath : undefined;
}

const warm = builtClasspath();
if (warm !== undefined) {
  process.stdout.write(`${JSON.stringify({ classpath: warm, buildMs: 0 })}\n`);
  process.exit(0);
}

const started = Date.now();
for (const [tool, args, what] of [
  ['java', ['-version'], 'a JDK (java >= 17)'],
  ['javac', ['-version'], 'a JDK (javac >= 17)'],
  ['mvn', ['-v'], 'Maven (mvn >= 3.6)'],
]) {
  const r = spawnSync(tool, args, { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) {
    fail(
      `${tool} is missing: "${tool} ${args.join(' ')}" did not run (${r.error?.message ?? r.stderr}); install ${what}`,
    );
  }
}
mkdirSync(ROOT, { recursive: true });
const scratch = mkdtempSync(join(ROOT, 'tmp-'));
try {
  const jarsFile = join(scratch, 'jars.txt');
  const mvnArgs = ['-q', '-B', '-f', POM, 'dependency:build-classpath', `-Dmdep.outputFile=${jarsFile}`];
  const mvn = spawnSync('flock', [join(CACHE, '.mvn.lock'), 'mvn', ...mvnArgs], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (mvn.error !== undefined || mvn.status !== 0 || !existsSync(jarsFile)) {
    fail(
      `mvn ${mvnArgs.join(' ')} failed (artifacts come from Maven Central into ~/.m2):\n` +
        `${mvn.error?.message ?? ''}${mvn.stderr}${mvn.stdout}`,
    );
  }
  const jars = readFileSync(jarsFile, 'utf8').trim();
  const compiled = join(scratch, 'classes');
  const javacArgs = [
    '-nowarn',
    '-encoding',
    'UTF-8',
    '-cp',
    jars,
    '-d',
    compiled,
    ...javaFiles.map((f) => join(SOURCES, f)),
  ];
  const javac = spawnSync('javac', javacArgs, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (javac.status !== 0) {
    fail(`javac failed in ${SOURCES} (classpath from ${POM}):\n${javac.stderr}${javac.stdout}`);
  }
  mkdirSync(dir, { recursive: true });
  const classes = join(dir, 'classes');
  // Another build of the same contents may have finished first (its classes may be in use): keep
  // those, they are the same.
  if (!existsSync(classes)) renameSync(compiled, classes);
  // The classpath file last: its presence is what marks the folder complete.
  writeFileSync(join(scratch, 'classpath.txt'), `${jars}:${classes}\n`);
  renameSync(join(scratch, 'classpath.txt'), classpathFile);
  // Builds of older contents go (a running JVM keeps its open files).
  for (const d of readdirSync(ROOT)) {
    if (/^[0-9a-f]{16}$/.test(d) && join(ROOT, d) !== dir)
      rmSync(join(ROOT, d), { recursive: true, force: true });
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify({ classpath: builtClasspath(), buildMs: Date.now() - started })}\n`);
