// The demo's loopback pieces, which the benchmark and the tests use too: an echo service and a free
// port.

import net from 'node:net';

export interface Echo { port: number; server: net.Server; close(): void }

/** An echo service that honours half-close: it ends its side once the client ended and all is echoed. */
export function startEcho(host = '127.0.0.1'): Promise<Echo> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : 0,
        server,
        close: () => { server.close(); for (const s of sockets) s.destroy(); },
      });
    });
  });
}

/** A port that was free a moment ago (forwards need an explicit port). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
