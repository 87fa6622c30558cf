// A child process that imports an HSM key into the local keystore and dies (SIGKILL, as a power
// cut or `kill -9` would) at a chosen point: `node --import <ts hooks> import-interrupted-child.mjs
// <keystore> <manifest> <hsm key name> <target name> <point>`. <point> is `after-generation` (the
// HSM key exists, nothing wrapped yet), `before-import` (the wrapped key never reaches the target)
// or `after-import` (the target holds the material, the manifest has not been written yet). The
// HSM is the one SOFTHSM2_CONF names (the parent's token), so the parent sees the same HSM key
// after the kill.
import { Keyport } from '@keyport/core';
import { openLocalKeystore } from '@keyport/local';
import { Pkcs11Provider } from '@keyport/pkcs11';
import { importHsmKey } from '../src/index.ts';

const [keystore, manifestPath, hsmName, targetName, point] = process.argv.slice(2);
const hsm = await Pkcs11Provider.open({
  modulePath: process.env.KEYPORT_SOFTHSM_MODULE,
  token: { label: process.env.KEYPORT_SOFTHSM_TOKEN },
  pin: { env: 'KEYPORT_SOFTHSM_PIN' },
});
const local = await openLocalKeystore({
  path: keystore,
  passphrase: 'byok test passphrase',
  create: true,
  kdf: { log2N: 10, r: 8, p: 1 },
});
const keyport = new Keyport({ providers: [hsm, local] });
const target = await keyport.createKey('local', { name: targetName, spec: 'AES_256', external: true });
process.stdout.write(`${target.uri}\n`);
// Keyport as importHsmKey sees it, with the kill placed around the one call that changes the target.
const dying = new Proxy(keyport, {
  get(k, name) {
    if (name === 'createKey' && point === 'after-generation') {
      return async (...args) => {
        const created = await k.createKey(...args);
        if (args[0] === 'pkcs11') process.kill(process.pid, 'SIGKILL');
        return created;
      };
    }
    if (name === 'importKeyMaterial') {
      return async (...args) => {
        if (point === 'before-import') process.kill(process.pid, 'SIGKILL');
        const imported = await k.importKeyMaterial(...args);
        process.kill(process.pid, 'SIGKILL');
        return imported;
      };
    }
    const value = Reflect.get(k, name, k);
    return typeof value === 'function' ? value.bind(k) : value;
  },
});
await importHsmKey({
  keyport: dying,
  hsm,
  hsmKey: { create: { name: hsmName } },
  target: { uri: target.uri },
  manifestPath,
});
process.stdout.write('not killed\n');
