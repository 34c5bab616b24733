// The services behind the tunnel: real TCP servers on 127.0.0.1 that the host dials. Each keeps its
// connections so close() can end them and a test can see how many are open.

import net from 'node:net';
import { createHash } from 'node:crypto';
import { freePort } from '../../src/cli/loopback.js';
import { byteSource, writeSeeded } from './traffic.js';

export interface Service {
  port: number;
  /** Its connections that are open now, oldest first. */
  sockets(): net.Socket[];
  close(): Promise<void>;
}

/** A server that hands every connection (half-close allowed) to `handler`. */
export function serve(handler: (socket: net.Socket) => void, options: { pauseOnConnect?: boolean } = {}): Promise<Service> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: options.pauseOnConnect ?? false }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy()); // resets are what many tests provoke
    handler(socket);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : 0,
        sockets: () => [...sockets],
        close: () => new Promise<void>((done) => {
          for (const s of sockets) s.destroy();
          server.close(() => done());
        }),
      });
    });
  });
}

/** Echo with half-close: ends its side once the peer ended and everything was echoed. With
 *  `stallMs` it reads nothing for that long first (a service slower than the tunnel). */
export function startEchoService(options: { stallMs?: number } = {}): Promise<Service> {
  const { stallMs } = options;
  if (stallMs === undefined) return serve((socket) => socket.pipe(socket));
  return serve((socket) => { setTimeout(() => socket.pipe(socket), stallMs); }, { pauseOnConnect: true });
}

/** Size of the response body the request/response service sends after the digest (bytes). */
export const RESPONSE_BODY_BYTES = 1024 * 1024;
/** Seed of that body, so the test can compute what it must receive. */
export const RESPONSE_SEED = 0x5eed;

/**
 * Request/response over half-close: reads until EOF, then writes the SHA-256 (32 raw bytes) of what
 * it read followed by RESPONSE_BODY_BYTES seeded bytes, and ends. It writes nothing before EOF.
 */
export function startDigestService(): Promise<Service> {
  return serve((socket) => {
    const hash = createHash('sha256');
    socket.on('data', (chunk: Buffer) => hash.update(chunk));
    socket.once('end', () => {
      socket.write(hash.digest());
      writeSeeded(socket, RESPONSE_BODY_BYTES, byteSource(RESPONSE_SEED));
    });
  });
}

export interface SourceService extends Service {
  /** What each connection sent to the service, recorded at its end (in order of their ends). */
  reads: { bytes: number; hash: string }[];
  /** How each connection ended first ('end', 'error CODE' or 'close') and when, from its start. */
  ends: { how: string; atMs: number }[];
}

/**
 * Sends `bytes` seeded bytes to every connection as fast as it may (with backpressure), then ends
 * unless `end` is false (then it just stops writing). Meanwhile it reads and hashes what arrives.
 */
export async function startSourceService(options: { bytes: number; seed: number; end?: boolean }): Promise<SourceService> {
  const reads: SourceService['reads'] = [];
  const ends: SourceService['ends'] = [];
  const service = await serve((socket) => {
    const started = Date.now();
    let reported = false;
    const report = (how: string) => { if (!reported) { reported = true; ends.push({ how, atMs: Date.now() - started }); } };
    socket.on('error', (err: NodeJS.ErrnoException) => report(`error ${err.code ?? err.message}`));
    socket.on('close', () => report('close'));
    const hash = createHash('sha256');
    let bytes = 0;
    socket.on('data', (c: Buffer) => { bytes += c.byteLength; hash.update(c); });
    socket.on('end', () => { report('end'); reads.push({ bytes, hash: hash.digest('hex') }); });
    writeSeeded(socket, options.bytes, byteSource(options.seed), { end: options.end ?? true });
  });
  return { ...service, reads, ends };
}

/** A port where nothing listens (it was free a moment ago). */
export const unusedPort = (): Promise<number> => freePort();

/** True if a plain listen on the port succeeds now. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A service whose port nothing listens on: every dial to it is refused. */
export async function nothingListens(): Promise<Service> {
  return { port: await unusedPort(), sockets: () => [], close: async () => {} };
}
