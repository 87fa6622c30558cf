/**
 * Two Vault clusters in one client: the harness's `openbao` and `openbao-dr` servers as
 * instances `east` and `west` of the hcvault driver. Keys are addressed as
 * `hcvault+<instance>://…`; a plain hcvault:// URI (as written before instances existed) reaches
 * the instance whose server it names.
 */
import { createKeyport, type Keyport, MemoryAuditSink } from '@keyport/core';
import { openEnvelope, rewrapEnvelope, sealEnvelope } from '@keyport/envelope';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteKey, rewrap, VaultTransitProvider } from '../src/index.js';
import { bytes, keyName, openbao } from './helpers.js';

function openbaoDr(): { addr: string; token: string } {
  const addr = process.env.KEYPORT_OPENBAO_DR_ADDR;
  const token = process.env.KEYPORT_OPENBAO_DR_TOKEN;
  if (!addr || !token)
    throw new Error('target openbao-dr is not running: run "pnpm emulators up openbao-dr"');
  return { addr, token };
}

const spec = { spec: 'AES_256', usage: 'encrypt_decrypt' } as const;
const message = bytes('moved from one cluster to the other');

describe('vault-transit: two OpenBao clusters as named instances of one client', () => {
  const audit = new MemoryAuditSink();
  let keys: Keyport;
  let east: string;
  let west: string;

  beforeAll(async () => {
    const a = openbao();
    const b = openbaoDr();
    keys = createKeyport({
      audit: [audit],
      providers: {
        east: new VaultTransitProvider({ endpoint: a.addr, auth: a.token, flavor: 'openbao' }),
        west: new VaultTransitProvider({ endpoint: b.addr, auth: b.token, flavor: 'openbao' }),
      },
    });
    east = (await keys.createKey('east', { ...spec, name: keyName('east') })).uri;
    west = (await keys.createKey('west', { ...spec, name: keyName('west') })).uri;
  });
  afterAll(() => keys.close());

  it('answers with URIs naming the instance and its server', () => {
    const hostOf = (addr: string) => new URL(addr).host;
    expect(east.startsWith(`hcvault+east://${hostOf(openbao().addr)}/transit/keys/`)).toBe(true);
    expect(west.startsWith(`hcvault+west://${hostOf(openbaoDr().addr)}/transit/keys/`)).toBe(true);
  });

  it('keeps the clusters apart: a key exists only on its own server', async () => {
    const sealed = await keys.encrypt(east, message, { context: { app: 'x' } });
    expect((await keys.decrypt(east, sealed.ciphertext, { context: { app: 'x' } })).plaintext).toEqual(
      message,
    );
    await keys.rotateKey(west);
    expect((await keys.describeKey(west)).primaryVersion).toBe('2');
    expect((await keys.describeKey(east)).primaryVersion).toBe('1');
    // The west instance refuses a URI naming the east server.
    await expect(keys.describeKey(east.replace('hcvault+east://', 'hcvault+west://'))).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });

  it('a plain hcvault:// URI reaches the instance whose server it names', async () => {
    const plainEast = east.replace('hcvault+east://', 'hcvault://');
    const plainWest = west.replace('hcvault+west://', 'hcvault://');
    expect((await keys.describeKey(plainEast)).uri).toBe(east);
    expect((await keys.describeKey(plainWest)).uri).toBe(west);
    const c = await keys.encrypt(plainWest, message);
    expect((await keys.decrypt(west, c.ciphertext)).plaintext).toEqual(message);
  });

  it('moves an envelope between the clusters; the EDK names the instance and version', async () => {
    const sealed = await sealEnvelope(message, { recipients: [east], keys, context: { app: 'x' } });
    const moved = await rewrapEnvelope(sealed, { trust: [east], keys, add: [west], remove: [east] });
    const text = Buffer.from(moved).toString('latin1');
    expect(text).toContain(`${west}?version=2`);
    expect(text).not.toContain(east);
    const opened = await openEnvelope(moved, { trust: [west], keys });
    expect(Buffer.from(opened.plaintext)).toEqual(Buffer.from(message));
  });

  it('transit-only operations run on the core call path of the instance the URI names', async () => {
    const sealed = await keys.encrypt(west, message, { context: { app: 'r' } });
    await keys.rotateKey(west);
    const moved = await rewrap(keys, west, sealed.ciphertext, { context: { app: 'r' } });
    expect(moved.keyVersion).toBe('3');
    expect(audit.events.at(-1)).toMatchObject({ op: 'hcvault:rewrap', keyUri: west, outcome: 'success' });
    const doomed = (await keys.createKey('east', { ...spec, name: keyName('doomed') })).uri;
    await deleteKey(keys, doomed);
    expect(audit.events.at(-1)).toMatchObject({
      op: 'hcvault:deleteKey',
      keyUri: doomed,
      outcome: 'success',
    });
    await expect(keys.describeKey(doomed)).rejects.toMatchObject({ code: 'NotFound' });
    await expect(deleteKey(keys, doomed)).rejects.toMatchObject({ code: 'NotFound', keyUri: doomed });
    expect(audit.events.at(-1)).toMatchObject({
      op: 'hcvault:deleteKey',
      outcome: 'failure',
      errorCode: 'NotFound',
    });
  });
});
