/**
 * Workspaces wired to the harness's emulators: a CLI config naming local-kms (AWS KMS) and
 * OpenBao, the environment a CLI child process needs, and an in-test Keyport on the same servers.
 */
import { awsKms } from '@keyport/aws-kms';
import { Keyport } from '@keyport/core';
import { VaultTransitProvider } from '@keyport/vault-transit';
import { localWorkspace, requireEmulator } from './cli.js';

const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;

export async function awsToOpenbaoWorkspace(hint: string) {
  const kms = requireEmulator('local-kms');
  const bao = requireEmulator('openbao');
  const ws = await localWorkspace({
    'aws-kms': { region: 'us-east-1', endpoint: kms.KEYPORT_LOCALKMS_ENDPOINT },
    hcvault: { address: bao.KEYPORT_OPENBAO_ADDR, flavor: 'openbao' },
  });
  const env = {
    KEYPORT_VAULT_TOKEN: bao.KEYPORT_OPENBAO_TOKEN,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: 'us-east-1',
    // The SDK's own switch for its "Node >= 22 from 2027" notice, so stderr shows only keyport.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const vault = new VaultTransitProvider({
    endpoint: bao.KEYPORT_OPENBAO_ADDR,
    auth: bao.KEYPORT_OPENBAO_TOKEN,
    flavor: 'openbao',
  });
  const keys = new Keyport({
    providers: [
      awsKms({
        region: 'us-east-1',
        endpoint: kms.KEYPORT_LOCALKMS_ENDPOINT,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      }),
      vault,
    ],
  });
  const name = `cli-${hint}-${run}`;
  const awsUri = (await keys.createKey('aws-kms', { name, spec: 'AES_256' })).uri;
  const baoUri = (await keys.createKey('hcvault', { name, spec: 'AES_256' })).uri;
  return { ws, env, keys, vault, awsUri, baoUri };
}
