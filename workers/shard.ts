// A shard: the streams one thread owns. It runs inside a worker thread (see ./entry.ts), or on the
// main thread with `--workers 0`, talking to the dispatcher through a ShardLink either way.
//
// Client side it listens on every forward with reusePort (the kernel spreads connections over the
// shards) and allocates socket ids; host side it dials services. Packets leave in one batch per
// event-loop turn (one thread hop), and only while the main thread has granted credit.

import net from 'node:net';
import { FULL_PACKET_BYTES, decodePackets, isSequenced, peekSid, peekPacketBytes, PacketError, type Packet } from '../src/packet.js';
import { ResetReason } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { socketId, SID_WORKER_SHIFT, SID_HASH_MASK } from '../src/sid.js';
import type { PacketBatch, ShardInit, ShardLink, ShardStats, ToShard } from '../src/messages.js';
import { runStream, type StreamHandle } from './handler.js';

/** A closed client id is not reused for this long (ms): the channel is unordered, so a late RESET or
 *  FIN of the old stream may still be on its way. Longer than the host's pendingMs. */
const QUARANTINE_MS = 15000;
/** The host drops packets for a stream it has just reset for this long (ms) instead of opening a
 *  pending stream for them. */
const TOMBSTONE_MS = 10000;
/** Connections accepted while no peer is up, per shard; past it new ones are closed at once. */
const MAX_WAITING_CONNECTIONS = 1024;
/** Full-size packet buffers kept for reuse (32 x 64 KiB per shard); the rest become garbage. */
const MAX_SPARE_BUFFERS = 32;

const key = (peer: number, sid: number) => peer * 0x1_0000_0000 + sid;

export function runShard(init: ShardInit, link: ShardLink): Promise<void> {
  const { index, role, config } = init;
  const log = createLogger(`${role}[${index}]`, init.logLevel);
  const streams = new Map<number, StreamHandle>();
  const tombstones = new Map<number, number>(); // key -> expiry (ms), insertion-ordered
  const quarantine = new Map<number, number>(); // client sid -> expiry (ms)
  const servers: net.Server[] = [];
  const peersUp = new Map<number, number>(); // peer -> its receive window (our credit per stream)
  const waiting = new Map<net.Socket, () => void>(); // client: accepted during an outage -> start it
  let credit = config.workerCreditBytes;
  const spare: ArrayBuffer[] = []; // sent full-size packets the dispatcher handed back
  let budgetWaiters: (() => void)[] = [];
  let outbox = new Map<number, { bufs: ArrayBuffer[]; sids: number[] }>();
  let closedOut = new Map<number, number[]>();
  let flushScheduled = false;
  let stopping = false;
  let resolveDone: () => void = () => {};

  const stats: ShardStats = {
    index, streams: 0, opened: 0, closed: 0, resets: {}, lateDropped: 0,
    peakStreamBufferedBytes: 0, bytesIn: 0, bytesOut: 0,
  };

  function scheduleFlush(): void {
    if (flushScheduled) return;
    flushScheduled = true;
    // After this poll phase's callbacks: idle, that is a few µs; busy, every stream that read in the
    // phase shares one thread hop and (small packets) one DataChannel message. Measured with 16
    // connections churning: a microtask flush when idle sent 4x the messages for no latency gained.
    setImmediate(flush);
  }

  function flush(): void {
    flushScheduled = false;
    const batches = outbox;
    const closed = closedOut;
    outbox = new Map();
    closedOut = new Map();
    if (batches.size === 0 && closed.size === 0) return;
    const pkts: PacketBatch[] = [];
    const transfer: ArrayBuffer[] = [];
    for (const [peer, { bufs, sids }] of batches) {
      pkts.push({ peer, bufs, sids });
      transfer.push(...bufs);
    }
    link.post({ t: 'turn', pkts, closed: [...closed].map(([peer, sids]) => ({ peer, sids })) }, transfer);
  }

  function post(peer: number, sid: number, message: Uint8Array): void {
    credit -= message.byteLength;
    let batch = outbox.get(peer);
    if (!batch) outbox.set(peer, (batch = { bufs: [], sids: [] }));
    // small packets of the batch (CONNECT + first DATA, last DATA + FIN, many streams' WINDOWs) are
    // coalesced into one DataChannel message by the dispatcher
    batch.bufs.push(message.buffer as ArrayBuffer);
    batch.sids.push(sid);
    scheduleFlush();
  }

  function released(peer: number, sid: number): void {
    let list = closedOut.get(peer);
    if (!list) closedOut.set(peer, (list = []));
    list.push(sid);
    scheduleFlush();
  }

  function countReset(reason: string): void {
    const code = reason.replace(/^PEER_RESET: /, 'PEER_RESET:').split(':')[0] ?? reason;
    stats.resets[code] = (stats.resets[code] ?? 0) + 1;
  }

  function dial(service: string): net.Socket | string {
    const target = Object.hasOwn(init.services, service) ? init.services[service] : undefined;
    if (!target) return `service '${service.slice(0, 64)}' is not exposed`;
    return net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
  }

  function open(peer: number, sid: number, socket: net.Socket | null, service: string | null): StreamHandle {
    const k = key(peer, sid);
    stats.opened++;
    stats.streams++;
    const handle = runStream({
      peer, sid, config, log,
      sendWindow: peersUp.get(peer) ?? config.windowBytes,
      send: (message) => post(peer, sid, message),
      spare: (bytes) => (bytes === FULL_PACKET_BYTES ? spare.pop() : undefined),
      budget: () => credit > 0,
      onBudget: (resume) => { budgetWaiters.push(resume); },
      dial,
      done: (reason, sentReset) => {
        streams.delete(k);
        stats.streams--;
        stats.closed++;
        const now = Date.now();
        if (reason !== null) {
          countReset(reason);
          log.info('stream reset', { peer, sid: sid.toString(16), reason, by: sentReset ? 'us' : 'peer' });
          if (role === 'host') tombstones.set(k, now + TOMBSTONE_MS);
        } else {
          log.debug('stream closed', { peer, sid: sid.toString(16) });
        }
        if (role === 'client') quarantine.set(sid, now + QUARANTINE_MS);
        released(peer, sid);
      },
      count: (buffered, bytesIn, bytesOut) => {
        stats.bytesIn += bytesIn;
        stats.bytesOut += bytesOut;
        if (buffered > stats.peakStreamBufferedBytes) stats.peakStreamBufferedBytes = buffered;
      },
    }, socket, service);
    streams.set(k, handle);
    return handle;
  }

  function expire(map: Map<number, number>, now: number): void {
    for (const [k, until] of map) {
      if (until > now) break; // insertion order is expiry order
      map.delete(k);
    }
  }

  // ---- packets from the peer ----

  function onPackets(peer: number, bufs: ArrayBuffer[]): void {
    for (const buf of bufs) {
      const message = new Uint8Array(buf);
      let packets: Packet[];
      try {
        packets = decodePackets(message);
      } catch {
        packets = decodeAroundFaults(peer, message);
      }
      for (const p of packets) {
        const k = key(peer, p.sid);
        let stream = streams.get(k);
        if (!stream) {
          if (role === 'host' && isSequenced(p.type) && peersUp.has(peer)) {
            expire(tombstones, Date.now());
            if (tombstones.has(k)) {
              stats.lateDropped++;
              released(peer, p.sid);
              continue;
            }
            stream = open(peer, p.sid, null, null);
          } else {
            // late packets for a stream that is gone (a WINDOW after FIN, DATA after our RESET)
            stats.lateDropped++;
            if (role === 'host') released(peer, p.sid);
            continue;
          }
        }
        stream.packet(p);
      }
    }
  }

  /** A message with a bad packet: the packets before and after it still count (they may be other
   *  streams'); the one at fault resets its own stream. */
  function decodeAroundFaults(peer: number, message: Uint8Array): Packet[] {
    const good: Packet[] = [];
    for (let offset = 0; offset < message.byteLength;) {
      const bytes = peekPacketBytes(message, offset);
      const piece = message.subarray(offset, bytes < 0 ? message.byteLength : Math.min(message.byteLength, offset + bytes));
      offset += piece.byteLength;
      try {
        good.push(...decodePackets(piece));
      } catch (err) {
        const code = err instanceof PacketError ? err.code : 'PACKET_INVALID';
        stats.resets[code] = (stats.resets[code] ?? 0) + 1;
        const sid = peekSid(piece);
        log.warn('bad packet', { peer, code, detail: (err as Error).message, sid: sid >= 0 ? sid.toString(16) : undefined });
        const stream = sid >= 0 ? streams.get(key(peer, sid)) : undefined;
        if (stream) stream.abort(`${ResetReason.BAD_PACKET}: ${code}`, true);
        else if (sid >= 0) released(peer, sid);
      }
    }
    return good;
  }

  function onCredit(bytes: number, buffers: ArrayBuffer[] | undefined): void {
    credit += bytes;
    if (buffers) for (const b of buffers) if (spare.length < MAX_SPARE_BUFFERS) spare.push(b);
    if (credit <= 0 || budgetWaiters.length === 0) return;
    const waiters = budgetWaiters;
    budgetWaiters = [];
    for (const resume of waiters) resume();
  }

  function peerDown(peer: number, reason: string): void {
    peersUp.delete(peer);
    for (const [k, stream] of streams) {
      if (Math.floor(k / 0x1_0000_0000) === peer) stream.abort(`${ResetReason.PEER_GONE}: ${reason}`, false);
    }
    for (const k of tombstones.keys()) if (Math.floor(k / 0x1_0000_0000) === peer) tombstones.delete(k);
  }

  // ---- client: accepted connections become streams ----

  function accept(socket: net.Socket, service: string): void {
    if (stopping) {
      socket.destroy();
      return;
    }
    if (!peersUp.has(0)) {
      if (waiting.size >= MAX_WAITING_CONNECTIONS) {
        log.warn('no peer: connection closed', { service });
        socket.destroy();
        return;
      }
      const timer = setTimeout(() => {
        waiting.delete(socket);
        log.warn('no peer within the wait: connection closed', { service, waitedMs: config.outageWaitMs });
        socket.destroy();
      }, config.outageWaitMs);
      socket.once('close', () => { waiting.delete(socket); clearTimeout(timer); });
      waiting.set(socket, () => {
        clearTimeout(timer);
        waiting.delete(socket);
        if (!socket.destroyed) accept(socket, service);
      });
      return;
    }
    const now = Date.now();
    expire(quarantine, now);
    let sid = socketId(index, socket.remoteAddress ?? '', socket.remotePort ?? 0, socket.localAddress ?? '', socket.localPort ?? 0);
    // linear probing past ids still in use or quarantined; the worker index stays in the top bits
    for (let i = 0; streams.has(key(0, sid)) || quarantine.has(sid); i++) {
      if (i > SID_HASH_MASK) {
        log.error('socket id space exhausted', { streams: streams.size });
        socket.destroy();
        return;
      }
      sid = ((index << SID_WORKER_SHIFT) | ((sid + 1) & SID_HASH_MASK)) >>> 0;
    }
    open(0, sid, socket, service);
  }

  function listen(): void {
    for (const forward of init.forwards) {
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => accept(socket, forward.service));
      server.on('error', (err) => link.post({ t: 'listening', forward, error: err.message }));
      server.listen({ host: forward.host, port: forward.port, reusePort: true }, () => link.post({ t: 'listening', forward }));
      servers.push(server);
    }
  }

  function shutdown(): void {
    stopping = true;
    for (const server of servers) server.close();
    for (const socket of waiting.keys()) socket.destroy();
    for (const stream of [...streams.values()]) stream.abort(ResetReason.SHUTDOWN, true);
    flush();
    link.close();
    resolveDone();
  }

  link.onMessage((msg: ToShard) => {
    switch (msg.t) {
      case 'turn':
        for (const { peer, bufs } of msg.pkts) onPackets(peer, bufs);
        if (msg.credit > 0 || msg.spare) onCredit(msg.credit, msg.spare);
        break;
      case 'peer-up':
        peersUp.set(msg.peer, msg.sendWindow);
        if (role === 'client') {
          for (const start of [...waiting.values()]) start();
        }
        break;
      case 'peer-down': peerDown(msg.peer, msg.reason); break;
      case 'stats': link.post({ t: 'stats', stats: { ...stats, resets: { ...stats.resets } } }); break;
      case 'shutdown': shutdown(); break;
    }
  });

  if (role === 'client') listen();
  return new Promise((resolve) => { resolveDone = resolve; });
}
