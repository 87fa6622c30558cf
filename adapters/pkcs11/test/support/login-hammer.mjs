// A child process logging in on the shared SoftHSM2 token again and again while others do:
// `node --import <ts hooks> login-hammer.mjs <start file> <id> <rounds> <key name>`. It builds
// one provider that makes no call (it keeps the module initialised, so each round's open runs
// C_GetTokenInfo and a real C_Login, and its close logs the application out), says it is ready
// (`<start file>.ready-<id>`) and waits for the start file, so no process is initialising the
// module while another logs in. Each round opens a provider (logs in), encrypts under the key and
// closes. No round creates a key: SoftHSM2 2.6.1 can lose the token for good in another process
// that way (README, Limits), which no retry cures. Prints one JSON line: { rounds, failures }
// with the code and message of each failure (never a PIN: keyport's messages hold none).
import './parent-bound.mjs';
import { access, writeFile } from 'node:fs/promises';
import { Pkcs11Provider } from '../../src/index.ts';

const [start, id, rounds, keyName] = process.argv.slice(2);
const env = process.env;
const options = {
  modulePath: env.KEYPORT_SOFTHSM_MODULE,
  token: { label: env.KEYPORT_SOFTHSM_TOKEN },
  pin: { env: 'KEYPORT_SOFTHSM_PIN' },
  oaepHashes: ['sha1'],
  maxSessions: 1,
};
const holder = new Pkcs11Provider(options);
await writeFile(`${start}.ready-${id}`, '');
for (;;) {
  try {
    await access(start);
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 2));
  }
}
const o = { signal: new AbortController().signal };
const failures = [];
let done = 0;
for (let i = 0; i < Number(rounds); i++) {
  let provider;
  try {
    provider = await Pkcs11Provider.open(options);
    await provider.encrypt({ uri: provider.uriFor(keyName) }, Buffer.from(`probe ${id}`), {}, o);
    done++;
  } catch (e) {
    failures.push(`${e?.code ?? 'thrown'}: ${String(e?.message ?? e)}`);
  } finally {
    await provider?.close();
  }
}
await holder.close();
process.stdout.write(`${JSON.stringify({ rounds: done, failures })}\n`);
