// A shard: the streams one worker owns. It runs inside a worker thread (see ./entry.ts), or on the
// main thread with `--workers 0`, talking to the dispatcher through a ShardLink either way.
//
// Host side it dials services for the streams the dispatcher routes to it; client side it listens
// on the forwards (./listeners.ts) and gives out stream ids. Packets leave in one batch per
// event-loop turn (one thread hop), and only while the shard's hop allowance lasts: the main thread
// returns it once the bytes are on the DataChannel.

import net from 'node:net';
import { FULL_PACKET_BYTES, PacketType, encodePacket, u32Payload, decodePackets, isSequenced, peekStreamId, peekPacketBytes, PacketError, type Packet } from '../src/shared/packet.js';
import { ResetReason } from '../src/shared/reset-reason.js';
import { createLogger } from '../src/shared/log.js';
import { onceATurn } from '../src/shared/turn.js';
import type { PacketBatch, ShardInit, ShardLink, ShardStats, ToShard } from '../src/shared/thread-messages.js';
import type { WindowOffer } from '../src/shared/limits.js';
import { runStream, type StreamHandle } from './handler.js';
import { startListeners } from './listeners.js';
import { createServiceCounters, loopDelayMonitor, NO_SERVICE } from './service-counters.js';

/** A closed client id is not reused for this long (ms): the channel is unordered, so a late RESET or
 *  FIN of the old stream may still be on its way. Longer than the host's pendingMs. */
const QUARANTINE_MS = 15000;
/** The host drops packets for a stream it has just reset for this long (ms) instead of opening a
 *  pending stream for them. */
const TOMBSTONE_MS = 10000;
/** A stream whose reads are smaller than this (bytes) goes on reading when the shard's hop
 *  allowance is spent: it is interactive, its packets are small and its window bounds them. Only bulk
 *  readers wait, so the allowance a download fills cannot hold up a keystroke (in the lab, a ping
 *  beside a download waited for the download's allowance to come back). */
const SMALL_READ_BYTES = 16 * 1024;
/** Full-size packet buffers kept for reuse (32 x 64 KiB per shard); the rest become garbage. */
const MAX_SPARE_BUFFERS = 32;

/** The round-trip time assumed until the keepalive has measured one (ms). */
const DEFAULT_RTT_MS = 50;

const key = (peer: number, id: number) => peer * 0x1_0000_0000 + id;

/** What the shard knows of a connected peer. */
interface PeerUp {
  /** its per-stream receive window: our streams' send window */
  sendWindow: WindowOffer;
  rttMs: number;
  /** how much our streams' receive windows have grown beyond their start, together */
  grown: number;
  /** the path is down; the streams wait for it to come back */
  suspended?: boolean;
}
const peerOfKey = (k: number) => Math.floor(k / 0x1_0000_0000);

export function runShard(init: ShardInit, link: ShardLink): Promise<void> {
  const { index, role, config } = init;
  const log = createLogger(`${role}[${index}]`, init.logLevel, undefined, init.logFormat);
  let services = init.services; // a reload replaces it: new dials see the new set
  const streams = new Map<number, StreamHandle>();
  const tombstones = new Map<number, number>(); // key -> expiry (ms), insertion-ordered
  const quarantine = new Map<number, number>(); // client stream id -> expiry (ms)
  const peersUp = new Map<number, PeerUp>();
  const windowBudget = Math.floor(config.windowBudgetBytes / Math.max(1, init.shards)); // bytes per peer
  let allowance = config.hopAllowanceBytes;
  const spare: ArrayBuffer[] = []; // sent full-size packets the dispatcher handed back
  let allowanceWaiters: (() => void)[] = [];
  let outbox = new Map<number, PacketBatch>();
  let closedOut = new Map<number, number[]>();
  let resolveDone: () => void = () => {};
  const scheduleFlush = onceATurn(flush);

  const stats: Omit<ShardStats, 'services' | 'loopDelay'> = {
    index, streams: 0, opened: 0, closed: 0, resets: {}, lateDropped: 0,
    peakStreamBufferedBytes: 0, bytesIn: 0, bytesOut: 0, startedAt: Date.now(),
  };
  const perService = createServiceCounters();
  const loopDelay = loopDelayMonitor(init.measureLoop === true);

  const listeners = role === 'client' ? startListeners({
    index, forwards: init.forwards, outageWaitMs: config.outageWaitMs, link, log,
    peerUp: () => peersUp.has(0) && peersUp.get(0)?.suspended !== true,
    idTaken: (id) => {
      expire(quarantine, Date.now());
      return streams.has(key(0, id)) || quarantine.has(id);
    },
    open: (socket, id, service) => open(0, id, socket, service),
  }) : null;

  /** Everything the streams queued this turn, to the main thread in one message. */
  function flush(): void {
    if (outbox.size === 0 && closedOut.size === 0) return;
    const pkts = [...outbox.values()];
    const closed = [...closedOut].map(([peer, ids]) => ({ peer, ids }));
    outbox = new Map();
    closedOut = new Map();
    link.post({ t: 'turn', pkts, closed }, pkts.flatMap((b) => b.bufs));
  }

  function post(peer: number, id: number, message: Uint8Array): void {
    allowance -= message.byteLength;
    let batch = outbox.get(peer);
    if (!batch) outbox.set(peer, (batch = { peer, bufs: [], ids: [] }));
    // small packets of the batch (CONNECT + first DATA, last DATA + FIN, many streams' WINDOWs) are
    // coalesced into one DataChannel message by the dispatcher
    batch.bufs.push(message.buffer as ArrayBuffer);
    batch.ids.push(id);
    scheduleFlush();
  }

  function released(peer: number, id: number): void {
    let list = closedOut.get(peer);
    if (!list) closedOut.set(peer, (list = []));
    list.push(id);
    scheduleFlush();
  }

  function countReset(reason: string): string {
    const code = reason.replace(/^PEER_RESET: /, 'PEER_RESET:').split(':')[0] ?? reason;
    stats.resets[code] = (stats.resets[code] ?? 0) + 1;
    return code;
  }

  function target(service: string) {
    return Object.hasOwn(services, service) ? services[service] : undefined;
  }

  function dial(service: string): net.Socket | string {
    const t = target(service);
    if (!t) return `service '${service.slice(0, 64)}' is not exposed`;
    return net.connect({ host: t.host, port: t.port, allowHalfOpen: true });
  }

  function open(peer: number, id: number, socket: net.Socket | null, service: string | null): StreamHandle {
    const k = key(peer, id);
    stats.opened++;
    stats.streams++;
    // the stream's service record (host: once its CONNECT names one); bytes before that wait in `early`
    let svc = service !== null ? perService.record(service) : null;
    let early = 0;
    if (svc) perService.opened(svc);
    const handle = runStream({
      streamId: id, config,
      sendWindow: peersUp.get(peer)?.sendWindow ?? { initial: config.initialWindowBytes, max: config.windowBytes },
      rttMs: () => peersUp.get(peer)?.rttMs ?? DEFAULT_RTT_MS,
      grow: (bytes) => {
        const up = peersUp.get(peer);
        if (!up) return 0;
        const granted = Math.max(0, Math.min(bytes, windowBudget - up.grown));
        up.grown += granted;
        return granted;
      },
      release: (bytes) => {
        const up = peersUp.get(peer);
        if (up) up.grown = Math.max(0, up.grown - bytes);
      },
      send: (message) => post(peer, id, message),
      spare: (bytes) => (bytes === FULL_PACKET_BYTES ? spare.pop() : undefined),
      mayPost: (lastRead) => allowance > 0 || (lastRead !== undefined && lastRead < SMALL_READ_BYTES),
      onAllowance: (resume) => { allowanceWaiters.push(resume); },
      dial: (name) => {
        const socket = dial(name);
        svc = perService.record(typeof socket === 'string' ? NO_SERVICE : name);
        perService.opened(svc);
        svc.bytesIn += early;
        return socket;
      },
      done: (reason, sentReset) => {
        streams.delete(k);
        stats.streams--;
        stats.closed++;
        if (!svc) perService.opened((svc = perService.record(NO_SERVICE)));
        const now = Date.now();
        perService.ended(svc, reason === null ? null : countReset(reason), reason);
        if (reason !== null) {
          log.info('stream reset', { peer, stream: id.toString(16), reason, by: sentReset ? 'us' : 'peer' });
          if (role === 'host') tombstones.set(k, now + TOMBSTONE_MS);
        } else {
          log.debug('stream closed', { peer, stream: id.toString(16) });
        }
        if (role === 'client') quarantine.set(id, now + QUARANTINE_MS);
        released(peer, id);
      },
      count: (buffered, bytesIn, bytesOut) => {
        stats.bytesIn += bytesIn;
        stats.bytesOut += bytesOut;
        if (svc) {
          svc.bytesIn += bytesIn;
          svc.bytesOut += bytesOut;
        } else {
          early += bytesIn;
        }
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
        onFaultyMessage(peer, message);
        continue;
      }
      for (const p of packets) streamFor(peer, p)?.packet(p);
    }
  }

  /** The stream a packet belongs to; the host opens a pending stream for a new id. */
  function streamFor(peer: number, p: Packet): StreamHandle | undefined {
    const k = key(peer, p.streamId);
    const stream = streams.get(k);
    if (stream) return stream;
    if (p.type === PacketType.RESUME) {
      unknownResume(peer, p.seq, p.streamId);
      return undefined;
    }
    // a TWICE copy never opens one: it may be the late copy of a stream that just ended here (the
    // dispatcher drops those once it has released the route; this covers the turn before that)
    if (role === 'host' && isSequenced(p.type) && !p.twice && peersUp.has(peer)) {
      expire(tombstones, Date.now());
      if (!tombstones.has(k)) return open(peer, p.streamId, null, null);
    }
    // late packets for a stream that is gone (a WINDOW after FIN, DATA after our RESET)
    stats.lateDropped++;
    if (role === 'host') released(peer, p.streamId);
    return undefined;
  }

  /** The peer resumes a stream we do not have. A host that never got the stream's CONNECT (lost
   *  with the old path) answers as a new stream would, and the CONNECT comes again; otherwise the
   *  stream ended here during the outage: RESET. */
  function unknownResume(peer: number, next: number, id: number): void {
    expire(tombstones, Date.now());
    if (role === 'host' && next === 0 && !tombstones.has(key(peer, id))) {
      post(peer, id, encodePacket(PacketType.RESUME, id, 0, u32Payload(config.initialWindowBytes)));
    } else {
      post(peer, id, encodePacket(PacketType.RESET, id, 0, Buffer.from(`${ResetReason.PEER_GONE}: stream not found on resume`)));
    }
    released(peer, id);
  }

  /** A message with a bad packet: the packets before and after it still count, in order (they may be
   *  other streams'); the one at fault resets its own stream. */
  function onFaultyMessage(peer: number, message: Uint8Array): void {
    for (let offset = 0; offset < message.byteLength;) {
      const bytes = peekPacketBytes(message, offset);
      const piece = message.subarray(offset, bytes < 0 ? message.byteLength : Math.min(message.byteLength, offset + bytes));
      offset += piece.byteLength;
      let packets: Packet[];
      try {
        packets = decodePackets(piece);
      } catch (err) {
        const code = err instanceof PacketError ? err.code : 'PACKET_INVALID';
        stats.resets[code] = (stats.resets[code] ?? 0) + 1;
        const id = peekStreamId(piece);
        log.warn('bad packet', { peer, code, detail: (err as Error).message, stream: id >= 0 ? id.toString(16) : undefined });
        const stream = id >= 0 ? streams.get(key(peer, id)) : undefined;
        if (stream) stream.abort(`${ResetReason.BAD_PACKET}: ${code}`, true);
        else if (id >= 0) released(peer, id);
        continue;
      }
      for (const p of packets) streamFor(peer, p)?.packet(p);
    }
  }

  function onAllowance(bytes: number, buffers: ArrayBuffer[] | undefined): void {
    allowance += bytes;
    if (buffers) for (const b of buffers) if (spare.length < MAX_SPARE_BUFFERS) spare.push(b);
    if (allowance <= 0 || allowanceWaiters.length === 0) return;
    const waiters = allowanceWaiters;
    allowanceWaiters = [];
    for (const resume of waiters) resume();
  }

  function peerDown(peer: number, reason: string): void {
    peersUp.delete(peer);
    for (const [k, stream] of streams) {
      if (peerOfKey(k) === peer) stream.abort(`${ResetReason.PEER_GONE}: ${reason}`, false);
    }
    for (const k of tombstones.keys()) if (peerOfKey(k) === peer) tombstones.delete(k);
  }

  function peerSuspend(peer: number, reason: string): void {
    const up = peersUp.get(peer);
    if (up) up.suspended = true;
    let n = 0;
    for (const [k, stream] of streams) if (peerOfKey(k) === peer) { stream.suspend(); n++; }
    if (n > 0) log.info('path lost; streams wait for it', { peer, streams: n, reason });
  }

  function peerResume(peer: number, sendWindow: WindowOffer): void {
    const up = peersUp.get(peer);
    peersUp.set(peer, { sendWindow, rttMs: up?.rttMs ?? DEFAULT_RTT_MS, grown: up?.grown ?? 0 });
    let n = 0;
    for (const [k, stream] of [...streams]) if (peerOfKey(k) === peer) { stream.resume(); n++; }
    if (n > 0) log.info('path back; resuming streams', { peer, streams: n });
    listeners?.peerUp();
  }

  function shutdown(): void {
    loopDelay.stop();
    listeners?.stop();
    for (const stream of [...streams.values()]) stream.abort(ResetReason.SHUTDOWN, true);
    flush();
    link.close();
    resolveDone();
  }

  link.onMessage((msg: ToShard) => {
    switch (msg.t) {
      case 'turn':
        for (const { peer, bufs } of msg.pkts) onPackets(peer, bufs);
        if (msg.allowance > 0 || msg.spare) onAllowance(msg.allowance, msg.spare);
        break;
      case 'peer-up':
        peersUp.set(msg.peer, { sendWindow: msg.sendWindow, rttMs: peersUp.get(msg.peer)?.rttMs ?? DEFAULT_RTT_MS, grown: peersUp.get(msg.peer)?.grown ?? 0 });
        listeners?.peerUp();
        break;
      case 'peer-down': peerDown(msg.peer, msg.reason); break;
      case 'peer-suspend': peerSuspend(msg.peer, msg.reason); break;
      case 'peer-resume': peerResume(msg.peer, msg.sendWindow); break;
      case 'peer-rtt': {
        const up = peersUp.get(msg.peer);
        if (up) up.rttMs = msg.rttMs;
        break;
      }
      case 'stats':
        link.post({ t: 'stats', stats: { ...stats, resets: { ...stats.resets }, services: perService.snapshot(), loopDelay: loopDelay.read() } });
        break;
      case 'services': services = msg.services; break;
      case 'forwards': listeners?.update(msg.forwards); break;
      case 'log-level': log.setLevel?.(msg.level); break;
      case 'shutdown': shutdown(); break;
    }
  });

  return new Promise((resolve) => { resolveDone = resolve; });
}
