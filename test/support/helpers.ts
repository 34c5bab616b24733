// Shared pieces of the end-to-end tests: real TCP services, a seeded byte source, a round trip that
// honours backpressure, and a child-process wrapper for the CLI. No fakes: every byte crosses real
// sockets and a real PeerConnection on 127.0.0.1.
//
// Each test file still sets up and tears down its own host, client and services; this file only
// holds functions.

import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { prng } from './prng.js';
import type { ShardStats } from '../../src/shared/thread-messages.js';
export { prng };

/** The project root (this file runs as dist/test/support/helpers.js). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');

/** Log level of the tunnels under test; TUNNEL_TEST_LOG=debug to see everything. */
export const LOG_LEVEL = process.env.TUNNEL_TEST_LOG ?? 'warn';

/** Size of one application write (bytes): a typical TCP read, and the tunnel's largest payload. */
export const CHUNK_BYTES = 64 * 1024;

// ---- seeded randomness ----


/** A deterministic byte stream for a seed (AES-128-CTR keystream): fast, and the same every run. */
export function byteSource(seed: number): (n: number) => Buffer {
  const key = createHash('sha256').update(`tunnel-test-${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return (n) => cipher.update(Buffer.alloc(n));
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

// ---- timing ----

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects with a message naming `what` if `promise` takes longer than `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms); }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it is true or `ms` passed; returns the last value. */
export async function eventually(check: () => Promise<boolean> | boolean, ms: number, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(stepMs);
  }
}

// ---- client connections ----

/** Every socket the tests open, so a failing test cannot leak one past its file. */
const openSockets = new Set<net.Socket>();

export function connect(port: number): net.Socket {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  openSockets.add(socket);
  socket.once('close', () => openSockets.delete(socket));
  return socket;
}

export function destroyAllSockets(): void {
  for (const s of openSockets) s.destroy();
  openSockets.clear();
}

/** Sends `payload` through an echo reached at `port`, half-closes, and checks that exactly the same
 *  bytes come back (count and SHA-256) before the far side ends. */
export function echoExact(port: number, payload: Buffer, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    const socket = connect(port);
    socket.once('connect', () => socket.end(payload));
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`echo through port ${port} timed out after ${bytes} bytes`)); }, timeoutMs);
    socket.on('data', (c: Buffer) => { hash.update(c); bytes += c.byteLength; });
    socket.on('end', () => {
      clearTimeout(timer);
      socket.end();
      if (bytes !== payload.byteLength) reject(new Error(`echoed ${bytes} bytes of ${payload.byteLength}`));
      else if (hash.digest('hex') !== sha256(payload)) reject(new Error('echoed bytes differ (SHA-256)'));
      else resolve();
    });
    socket.on('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

export interface RoundTrip {
  sent: number;
  received: number;
  sentHash: string;
  receivedHash: string;
}

/**
 * Sends `size` seeded bytes to an echo through `port` with backpressure (write() / 'drain'),
 * half-closes, and hashes everything that comes back until the far side ends.
 * `onProgress` sees the running count of bytes received.
 */
export function echoRoundTrip(port: number, size: number, seed: number, onProgress?: (received: number) => void): Promise<RoundTrip> {
  return new Promise((resolve, reject) => {
    const next = byteSource(seed);
    const sentHash = createHash('sha256');
    const receivedHash = createHash('sha256');
    let sent = 0;
    let received = 0;
    const socket = connect(port);
    const pump = () => {
      while (sent < size) {
        const chunk = next(Math.min(CHUNK_BYTES, size - sent));
        sentHash.update(chunk);
        sent += chunk.byteLength;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
    };
    socket.once('connect', pump);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.byteLength;
      receivedHash.update(chunk);
      onProgress?.(received);
    });
    socket.once('end', () => {
      socket.destroy();
      resolve({ sent, received, sentHash: sentHash.digest('hex'), receivedHash: receivedHash.digest('hex') });
    });
    socket.once('error', (err) => reject(new Error(`round trip of ${size} B (seed ${seed}): ${err.message} after ${sent} B sent, ${received} B received`)));
    socket.once('close', () => reject(new Error(`round trip of ${size} B (seed ${seed}): closed without an end after ${sent} B sent, ${received} B received`)));
  });
}

export interface Ending {
  /** how the connection ended first: a clean 'end', an 'error' (e.g. ECONNRESET), or a bare 'close' */
  how: 'end' | 'error' | 'close';
  code?: string | undefined;
  ms: number;
  received: number;
}

/** Resolves once `socket` sees end, error or close, with how long that took from `since`. */
export function whenEnded(socket: net.Socket, since = Date.now()): Promise<Ending> {
  return new Promise((resolve) => {
    let received = 0;
    socket.on('data', (chunk: Buffer) => { received += chunk.byteLength; });
    const done = (how: Ending['how'], code?: string) => {
      resolve({ how, code, ms: Date.now() - since, received });
    };
    socket.once('end', () => done('end'));
    socket.once('error', (err: NodeJS.ErrnoException) => done('error', err.code ?? err.message));
    socket.once('close', () => done('close'));
  });
}

// ---- services ----

export interface Service { port: number; close(): Promise<void> }

function serve(handler: (socket: net.Socket) => void): Promise<Service> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    handler(socket);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : 0,
        close: () => new Promise<void>((done) => {
          for (const s of sockets) s.destroy();
          server.close(() => done());
        }),
      });
    });
  });
}

/** Echo with half-close: ends its side once the peer ended and everything was echoed. */
export function startEchoService(): Promise<Service> {
  return serve((socket) => socket.pipe(socket));
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
      const next = byteSource(RESPONSE_SEED);
      let left = RESPONSE_BODY_BYTES;
      const pump = () => {
        while (left > 0) {
          const chunk = next(Math.min(CHUNK_BYTES, left));
          left -= chunk.byteLength;
          if (!socket.write(chunk)) {
            socket.once('drain', pump);
            return;
          }
        }
        socket.end();
      };
      pump();
    });
  });
}

/** A port where nothing listens (it was free a moment ago). */
export function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True if a plain listen on the port succeeds now. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

// ---- child processes ----

export interface Child {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout line matching `re` (rejects on exit or after `ms`). */
  line(re: RegExp, ms: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or the signal name) once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Kills the process (SIGKILL) if it is still running. */
  stop(): Promise<void>;
}

/**
 * Runs `cli.js ARGS`. With `viaNpx`, exactly as a user would type it (`npx node dist/src/cli.js ...`);
 * without, the same Node binary that npx resolves (the one running this test) is started directly.
 * Direct is needed wherever the test signals the tunnel: npx does not forward SIGTERM (it exits and
 * leaves its child running) and SIGKILL on npx would kill only npx.
 */
export function runCli(args: string[], options: { viaNpx?: boolean; env?: NodeJS.ProcessEnv } = {}): Child {
  const [cmd, argv] = options.viaNpx
    ? ['npx', ['node', CLI, ...args]]
    : [process.execPath, [CLI, ...args]];
  const proc = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  let out = '';
  let err = '';
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const check = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      const m = w ? out.match(w.re) : null;
      if (w && m) {
        waiters.splice(i, 1);
        w.resolve(m);
      }
    }
  };
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d; check(); });
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => { err += d; });
  let gone = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('close', (code, signal) => { gone = true; resolve({ code, signal }); });
  });
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    line(re, ms) {
      return within(new Promise<RegExpMatchArray>((resolve, reject) => {
        waiters.push({ re, resolve });
        check();
        void exited.then(({ code, signal }) => reject(new Error(`${args[0]} exited (${code ?? signal}) before printing ${re}; stderr: ${err.trim()}`)));
      }), ms, `${args[0]}: waiting for ${re} (stdout so far: ${JSON.stringify(out)}, stderr: ${JSON.stringify(err)})`);
    },
    async stop() {
      if (gone) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

// ---- an in-process client that survives a known start-up flake ----



/** Every shard's stats; a shard that did not answer fails the test (it would be a stuck worker). */
export function answered(stats: { shards: (ShardStats | null)[] }): ShardStats[] {
  const missing = stats.shards.findIndex((s) => s === null);
  if (missing >= 0) throw new Error(`shard ${missing} did not answer a stats request`);
  return stats.shards as ShardStats[];
}
