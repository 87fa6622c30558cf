// A child process writing one key on the shared SoftHSM2 token: `node --import <ts hooks>
// key-writer.mjs <create|rotate> <key name> <start file> <id> [<lock directory>]`. It opens its
// provider, says it is ready (`<start file>.ready-<id>`), waits for the start file so the writers
// run at the same moment, then creates (AES_256) or rotates the key, encrypts a probe under the
// result and prints one JSON line: { ok, version, sealedBy, ciphertext } (or sealError when the
// encryption failed) or { ok: false, code, message }.
import './parent-bound.mjs';
import { access, writeFile } from 'node:fs/promises';
import { Pkcs11Provider } from '../../src/index.ts';

const [op, name, start, id, lockDirectory] = process.argv.slice(2);
const env = process.env;
const provider = await Pkcs11Provider.open({
  modulePath: env.KEYPORT_SOFTHSM_MODULE,
  token: { label: env.KEYPORT_SOFTHSM_TOKEN },
  pin: { env: 'KEYPORT_SOFTHSM_PIN' },
  oaepHashes: ['sha1'],
  ...(lockDirectory ? { lockDirectory } : {}),
});
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
let result;
try {
  const info =
    op === 'create'
      ? await provider.createKey({ name, spec: 'AES_256' }, o)
      : await provider.rotateKey({ uri: provider.uriFor(name) }, o);
  result = { ok: true, version: info.primaryVersion };
  try {
    const sealed = await provider.encrypt({ uri: info.uri }, Buffer.from(`probe ${id}`), {}, o);
    result = {
      ...result,
      sealedBy: sealed.keyVersion,
      ciphertext: Buffer.from(sealed.ciphertext).toString('hex'),
    };
  } catch (e) {
    result = { ...result, sealError: e?.code ?? 'thrown' };
  }
} catch (e) {
  result = { ok: false, code: e?.code ?? 'thrown', message: String(e?.message ?? e) };
}
await provider.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
