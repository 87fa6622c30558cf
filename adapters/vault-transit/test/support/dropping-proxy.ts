/**
 * A pass-through proxy to OpenBao that drops the answer of the next `state.dropImports` `/import`
 * requests after OpenBao has handled them (only the answer is lost). Used by this package's
 * lost-answer tests and by @keyport/byok's.
 */
import { createServer, request, type Server } from 'node:http';

export interface DroppingProxy {
  readonly server: Server;
  readonly state: { dropImports: number };
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `127.0.0.1:<port>` */
  readonly address: string;
}

export async function droppingProxy(target: string): Promise<DroppingProxy> {
  const up = new URL(target);
  const state = { dropImports: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const forward = request(
        { host: up.hostname, port: up.port, path: req.url, method: req.method, headers: req.headers },
        (answer) => {
          const out: Buffer[] = [];
          answer.on('data', (c: Buffer) => out.push(c));
          answer.on('end', () => {
            // OpenBao has handled the request: only its answer is lost.
            if (req.url?.endsWith('/import') && state.dropImports > 0) {
              state.dropImports--;
              req.socket.destroy();
              return;
            }
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(Buffer.concat(out));
          });
        },
      );
      forward.on('error', () => req.socket.destroy());
      forward.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const address = `127.0.0.1:${port}`;
  return { server, state, url: `http://${address}`, address };
}
