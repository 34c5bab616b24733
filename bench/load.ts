// The load generator, in its own process: it plays the applications on the client side of the tunnel
// (or, for the baselines, talks to the service directly). Every loop is bounded in count and in time.

import net from 'node:net';
import { serve } from './ipc.js';
import { summarize } from './stats.js';
import type { BulkResult, ChurnResult, LatencyResult, LoadJob, ManyResult, ReleaseResult } from './jobs.js';

/** One write of an upload (bytes): a full TCP read on the other side. */
const WRITE_BYTES = 64 * 1024;
const block = Buffer.alloc(WRITE_BYTES, 0x62);

function connect(port: number): net.Socket {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  socket.setNoDelay(true);
  return socket;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** Calls `fn` once; later calls do nothing. */
function once<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  let called = false;
  return (...args: A) => { if (!called) { called = true; fn(...args); } };
}

// ---- bulk ----

/** Sends `bytes` to the sink; resolves once the sink's last count says it has them all. */
function upload(port: number, bytes: number, progress: { bytes: number }, sockets: Set<net.Socket>): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port);
    sockets.add(socket);
    const done = once((err: Error | null) => { sockets.delete(socket); socket.destroy(); if (err) reject(err); else resolve(); });
    let written = 0;
    let acked = 0;
    let pending: Buffer = Buffer.alloc(0);
    const write = () => {
      while (written < bytes) {
        const n = Math.min(WRITE_BYTES, bytes - written);
        written += n;
        if (!socket.write(n === WRITE_BYTES ? block : block.subarray(0, n))) {
          socket.once('drain', write);
          return;
        }
      }
      socket.end();
    };
    socket.once('connect', write);
    socket.on('data', (data: Buffer) => {
      pending = pending.byteLength ? Buffer.concat([pending, data]) : data;
      while (pending.byteLength >= 8) {
        const count = Number(pending.readBigUInt64BE(0));
        pending = pending.subarray(8);
        progress.bytes += count - acked;
        acked = count;
      }
    });
    socket.on('end', () => done(acked === bytes ? null : new Error(`sink counted ${acked} of ${bytes} bytes`)));
    socket.on('error', (err) => done(err));
    socket.on('close', () => done(new Error('closed early')));
  });
}

/** Asks the source for `bytes`; resolves once they all arrived and the source ended. */
function download(port: number, bytes: number, progress: { bytes: number }, sockets: Set<net.Socket>): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port);
    sockets.add(socket);
    const done = once((err: Error | null) => { sockets.delete(socket); socket.destroy(); if (err) reject(err); else resolve(); });
    let received = 0;
    socket.once('connect', () => socket.write(u64(bytes)));
    socket.on('data', (data: Buffer) => { received += data.byteLength; progress.bytes += data.byteLength; });
    socket.on('end', () => done(received === bytes ? null : new Error(`received ${received} of ${bytes} bytes`)));
    socket.on('error', (err) => done(err));
    socket.on('close', () => done(new Error('closed early')));
  });
}

async function bulk(job: Extract<LoadJob, { t: 'bulk' }>): Promise<BulkResult> {
  const progress = { bytes: 0 };
  const sockets = new Set<net.Socket>();
  const start = performance.now();
  let failed = 0;
  let firstError: string | undefined;
  const one = job.dir === 'up' ? upload : download;
  // the mixed scenario: one more download beside the bulk streams, read slowly, not counted
  const slow = job.slowReaderBytesPerSecond ? slowDownload(job.port, job.slowReaderBytesPerSecond, sockets) : null;
  const all = Promise.all(Array.from({ length: job.streams }, () => one(job.port, job.bytesPerStream, progress, sockets).catch((err: Error) => {
    failed++;
    firstError ??= err.message;
  })));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    all.then(() => false),
    new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), job.timeoutMs); }),
  ]);
  clearTimeout(timer);
  const ms = performance.now() - start;
  slow?.stop();
  for (const s of sockets) s.destroy();
  const ok = !timedOut && failed === 0;
  const result: BulkResult = { ok, bytes: progress.bytes, ms, failed };
  if (timedOut) result.error = `timed out after ${job.timeoutMs} ms with ${progress.bytes} bytes moved`;
  else if (firstError) result.error = firstError;
  return result;
}

/** Asks the source for far more than it will read, and reads it at `rate` bytes/s until stopped. */
function slowDownload(port: number, rate: number, sockets: Set<net.Socket>): { stop(): void } {
  const socket = connect(port);
  sockets.add(socket);
  let budget = 0;
  socket.once('connect', () => socket.write(u64(1024 * 1024 * 1024)));
  socket.pause();
  socket.on('data', (data: Buffer) => { budget -= data.byteLength; if (budget <= 0) socket.pause(); });
  socket.on('error', () => {});
  const tick = setInterval(() => { budget = rate / 10; socket.resume(); }, 100);
  return { stop: () => { clearInterval(tick); sockets.delete(socket); socket.destroy(); } };
}

// ---- request/response ----

/** Writes `request` and resolves once `size` bytes came back. */
function exchange(socket: net.Socket, request: Buffer, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const finish = once((err: Error | null) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err); else resolve();
    });
    const onData = (data: Buffer) => { got += data.byteLength; if (got >= request.byteLength) finish(null); };
    const onClose = () => finish(new Error('closed during an exchange'));
    const timer = setTimeout(() => finish(new Error(`no echo in ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.write(request);
  });
}

function opened(socket: net.Socket, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`connect not done in ${timeoutMs} ms`)); }, timeoutMs);
    socket.once('connect', () => { clearTimeout(timer); resolve(); });
    socket.once('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

/** Ends our side and resolves once the socket is fully closed (the far side ended too). */
function closed(socket: net.Socket, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`close not done in ${timeoutMs} ms`)); }, timeoutMs);
    socket.once('close', () => { clearTimeout(timer); resolve(); });
    socket.on('end', () => socket.end());
    socket.resume(); // read the far side's end
    socket.end();
  });
}

async function latency(job: Extract<LoadJob, { t: 'latency' }>): Promise<LatencyResult> {
  const socket = connect(job.port);
  socket.on('error', () => {});
  const request = Buffer.alloc(job.size, 0x6c);
  const samples: number[] = [];
  const stamps: [string, string][] = [];
  const deadline = Date.now() + job.timeoutMs;
  let error: string | undefined;
  try {
    await opened(socket, job.timeoutMs);
    for (let i = 0; i < job.warmup + job.count && Date.now() < deadline; i++) {
      const start = process.hrtime.bigint();
      await exchange(socket, request, Math.max(1, deadline - Date.now()));
      const end = process.hrtime.bigint();
      if (i < job.warmup) continue;
      samples.push(Number(end - start) / 1000);
      if (job.stamps) stamps.push([String(start), String(end)]);
    }
    await closed(socket, 5000);
  } catch (err) {
    error = (err as Error).message;
  } finally {
    socket.destroy();
  }
  const result: LatencyResult = { ok: samples.length === job.count, latency: summarize(samples) };
  if (job.stamps) result.stamps = stamps;
  if (error) result.error = error;
  return result;
}

async function churn(job: Extract<LoadJob, { t: 'churn' }>): Promise<ChurnResult> {
  const request = Buffer.alloc(job.size, 0x63);
  const deadline = Date.now() + job.timeoutMs;
  let started = 0;
  let done = 0;
  let failed = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const loop = async () => {
    while (started < job.total && Date.now() < deadline) {
      started++;
      const socket = connect(job.port);
      socket.on('error', () => {});
      const left = Math.max(1, deadline - Date.now());
      try {
        await opened(socket, left);
        await exchange(socket, request, left);
        await closed(socket, left);
        done++;
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
        socket.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: job.inflight }, loop));
  const result: ChurnResult = { ok: failed === 0 && done === job.total, done, failed, ms: performance.now() - start };
  if (firstError) result.error = firstError;
  else if (done < job.total) result.error = `${done} of ${job.total} in ${job.timeoutMs} ms`;
  return result;
}

// ---- many connections held open ----

const held = new Set<net.Socket>();

async function many(job: Extract<LoadJob, { t: 'many' }>): Promise<ManyResult> {
  const request = Buffer.alloc(job.size, 0x6d);
  const deadline = Date.now() + job.timeoutMs;
  let next = 0;
  let opened_ = 0;
  let exchanged = 0;
  let failed = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const loop = async () => {
    while (next < job.n && Date.now() < deadline) {
      next++;
      const socket = connect(job.port);
      socket.on('error', () => {});
      held.add(socket);
      socket.once('close', () => held.delete(socket));
      const left = Math.max(1, deadline - Date.now());
      try {
        await opened(socket, left);
        opened_++;
        await exchange(socket, request, left);
        exchanged++;
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
        socket.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: job.opening }, loop));
  const result: ManyResult = { ok: exchanged === job.n, opened: opened_, exchanged, failed, ms: performance.now() - start };
  if (firstError) result.error = firstError;
  return result;
}

async function release(job: Extract<LoadJob, { t: 'release' }>): Promise<ReleaseResult> {
  const start = performance.now();
  const sockets = [...held];
  const results = await Promise.allSettled(sockets.map((s) => closed(s, job.timeoutMs)));
  for (const s of sockets) s.destroy();
  held.clear();
  return { closed: results.filter((r) => r.status === 'fulfilled').length, ms: performance.now() - start };
}

serve<LoadJob>(async (job) => {
  switch (job.t) {
    case 'bulk': return bulk(job);
    case 'latency': return latency(job);
    case 'churn': return churn(job);
    case 'many': return many(job);
    case 'release': return release(job);
  }
});
