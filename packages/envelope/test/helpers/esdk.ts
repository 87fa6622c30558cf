/**
 * ESDK implementations in child processes, all speaking one line protocol: ESDK-JS in a child
 * Node process (see esdk-child.cjs for why), the Python ESDK (esdk_child.py), the Java ESDK
 * (esdk-java/EsdkChild.java, compiled by the harness) and the Go ESDK (esdk-go/main.go, built by
 * the harness). A child is started on first use and stopped by its `stop` in afterAll.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export type EsdkKeyring =
  | { type: 'aes'; namespace: string; name: string; key: string; utf8Sorting?: boolean }
  | {
      type: 'rsa';
      namespace: string;
      name: string;
      privateKey: string;
      publicKey: string;
      /** The Python and Java children (ESDK-JS's keyring here is OAEP-SHA256). Default oaep-sha256. */
      padding?: 'oaep-sha1' | 'oaep-sha256' | 'oaep-sha384' | 'oaep-sha512';
    }
  /** ESDK-JS: its KmsKeyringNode over the stand-in KMS (`secret`); Python, Go: AWS KMS at AWS_ENDPOINT_URL_KMS. */
  | { type: 'kms'; arn: string; secret?: string }
  /** The Python (keyrings) and Go children: the AWS KMS RSA keyring; `publicKey` PEM (AWS KMS at AWS_ENDPOINT_URL_KMS). */
  | { type: 'kms-rsa'; arn: string; publicKey: string; algorithm?: 'RSAES_OAEP_SHA_256' | 'RSAES_OAEP_SHA_1' }
  /** The Python, Java and Go children (keyrings): the raw ECDH keyring; public keys base64 SPKI DER, private keys PEM. */
  | {
      type: 'ecdh';
      scheme: 'static' | 'ephemeral' | 'discovery';
      curve: 'ECC_NIST_P256' | 'ECC_NIST_P384' | 'ECC_NIST_P521';
      senderPrivateKey?: string;
      recipientPublicKey?: string;
      recipientPrivateKey?: string;
    };

interface Answer {
  id: number;
  ok: boolean;
  error?: string;
  data?: string;
  suiteId?: number;
  context?: Record<string, string>;
  frameLength?: number;
}

type EncryptOptions = {
  context?: Record<string, string>;
  suiteId?: number;
  frameLength?: number;
  policy?: 'require' | 'legacy';
  /** The Python, Java and Go children (keyrings): seal under the Required Encryption Context CMM with these keys. */
  requiredContextKeys?: string[];
};
/** The Python, Java and Go children: the encryption context given to decrypt (pairs the message did not store). */
type DecryptOptions = { reproducedContext?: Record<string, string> };
export interface Opened {
  plaintext: Buffer;
  suiteId: number;
  context: Record<string, string>;
  frameLength: number;
}

/** One ESDK implementation in a child process, speaking the line protocol of esdk-child.cjs. */
export interface EsdkChild {
  encrypt(keyrings: EsdkKeyring[], plaintext: Uint8Array, opts?: EncryptOptions): Promise<Buffer>;
  decrypt(
    keyrings: EsdkKeyring[],
    message: Uint8Array,
    policy?: 'require' | 'legacy',
    opts?: DecryptOptions,
  ): Promise<Opened>;
  stop(): Promise<void>;
}

/**
 * `name` runs as the command `command()` gives, started on first use; `env` is all the child
 * sees; `extra` goes into every request.
 */
function esdkChild(
  name: string,
  command: () => [string, ...string[]],
  env: () => NodeJS.ProcessEnv,
  extra: Record<string, unknown> = {},
): EsdkChild {
  let child: ChildProcessWithoutNullStreams | undefined;
  const waiting = new Map<number, (a: Answer) => void>();
  let nextId = 1;
  let stderr = '';

  const start = (): ChildProcessWithoutNullStreams => {
    if (child !== undefined) return child;
    const [file, ...args] = command();
    const c = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env() });
    child = c;
    c.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    // A child that dies (or never starts) fails what it held, with what it said.
    const fail = (why: string) => {
      for (const [id, resolve] of waiting) resolve({ id, ok: false, error: `${why}\n${stderr}` });
      waiting.clear();
    };
    c.once('error', (e) => fail(`${name} could not start: ${e.message}`));
    c.once('exit', (code, signal) => fail(`${name} exited (${signal ?? code})`));
    createInterface({ input: c.stdout }).on('line', (line) => {
      const a = JSON.parse(line) as Answer;
      waiting.get(a.id)?.(a);
      waiting.delete(a.id);
    });
    return c;
  };

  const call = async (req: Record<string, unknown>): Promise<Answer> => {
    const c = start();
    const id = nextId++;
    const answer = new Promise<Answer>((resolve) => waiting.set(id, resolve));
    c.stdin.write(`${JSON.stringify({ ...extra, ...req, id })}\n`);
    const a = await answer;
    if (!a.ok) throw new Error(`${name} failed: ${a.error}`);
    return a;
  };

  return {
    async encrypt(keyrings, plaintext, opts = {}) {
      const data = Buffer.from(plaintext).toString('base64');
      const a = await call({ op: 'encrypt', keyrings, data, ...opts });
      return Buffer.from(a.data as string, 'base64');
    },
    async decrypt(keyrings, message, policy = 'require', opts = {}) {
      const a = await call({
        op: 'decrypt',
        keyrings,
        data: Buffer.from(message).toString('base64'),
        policy,
        ...opts,
      });
      return {
        plaintext: Buffer.from(a.data as string, 'base64'),
        suiteId: a.suiteId as number,
        context: a.context as Record<string, string>,
        frameLength: a.frameLength as number,
      };
    },
    async stop() {
      const c = child;
      child = undefined;
      if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((resolve) => c.once('exit', resolve));
      c.stdin.end();
      c.kill();
      await exited;
    },
  };
}

/** A child's environment when it needs nothing but PATH. */
const pathEnv = () => ({ PATH: process.env.PATH ?? '' });

/** ESDK-JS (@aws-crypto/client-node) in a child Node process. */
const esdkJs = esdkChild(
  'ESDK-JS',
  () => [process.execPath, fileURLToPath(new URL('./esdk-child.cjs', import.meta.url))],
  pathEnv,
);
export const esdkEncrypt = esdkJs.encrypt;
export const esdkDecrypt = esdkJs.decrypt;
export const stopEsdk = esdkJs.stop;

/**
 * The AWS Encryption SDK for Python (aws-encryption-sdk from PyPI) in a child process: the
 * harness installs it into its venv and names that venv's Python in KEYPORT_ESDK_PYTHON.
 */
function pythonChild(): [string, ...string[]] {
  const python = process.env.KEYPORT_ESDK_PYTHON;
  if (!python) throw new Error('KEYPORT_ESDK_PYTHON is not set: the harness installs the Python ESDK');
  return [python, fileURLToPath(new URL('./esdk_child.py', import.meta.url))];
}
/** The child's environment: PATH, and the AWS variables a KMS key needs when the test set them. */
const AWS_VARIABLES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION', 'AWS_ENDPOINT_URL_KMS'];
const awsEnv = () => ({
  ...pathEnv(),
  ...Object.fromEntries(AWS_VARIABLES.flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : []))),
});
const pythonEnv = () => ({ ...awsEnv(), PYTHONDONTWRITEBYTECODE: '1' });

/** One child per API: its own raw master key providers, and the Material Providers keyrings. */
export const esdkPython = esdkChild('ESDK-Python (master keys)', pythonChild, pythonEnv, {
  api: 'masterkey',
});
export const esdkPythonKeyrings = esdkChild('ESDK-Python (keyrings)', pythonChild, pythonEnv, {
  api: 'keyring',
});

/**
 * The Java child: the classpath the harness wrote (the jars of esdk-java/pom.xml, then
 * EsdkChild.java compiled), on a JVM tuned to start light (one JIT tier, a serial collector):
 * it runs beside the rest of the suite on a 2-core machine.
 */
function javaChild(): [string, ...string[]] {
  const file = process.env.KEYPORT_ESDK_JAVA_CLASSPATH;
  if (!file) throw new Error('KEYPORT_ESDK_JAVA_CLASSPATH is not set: the harness resolves the Java ESDK');
  const classpath = readFileSync(file, 'utf8').trim();
  return ['java', '-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-cp', classpath, 'EsdkChild'];
}
/**
 * The AWS Encryption SDK for Java (com.amazonaws:aws-encryption-sdk-java, Maven Central), one
 * child per API: the Material Providers Library's keyrings, and the SDK's own JceMasterKey.
 */
export const esdkJavaKeyrings = esdkChild('ESDK-Java (keyrings)', javaChild, pathEnv, { api: 'keyring' });
export const esdkJavaMasterKeys = esdkChild('ESDK-Java (JceMasterKey)', javaChild, pathEnv, {
  api: 'masterkey',
});

/**
 * The AWS Encryption SDK for Go (github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk,
 * from the Go module proxy) through the Material Providers Library's keyrings (raw AES, raw RSA,
 * AWS KMS at AWS_ENDPOINT_URL_KMS): the binary the harness built from esdk-go/ (KEYPORT_ESDK_GO).
 * The Go SDK has no master-key API.
 */
export const esdkGo = esdkChild(
  'ESDK-Go (keyrings)',
  () => {
    const binary = process.env.KEYPORT_ESDK_GO;
    if (!binary) throw new Error('KEYPORT_ESDK_GO is not set: the harness builds the Go ESDK child');
    return [binary];
  },
  awsEnv,
);
