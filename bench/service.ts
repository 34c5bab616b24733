// The services behind the tunnel, in their own process: a sink, a source and an echo on loopback.
//
//   sink    counts what arrives; writes back the running count (u64 BE) after every ACK_EVERY_BYTES
//           and once more at the end, then ends. The load generator knows its upload has crossed the
//           whole tunnel when the last count equals what it sent.
//   source  reads a u64 BE byte count, sends that many bytes (under backpressure), then ends.
//   echo    sends back what it reads; ends once the other side has ended and all is echoed.

import net from 'node:net';
import { serve } from './ipc.js';
import type { ServiceJob, ServicePorts } from './jobs.js';

/** How often the sink reports progress (bytes): rare enough to cost nothing, often enough for a timeout's partial figure. */
const ACK_EVERY_BYTES = 1024 * 1024;
/** One write of the source (bytes): a full TCP read on the other side. */
const SOURCE_CHUNK_BYTES = 64 * 1024;
/** The largest count the source accepts (bytes): a bound, not a limit anyone should meet. */
const SOURCE_MAX_BYTES = 64 * 1024 * 1024 * 1024;

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

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // a deep backlog: the many-connections scenario opens thousands through the host at once
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

const ports: Promise<ServicePorts> = Promise.all([listen(sink), listen(source), listen(echo)])
  .then(([s, o, e]) => ({ sink: s, source: o, echo: e }));

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
