/**
 * What every test needs: the OpenBao target's variables (fail, never skip, when missing), a
 * provider on it, unique key names, and a root node-vault client for setting up the server.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isKeyportError, type KeyportError, toKeyportError } from '@keyport/core';
import NodeVault from 'node-vault';
import { type VaultTransitOptions, VaultTransitProvider } from '../src/index.js';

export interface OpenBaoEnv {
  readonly addr: string;
  readonly token: string;
}

export function openbao(): OpenBaoEnv {
  const addr = process.env.KEYPORT_OPENBAO_ADDR;
  const token = process.env.KEYPORT_OPENBAO_TOKEN;
  if (!addr || !token) throw new Error('target openbao is not running: run "pnpm emulators up openbao"');
  return { addr, token };
}

/** A node-vault client with the root token, for arranging the server (not the code under test). */
export function rootClient(): NodeVault.client {
  const env = openbao();
  return NodeVault({ endpoint: env.addr, token: env.token });
}

/** Encrypting to a missing key must not create it: the setting every deployment should use. */
export async function disableUpsert(): Promise<void> {
  await rootClient().write('transit/config/keys', { disable_upsert: true });
}

export function provider(overrides: Partial<VaultTransitOptions> = {}): VaultTransitProvider {
  const env = openbao();
  return new VaultTransitProvider({ endpoint: env.addr, auth: env.token, flavor: 'openbao', ...overrides });
}

const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
let counter = 0;
export function keyName(hint: string): string {
  counter++;
  return `vt-${run}-${counter}-${hint}`;
}

/** What core passes every provider call. */
export function call(): { signal: AbortSignal } {
  return { signal: AbortSignal.timeout(20_000) };
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/**
 * The error a call ends with after core's mapping step (provider.mapError, else
 * toKeyportError) — what users of `Keyport` see.
 */
export async function rejection(p: VaultTransitProvider, pending: Promise<unknown>): Promise<KeyportError> {
  const error = await pending.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (error === undefined) throw new Error('expected the call to fail');
  const mapped = isKeyportError(error) ? error : (p.mapError(error) ?? toKeyportError(error));
  return mapped;
}

/** A stand-in server's JSON answer: `text` as it is (raw JSON), or `body` stringified. */
export const send = (res: ServerResponse, text: string, status = 200): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(text);
};
export const json = (res: ServerResponse, body: unknown, status = 200): void =>
  send(res, JSON.stringify(body), status);

/** A transit key read's `data` as transit writes it (an AES key at version 1), with `over` on top. */
export const keyData = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'k',
  type: 'aes256-gcm96',
  keys: { '1': 1_700_000_000 },
  latest_version: 1,
  min_decryption_version: 1,
  min_encryption_version: 0,
  min_available_version: 0,
  auto_rotate_period: 0,
  ...over,
});

/** A whole key read answer: `{ data: keyData(over) }`. */
export const keyAnswer = (over: Record<string, unknown> = {}) => ({ data: keyData(over) });

/**
 * A stand-in HTTP server answering every request with `handle` (as OpenBao never answers: a
 * server that is not quite Vault, or a proxy in front of it), and a provider talking to it with a
 * token (or `overrides`); `base` is the URI prefix of its default mount's keys.
 */
export async function standInVault(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  overrides: Partial<VaultTransitOptions> = {},
): Promise<{ server: Server; provider: VaultTransitProvider; base: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume();
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const p = new VaultTransitProvider({
    endpoint: `http://127.0.0.1:${port}`,
    auth: { method: 'token', token: 's.stand-in', renew: false },
    ...overrides,
  });
  return {
    server,
    provider: p,
    base: `hcvault://127.0.0.1:${port}/transit/keys`,
    async close() {
      await p.close();
      server.closeAllConnections();
      server.close();
    },
  };
}
