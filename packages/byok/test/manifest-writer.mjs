// A child process recording pairings into a shared manifest: `node --import <ts hooks>
// manifest-writer.mjs <manifest> <writer id> <count> <start file>`. It says it is ready
// (`<start file>.ready-<id>`) and waits for the start file, so all writers record at once.
import { access, writeFile } from 'node:fs/promises';
import { recordPairing } from '../src/index.ts';

const [path, id, count, start] = process.argv.slice(2);
await writeFile(`${start}.ready-${id}`, '');
for (;;) {
  try {
    await access(start);
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 5));
  }
}
for (let i = 0; i < Number(count); i++) {
  await recordPairing(path, {
    hsm: {
      uri: `pkcs11:token=t;object=w${id}-${i}`,
      label: `w${id}-${i}`,
      id: '6b70763100000001',
      version: '1',
    },
    target: {
      uri: `aws-kms://arn:aws:kms:us-east-1:111122223333:key/w${id}-${i}`,
      scheme: 'aws-kms',
      spec: 'AES_256',
      wrappingAlgorithm: 'RSAES_OAEP_SHA_1',
    },
    importedAt: new Date(0).toISOString(),
  });
}
