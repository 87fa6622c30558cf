// Child of fast-records.test.ts, run with --allow-natives-syntax: whether the records core builds
// from callers' contexts and options keep V8's fast properties (see src/null-record.ts), and the
// one a driver receives through a Keyport call. Prints { name: boolean }.

import { decodeContext, encodeContext } from '../../src/context.ts';
import { Keyport } from '../../src/index.ts';
import { checkCallOptions, toEncryptionContext } from '../../src/validate.ts';
import { AES_ONLY_CAPABILITIES } from './capabilities.ts';

const fast = new Function('o', 'return %HasFastProperties(o)');
let seen;
const kp = new Keyport({
  providers: [
    {
      scheme: 'local',
      name: 'local',
      capabilities: AES_ONLY_CAPABILITIES,
      parseUri: (uri) => ({ uri }),
      encrypt: async (_ref, _pt, request) => {
        seen = request.context;
        return { ciphertext: new Uint8Array(8), keyVersion: '1' };
      },
      decrypt: async () => ({ plaintext: new Uint8Array(8), keyVersion: '1' }),
      mapError: () => undefined,
      close: async () => {},
    },
  ],
});
await kp.encrypt('local://probe#k', new Uint8Array(8), { context: { tenant: 't-1', purpose: 'probe' } });
const context = toEncryptionContext({ tenant: 't-1', __proto__: null, constructor: 'c' });
const fromMap = toEncryptionContext(
  new Map([
    ['__proto__', 'x'],
    ['toString', 'y'],
  ]),
);
const decoded = decodeContext(encodeContext({ a: '1', b: '2' }));
const { call, rest } = checkCallOptions({ timeoutMs: 5 }, 'options', { extra: true });
const records = { seen, context, fromMap, decoded, call, rest };
console.log(
  JSON.stringify(
    Object.fromEntries(
      Object.entries(records).map(([k, v]) => [
        k,
        fast(v) && (k === 'call' || Object.getPrototypeOf(v) === null),
      ]),
    ),
  ),
);
