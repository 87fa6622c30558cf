/** keyport's Java checks under fixtures/, built against the providers' Java SDKs by build-java-checks.mjs. */
import { join } from 'node:path';
import { run } from './run-child.js';

/**
 * The classpath of a folder of Java under fixtures/ (its pom's jars, then its compiled classes),
 * from build-java-checks.mjs (the harness ran it when it installed the target; on a warm cache it
 * only names them). Its failure (no JDK, no Maven, an artifact Maven Central would not serve)
 * fails the test with its message: never a skip.
 */
export async function builtJavaChecks(folder: string): Promise<{ classpath: string; buildMs: number }> {
  const r = await run(
    process.execPath,
    [join(import.meta.dirname, 'build-java-checks.mjs'), folder],
    process.env,
  );
  if (r.code !== 0) throw new Error(`building the Java in ${folder} failed:\n${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as { classpath: string; buildMs: number };
}

/**
 * A PKCS #12 truststore at `file` holding only the PEM certificate `caFile` (keytool, from the
 * JDK), and the JVM options that make it the JVM's only trusted root.
 */
export async function javaTrustStore(caFile: string, file: string): Promise<string> {
  const password = 'keyport';
  const r = await run(
    'keytool',
    ['-importcert', '-noprompt', '-alias', 'keyport-test-ca', '-file', caFile, '-keystore', file].concat([
      '-storetype',
      'PKCS12',
      '-storepass',
      password,
    ]),
    { PATH: process.env.PATH ?? '' },
  );
  if (r.code !== 0)
    throw new Error(`keytool -importcert failed (is a JDK installed?):\n${r.stderr}${r.stdout}`);
  return [
    `-Djavax.net.ssl.trustStore=${file}`,
    '-Djavax.net.ssl.trustStoreType=PKCS12',
    `-Djavax.net.ssl.trustStorePassword=${password}`,
  ].join(' ');
}

/** One step of a Java check, as it prints it: `keyport-java-check {"name", "result", "calls"}`. */
export interface JavaCheckReport {
  name: string;
  result: string;
  calls: string[];
}

/** The steps' reports in a Java check's output, by step name. */
export function javaCheckReports(stdout: string): Map<string, JavaCheckReport> {
  const out = new Map<string, JavaCheckReport>();
  for (const m of stdout.matchAll(/^keyport-java-check (\{.*\})$/gm)) {
    const r = JSON.parse(m[1] as string) as JavaCheckReport;
    out.set(r.name, r);
  }
  return out;
}
