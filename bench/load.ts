// The load generator, in its own process: it plays the applications on the client side of the tunnel
// (or, for the baselines, talks to the service directly). Every loop is bounded in count and in time.

import net from 'node:net';
import { serve } from './ipc.js';
import { summarize } from './stats.js';
import { patternCheck, patternWriter } from './pattern.js';
import type { BulkResult, ChurnResult, LatencyResult, LoadJob, ManyResult, PingsResult, ReleaseResult, TimedResult } from './jobs.js';

/** One write of an upload (bytes): a full TCP read on the other side. */
const WRITE_BYTES = 64 * 1024;
const block = Buffer.alloc(WRITE_BYTES, 0x62);

/** The largest download the pattern service sends (bytes): a time-bounded run stops long before. */
const PATTERN_DOWN_BYTES = 64 * 1024 * 1024 * 1024;

function connect(port: number, host = '127.0.0.1'): net.Socket {
  const socket = net.connect({ host, port, allowHalfOpen: true });
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

// ---- the lab's time-bounded bulk and ping-pong ----

async function timed(job: Extract<LoadJob, { t: 'timed' }>): Promise<TimedResult> {
  const perSecond: number[] = [];
  const sockets = new Set<net.Socket>();
  const finals: Promise<boolean>[] = [];
  let thisSecond = 0;
  let total = 0;
  let stopping = false;
  let firstError: string | undefined;
  let stopped: () => void = () => {};
  const window = new Promise<void>((resolve) => { stopped = resolve; });
  // a failed stream ends the window: the run is void anyway
  const fail = (message: string) => { if (!stopping) { firstError ??= message; stopped(); } };
  const add = (n: number) => { thisSecond += n; total += n; };
  const start = performance.now();
  let last = start;
  const tick = setInterval(() => {
    const now = performance.now();
    perSecond.push(Math.round((thisSecond / 1e6 / ((now - last) / 1000)) * 1000) / 1000);
    thisSecond = 0;
    last = now;
    if (perSecond.length >= job.seconds) stopped();
  }, 1000);
  const hardStop = setTimeout(stopped, job.seconds * 1000 + 5000);
  const writersStop: (() => void)[] = [];

  for (let i = 0; i < job.streams; i++) {
    const socket = connect(job.port, job.host);
    sockets.add(socket);
    socket.on('error', (err) => fail(`stream ${i}: ${err.message}`));
    socket.on('close', () => fail(`stream ${i}: closed early`));
    if (job.dir === 'down') {
      const check = patternCheck();
      socket.once('connect', () => socket.write(u64(PATTERN_DOWN_BYTES)));
      socket.on('data', (data: Buffer) => {
        if (stopping) return;
        if (!check.push(data)) { fail(`stream ${i}: wrong byte at offset ${check.mismatchAt}`); socket.destroy(); return; }
        add(data.byteLength);
      });
    } else {
      const next = patternWriter();
      let written = 0;
      let acked = 0;
      let pending: Buffer = Buffer.alloc(0);
      let ended = false;
      const write = () => {
        while (!ended) {
          written += WRITE_BYTES;
          if (!socket.write(next(WRITE_BYTES))) { socket.once('drain', write); return; }
        }
      };
      socket.once('connect', () => { socket.write(u64(0)); write(); });
      socket.on('data', (data: Buffer) => {
        pending = pending.byteLength ? Buffer.concat([pending, data]) : data;
        while (pending.byteLength >= 8) {
          const count = Number(pending.readBigUInt64BE(0));
          pending = pending.subarray(8);
          if (!stopping) add(count - acked);
          acked = count;
        }
      });
      writersStop.push(() => {
        ended = true;
        finals.push(new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), job.drainMs);
          socket.once('end', () => { clearTimeout(timer); resolve(acked === written); });
          socket.once('close', () => { clearTimeout(timer); resolve(acked === written); });
          socket.end();
        }));
      });
    }
  }

  await window;
  clearInterval(tick);
  clearTimeout(hardStop);
  stopping = true;
  const ms = performance.now() - start;
  for (const stop of writersStop) stop();
  const drained = job.dir === 'up' ? (await Promise.all(finals)).every(Boolean) : undefined;
  for (const s of sockets) s.destroy();
  const result: TimedResult = { ok: !firstError && perSecond.length === job.seconds, perSecond, bytes: total, ms };
  if (drained !== undefined) result.drained = drained;
  if (firstError) result.error = firstError;
  else if (perSecond.length < job.seconds) result.error = `only ${perSecond.length} of ${job.seconds} seconds measured`;
  return result;
}

async function pings(job: Extract<LoadJob, { t: 'pings' }>): Promise<PingsResult> {
  const start = Date.now();
  const stopStarting = start + job.seconds * 1000;
  const hardStop = start + job.timeoutMs;
  const socket = connect(job.port, job.host);
  socket.on('error', () => {});
  const request = Buffer.alloc(job.size, 0x6c);
  /** every ping's time (µs), warm-up ones included */
  const times: number[] = [];
  let unanswered = 0;
  let error: string | undefined;
  try {
    await opened(socket, Math.max(1, hardStop - Date.now()));
    for (let i = 0; i < job.warmup + job.maxCount && (i === 0 || Date.now() < stopStarting); i++) {
      const t0 = process.hrtime.bigint();
      const left = hardStop - Date.now();
      try {
        await exchange(socket, request, Math.max(1, left));
      } catch (err) {
        // still out at the hard stop: it took at least this long
        if (Date.now() >= hardStop - 5) { times.push(Number(process.hrtime.bigint() - t0) / 1000); unanswered++; break; }
        throw err;
      }
      times.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  } catch (err) {
    error = (err as Error).message;
  } finally {
    socket.destroy();
  }
  // the warm-up pings are left out when others follow; beside a bulk transfer on a lossy path a ping
  // may take seconds, and the warm-up ones are then all there is
  const samples = times.length > job.warmup ? times.slice(job.warmup) : times;
  const result: PingsResult = { ok: !error && samples.length > 0, latency: summarize(samples), unanswered };
  if (error) result.error = error;
  else if (samples.length === 0) result.error = 'no ping answered';
  return result;
}

serve<LoadJob>(async (job) => {
  switch (job.t) {
    case 'bulk': return bulk(job);
    case 'latency': return latency(job);
    case 'churn': return churn(job);
    case 'many': return many(job);
    case 'release': return release(job);
    case 'timed': return timed(job);
    case 'pings': return pings(job);
  }
});
