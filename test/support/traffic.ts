// The application's side of the tunnel: TCP connections to a forwarded port and the byte flows the
// tests push through them. Bytes are seeded (the same every run) and checked by count and SHA-256.

import net from 'node:net';
import { createCipheriv, createHash } from 'node:crypto';
import { within } from './timing.js';

export const MiB = 1024 * 1024;
/** Size of one application write (bytes): a typical TCP read, and the tunnel's largest payload. */
export const CHUNK_BYTES = 64 * 1024;
/** Most a flow sends before it stops by itself (bytes): far more than any test waits for. */
const FLOW_LIMIT_BYTES = 1024 * MiB;

/** A deterministic byte stream for a seed (AES-128-CTR keystream): fast, and the same every run. */
export function byteSource(seed: number): (n: number) => Buffer {
  const key = createHash('sha256').update(`tunnel-test-${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return (n) => cipher.update(Buffer.alloc(n));
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Writes `size` bytes from `next` with backpressure (write() / 'drain'), then half-closes unless
 * `end` is false. `onChunk` sees each chunk as it is written (to hash it). Stops early if the
 * socket is no longer writable (the far side went away).
 */
export function writeSeeded(socket: net.Socket, size: number, next: (n: number) => Buffer, options: { end?: boolean; onChunk?: (chunk: Buffer) => void } = {}): void {
  let sent = 0;
  const pump = () => {
    while (sent < size) {
      if (!socket.writable) return;
      const chunk = next(Math.min(CHUNK_BYTES, size - sent));
      options.onChunk?.(chunk);
      sent += chunk.byteLength;
      if (!socket.write(chunk)) {
        socket.once('drain', pump);
        return;
      }
    }
    if (options.end !== false) socket.end();
  };
  pump();
}

// ---- connections ----

/** Every socket the tests open, so a failing test cannot leak one past its file. */
const openSockets = new Set<net.Socket>();

/** A connection to 127.0.0.1:`port` (half-close allowed), destroyed by destroyAllSockets(). */
export function connect(port: number): net.Socket {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  openSockets.add(socket);
  socket.once('close', () => openSockets.delete(socket));
  return socket;
}

/** connect(), resolved once the connection is up. */
export async function connected(port: number): Promise<net.Socket> {
  const socket = connect(port);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

export function destroyAllSockets(): void {
  for (const s of openSockets) s.destroy();
  openSockets.clear();
}

/** A connection through the tunnel that has echoed one round trip ("ping") and stays open. Errors
 *  on it are the test's business (a reset may be the expected end): they are not thrown. */
export async function openEchoed(port: number): Promise<net.Socket> {
  const socket = await connected(port);
  socket.on('error', () => {});
  socket.write('ping');
  let got = '';
  await within(new Promise<void>((resolve) => {
    const onData = (d: Buffer) => { got += d.toString(); if (got === 'ping') { socket.off('data', onData); resolve(); } };
    socket.on('data', onData);
  }), 10_000, `a round trip through port ${port} (got ${JSON.stringify(got)})`);
  return socket;
}

// ---- byte flows ----

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
 * Sends `size` seeded bytes through `port` with backpressure, half-closes, and hashes everything
 * that comes back until the far side ends. The far side is usually an echo; `onData` sees each
 * chunk received (with the running count) for a test that wants the bytes themselves.
 */
export function echoRoundTrip(port: number, size: number, seed: number, onData?: (chunk: Buffer, received: number) => void): Promise<RoundTrip> {
  return openFlow(port, seed, { bytes: size, onData }).finish();
}

export interface Flow {
  socket: net.Socket;
  sent(): number;
  received(): number;
  /** Stops an open-ended flow (half-closes); resolves once the far side ended, with both hashes,
   *  or rejects saying how far it got. */
  finish(): Promise<RoundTrip>;
}

/**
 * A stream through `port` that sends seeded bytes with backpressure and hashes both ways: `bytes`
 * of them and then a half-close, or without `bytes` as fast as the tunnel takes them (up to 1 GiB)
 * until finish() — a transfer "under way" when a process is killed. It throws nothing by itself
 * (the far side dying is what such tests do); finish() reports how it ended.
 */
export function openFlow(port: number, seed: number, options: { bytes?: number; onData?: ((chunk: Buffer, received: number) => void) | undefined } = {}): Flow {
  const what = `flow of ${options.bytes ?? 'open-ended'} B (seed ${seed})`;
  const sentHash = createHash('sha256');
  const receivedHash = createHash('sha256');
  let sent = 0;
  let received = 0;
  const socket = connect(port);
  const ended = new Promise<void>((resolve, reject) => {
    const progress = () => `after ${sent} B sent, ${received} B received`;
    socket.once('end', () => resolve());
    socket.once('error', (err) => reject(new Error(`${what}: ${err.message} ${progress()}`)));
    socket.once('close', () => reject(new Error(`${what}: closed without an end ${progress()}`)));
  });
  ended.catch(() => {}); // reported by finish(), if the test asks
  socket.on('data', (chunk: Buffer) => {
    received += chunk.byteLength;
    receivedHash.update(chunk);
    options.onData?.(chunk, received);
  });
  socket.once('connect', () => writeSeeded(socket, options.bytes ?? FLOW_LIMIT_BYTES, byteSource(seed), {
    end: options.bytes !== undefined,
    onChunk: (c) => { sentHash.update(c); sent += c.byteLength; },
  }));
  return {
    socket,
    sent: () => sent,
    received: () => received,
    async finish() {
      // an open-ended flow stops here (end() clears `writable`, which writeSeeded checks); one of
      // `bytes` half-closes by itself once it has sent them all
      if (options.bytes === undefined && !socket.writableEnded) socket.end();
      await ended;
      socket.destroy();
      return { sent, received, sentHash: sentHash.digest('hex'), receivedHash: receivedHash.digest('hex') };
    },
  };
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
    if (socket.destroyed) { done('close'); return; }
    socket.once('end', () => done('end'));
    socket.once('error', (err: NodeJS.ErrnoException) => done('error', err.code ?? err.message));
    socket.once('close', () => done('close'));
  });
}

export interface ReadResult { bytes: number; hash: string; how: Ending['how'] }

/**
 * Reads `socket` to its end the way a slow application does: nothing for the first `pauseMs`, then
 * at most `bytesPerSecond` (in 100 ms slices; unlimited if not given). Resolves with what arrived
 * and how the connection ended; never rejects.
 */
export function readAll(socket: net.Socket, options: { pauseMs?: number; bytesPerSecond?: number } = {}): Promise<ReadResult> {
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let budget = Infinity;
    let tick: NodeJS.Timeout | undefined;
    socket.pause();
    const start = setTimeout(() => {
      const rate = options.bytesPerSecond;
      if (rate !== undefined) {
        budget = rate / 10;
        tick = setInterval(() => { budget = rate / 10; socket.resume(); }, 100);
      }
      socket.resume();
    }, options.pauseMs ?? 0);
    socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.byteLength;
      budget -= chunk.byteLength;
      if (budget <= 0) socket.pause();
    });
    let over = false;
    const done = (how: Ending['how']) => {
      if (over) return;
      over = true;
      clearTimeout(start);
      clearInterval(tick);
      resolve({ bytes, hash: hash.digest('hex'), how });
    };
    socket.once('end', () => done('end'));
    socket.once('error', () => done('error'));
    socket.once('close', () => done('close'));
  });
}
