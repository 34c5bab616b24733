// The services behind the tunnel, in their own process: a sink, a source and an echo on loopback.
//
//   sink    counts what arrives; writes back the running count (u64 BE) after every ACK_EVERY_BYTES
//           and once more at the end, then ends. The load generator knows its upload has crossed the
//           whole tunnel when the last count equals what it sent.
//   source  reads a u64 BE byte count, sends that many bytes (under backpressure), then ends.
//   echo    sends back what it reads; ends once the other side has ended and all is echoed.
//   pattern for time-bounded runs (the lab), checked byte for byte (pattern.ts). Reads a u64 BE count:
//           N > 0: sends the first N bytes of the pattern, then ends (a download);
//           0:     reads the pattern, checking every byte, and writes back the running count (u64 BE)
//                  every ACK_INTERVAL_MS while it grows and once more at the end, then ends (an upload;
//                  a wrong byte resets the connection, so the sender never sees its final count).
//
// `--host ADDR` listens there instead of 127.0.0.1 (the lab: 0.0.0.0, so a forwarded port reaches it).

import net from 'node:net';
import { parseArgs } from 'node:util';
import { serve } from './ipc.js';
import { patternCheck, patternWriter } from './pattern.js';
import type { ServiceJob, ServicePorts } from './jobs.js';

/** How often the sink reports progress (bytes): rare enough to cost nothing, often enough for a timeout's partial figure. */
const ACK_EVERY_BYTES = 1024 * 1024;
/** One write of the source (bytes): a full TCP read on the other side. */
const SOURCE_CHUNK_BYTES = 64 * 1024;
/** The largest count the source accepts (bytes): a bound, not a limit anyone should meet. */
const SOURCE_MAX_BYTES = 64 * 1024 * 1024 * 1024;
/** How often the pattern service reports an upload's count (ms): fine enough for a per-second series at any rate. */
const ACK_INTERVAL_MS = 100;

const { values: flags } = parseArgs({ options: { host: { type: 'string' } }, strict: true });
const LISTEN_HOST = flags.host ?? '127.0.0.1';

const sockets = new Set<net.Socket>();
const chunk = Buffer.alloc(SOURCE_CHUNK_BYTES, 0x61);

function track(socket: net.Socket): void {
  sockets.add(socket);
  socket.setNoDelay(true);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => socket.destroy());
}

function count(n: number): Buffer {
  const b = Buffer.allocUnsafeSlow(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

const sink = net.createServer({ allowHalfOpen: true }, (socket) => {
  track(socket);
  let received = 0;
  let acked = 0;
  socket.on('data', (data: Buffer) => {
    received += data.byteLength;
    if (received - acked >= ACK_EVERY_BYTES) {
      acked = received;
      socket.write(count(received));
    }
  });
  socket.on('end', () => socket.end(count(received)));
});

const source = net.createServer({ allowHalfOpen: true }, (socket) => {
  track(socket);
  let request = Buffer.alloc(0);
  let started = false;
  const onData = (data: Buffer) => {
    if (started) return;
    request = Buffer.concat([request, data]);
    if (request.byteLength < 8) return;
    started = true;
    const total = Number(request.readBigUInt64BE(0));
    if (total > SOURCE_MAX_BYTES) { socket.destroy(); return; }
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(SOURCE_CHUNK_BYTES, total - sent);
        sent += n;
        if (!socket.write(n === SOURCE_CHUNK_BYTES ? chunk : chunk.subarray(0, n))) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
    };
    pump();
  };
  socket.on('data', onData);
  socket.on('end', () => { if (!started) socket.end(); });
});

const echo = net.createServer({ allowHalfOpen: true }, (socket) => {
  track(socket);
  socket.pipe(socket);
});

const pattern = net.createServer({ allowHalfOpen: true }, (socket) => {
  track(socket);
  let request = Buffer.alloc(0);
  const onRequest = (data: Buffer) => {
    request = Buffer.concat([request, data]);
    if (request.byteLength < 8) return;
    socket.off('data', onRequest);
    const total = Number(request.readBigUInt64BE(0));
    if (total > SOURCE_MAX_BYTES) { socket.destroy(); return; }
    if (total > 0) sendPattern(socket, total);
    else checkPattern(socket, request.subarray(8));
  };
  socket.on('data', onRequest);
  socket.on('end', () => { if (request.byteLength < 8) socket.end(); });
});

function sendPattern(socket: net.Socket, total: number): void {
  const next = patternWriter();
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      const n = Math.min(SOURCE_CHUNK_BYTES, total - sent);
      sent += n;
      if (!socket.write(next(n))) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  pump();
}

function checkPattern(socket: net.Socket, first: Buffer): void {
  const check = patternCheck();
  let acked = 0;
  const push = (data: Buffer) => { if (!check.push(data)) socket.destroy(); };
  const tick = setInterval(() => {
    if (check.offset === acked) return;
    acked = check.offset;
    socket.write(count(acked));
  }, ACK_INTERVAL_MS);
  socket.on('close', () => clearInterval(tick));
  if (first.byteLength) push(first);
  socket.on('data', push);
  socket.on('end', () => { clearInterval(tick); socket.end(count(check.offset)); });
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // a deep backlog: the many-connections scenario opens thousands through the host at once
    server.listen({ host: LISTEN_HOST, port: 0, backlog: 4096 }, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

const ports: Promise<ServicePorts> = Promise.all([listen(sink), listen(source), listen(echo), listen(pattern)])
  .then(([s, o, e, p]) => ({ sink: s, source: o, echo: e, pattern: p }));

// The tunnel's host and client are plain CLI processes without an IPC channel, so they cannot notice
// that the harness died; this process can (its channel disconnects) and ends them.
const watched = new Set<number>();
process.on('disconnect', () => {
  for (const pid of watched) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

serve<ServiceJob>(async (job) => {
  switch (job.t) {
    case 'ports': return ports;
    case 'count': return { open: sockets.size };
    case 'watch': watched.add(job.pid); return {};
    case 'unwatch': watched.delete(job.pid); return {};
  }
});
