// The dispatcher: on the main thread, between the DataChannels and the shards. It only routes. Its
// state is a table (peer, socket id) -> shard, the DataChannel's send queue while the channel is over
// its high-water mark, and the credit each shard is owed. It holds no stream state.
//
//   DataChannel ──message──▶ route each packet by sid ──batch per turn──▶ shard   (no backpressure
//                                                    possible here: the per-stream window bounds it)
//   shard ──turn──▶ large packets now, a turn's small ones (all shards') as one message;
//                   send if bufferedAmount < high mark, else queue ──▶ DataChannel
//         ◀─turn─── credit once the bytes are handed to the DataChannel, and the sent 64 KiB
//                   buffers for reuse (with the next packets, or alone past 1/8 of the budget)
//
// A shard without credit stops reading its TCP sockets, so a full DataChannel pushes back all the
// way to the applications.

import type { DataChannel } from 'node-datachannel';
import { FULL_PACKET_BYTES, HEADER_BYTES, PacketType, encodePacket, joinPackets, peekPacketBytes } from './packet.js';
import { ResetReason } from './errors.js';
import { hostWorkerFor, workerOfSid } from './sid.js';
import type { DataPlaneConfig } from './config.js';
import type { FromShard, PacketBatch, ToShard } from './messages.js';
import type { Logger } from './log.js';
import { trace, TraceEvent } from './trace.js';

/** The part of node-datachannel's DataChannel the dispatcher uses (a fake in unit tests). */
export type Channel = Pick<DataChannel, 'sendMessageBinary' | 'bufferedAmount' | 'setBufferedAmountLowThreshold' | 'onBufferedAmountLow' | 'onMessage' | 'isOpen'>;

/** How the dispatcher reaches a shard: a MessagePort, or a direct call with `--workers 0`. */
export type ShardPost = (msg: ToShard, transfer?: ArrayBuffer[]) => void;

export interface DispatcherOptions {
  role: 'host' | 'client';
  config: DataPlaneConfig;
  shards: ShardPost[];
  log: Logger;
  /** The peer stopped answering keepalives or its channel failed. */
  onPeerDead(peer: number, reason: string): void;
}

export interface DispatcherCounters {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** messages dropped quietly: no route, late for a closed stream, or too short to route */
  dropped: number;
  /** streams refused because the peer had too many open */
  refused: number;
  /** most bytes ever queued waiting for the DataChannel to drain */
  peakQueuedBytes: number;
}

/** A DataChannel message and whose bytes it carries: one shard's, or (`mix`, bytes per shard) several
 *  shards' small packets coalesced. The bytes are credited back once the message is sent. */
interface Outgoing { message: Uint8Array; shard: number; mix?: number[] }

interface PeerState {
  channel: Channel;
  routes: Map<number, number>;
  sendWindow: number;
  /** small packets of this turn, every shard's, waiting to leave as one message at the end of the turn */
  small: Outgoing[];
  queue: Outgoing[];
  queuedBytes: number;
  lastSeen: number;
}

/** A turn's small packets (every shard's, many streams) leave as one DataChannel message up to this
 *  size (bytes): each message costs the transport tens of microseconds whatever its size. */
const COALESCE_MAX_BYTES = 16 * 1024;

/** Full-size packet buffers handed back to a shard per turn, at most: sendMessageBinary copies, so a
 *  sent buffer can carry the shard's next packet instead of becoming garbage (64 KiB ArrayBuffers
 *  made the main thread's garbage collector the largest cost of a bulk transfer). */
const SPARE_PER_TURN = 64;

/** Each postMessage wakes the shard's thread (~25 µs of CPU here); see endOfTurn. */
const CREDIT_ALONE_FRACTION = 8;

/** Polling fallback in case onBufferedAmountLow is missed (ms). */
const DRAIN_POLL_MS = 20;

export function createDispatcher(options: DispatcherOptions) {
  const { role, config, shards, log } = options;
  const peers = new Map<number, PeerState>();
  const owed = new Array<number>(shards.length).fill(0);
  const spare = shards.map((): ArrayBuffer[] => []);
  const inbox = shards.map(() => new Map<number, ArrayBuffer[]>());
  const counters: DispatcherCounters = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0, refused: 0, peakQueuedBytes: 0 };
  let turnScheduled = false;
  let drainTimer: NodeJS.Timeout | null = null;

  const keepalive = setInterval(() => {
    const now = Date.now();
    const ping = encodePacket(PacketType.PING, 0, 0);
    for (const [peer, state] of peers) {
      if (now - state.lastSeen > config.peerTimeoutMs) {
        options.onPeerDead(peer, `no answer for ${now - state.lastSeen} ms`);
        continue;
      }
      if (state.queue.length === 0) trySend(peer, state, ping);
    }
  }, config.keepaliveMs);
  keepalive.unref();

  function scheduleTurn(): void {
    if (turnScheduled) return;
    turnScheduled = true;
    // setImmediate runs once this poll phase's callbacks are done: an idle loop pays a few µs for it,
    // a busy one hands everything that arrived in the phase over in one message per shard
    setImmediate(endOfTurn);
  }

  /** Once per event-loop turn: one message per shard for everything routed to it, and credit. */
  function endOfTurn(): void {
    turnScheduled = false;
    for (const [peer, state] of peers) sendSmall(peer, state);
    for (let i = 0; i < shards.length; i++) {
      const post = shards[i];
      const box = inbox[i];
      const bytes = owed[i] ?? 0;
      // credit alone is posted only once it matters (an eighth of the shard's budget); smaller sums
      // ride with the next packets. A shard out of credit is owed its whole budget, so it never waits.
      if (!post || !box || (box.size === 0 && bytes < config.workerCreditBytes / CREDIT_ALONE_FRACTION)) continue;
      const pkts: { peer: number; bufs: ArrayBuffer[] }[] = [];
      const transfer: ArrayBuffer[] = [];
      for (const [peer, bufs] of box) {
        pkts.push({ peer, bufs });
        transfer.push(...bufs);
      }
      box.clear();
      owed[i] = 0;
      const buffers = spare[i] ?? [];
      if (buffers.length > 0) {
        spare[i] = [];
        transfer.push(...buffers);
        post({ t: 'turn', pkts, credit: bytes, spare: buffers }, transfer);
      } else {
        post({ t: 'turn', pkts, credit: bytes }, transfer);
      }
    }
  }

  function trySend(peer: number, state: PeerState, message: Uint8Array): boolean {
    try {
      trace?.stamp(TraceEvent.SEND);
      state.channel.sendMessageBinary(message);
      trace?.stamp(TraceEvent.SENT);
      counters.messagesOut++;
      counters.bytesOut += message.byteLength;
      return true;
    } catch (err) {
      options.onPeerDead(peer, `send failed: ${(err as Error).message}`);
      return false;
    }
  }

  /** A message's bytes are on the DataChannel (or dropped): credit their shards, keep a full-size buffer. */
  function handedOver(item: Outgoing): void {
    const { message, shard, mix } = item;
    if (mix) {
      for (let i = 0; i < mix.length; i++) owed[i] = (owed[i] ?? 0) + (mix[i] ?? 0);
      return;
    }
    if (shard < 0) return;
    owed[shard] = (owed[shard] ?? 0) + message.byteLength;
    const buffers = spare[shard];
    if (buffers && buffers.length < SPARE_PER_TURN && message.byteLength === FULL_PACKET_BYTES && message.buffer.byteLength === FULL_PACKET_BYTES) buffers.push(message.buffer as ArrayBuffer);
  }

  function sendOrQueue(peer: number, state: PeerState, item: Outgoing): void {
    if (state.queue.length === 0 && state.channel.bufferedAmount() < config.channelHighWaterBytes) {
      if (trySend(peer, state, item.message)) handedOver(item);
      return;
    }
    state.queue.push(item);
    state.queuedBytes += item.message.byteLength;
    if (state.queuedBytes > counters.peakQueuedBytes) counters.peakQueuedBytes = state.queuedBytes;
    if (!drainTimer) drainTimer = setInterval(drainAll, DRAIN_POLL_MS);
  }

  function drain(peer: number, state: PeerState): void {
    let sent = 0;
    while (state.queue.length > sent && state.channel.bufferedAmount() < config.channelHighWaterBytes) {
      const item = state.queue[sent];
      if (!item) break;
      if (!trySend(peer, state, item.message)) break; // the peer is gone
      sent++;
      state.queuedBytes -= item.message.byteLength;
      handedOver(item);
    }
    if (sent > 0) {
      state.queue.splice(0, sent);
      scheduleTurn();
    }
  }

  function drainAll(): void {
    let pending = false;
    for (const [peer, state] of peers) {
      drain(peer, state);
      if (state.queue.length > 0) pending = true;
    }
    if (!pending && drainTimer) {
      clearInterval(drainTimer);
      drainTimer = null;
    }
  }

  /** The shard of the packet at `offset`, creating a host route for a new stream; -1 to drop it. */
  function routeOf(peer: number, state: PeerState, msg: Uint8Array, offset: number): number {
    const type = msg[offset];
    if (type === PacketType.PING) {
      // answer a ping (seq 0) with a pong (seq 1): each side then hears from the other at its own
      // keepalive interval, whatever the other side's interval is
      if (new DataView(msg.buffer, msg.byteOffset + offset, HEADER_BYTES).getUint32(8) === 0) trySend(peer, state, encodePacket(PacketType.PING, 0, 1));
      return -1;
    }
    const sid = new DataView(msg.buffer, msg.byteOffset + offset, HEADER_BYTES).getUint32(4);
    const known = state.routes.get(sid);
    if (known !== undefined) return known;
    const opens = type === PacketType.CONNECT || type === PacketType.DATA || type === PacketType.FIN;
    if (role !== 'host' || !opens) {
      counters.dropped++; // late packet for a stream that is gone, or garbage
      return -1;
    }
    if (state.routes.size >= config.maxStreamsPerPeer) {
      counters.refused++;
      if (counters.refused === 1 || counters.refused % 1000 === 0) log.warn('stream refused: too many streams', { peer, limit: config.maxStreamsPerPeer, refused: counters.refused });
      trySend(peer, state, encodePacket(PacketType.RESET, sid, 0, Buffer.from(`${ResetReason.TOO_MANY_STREAMS}: limit ${config.maxStreamsPerPeer}`)));
      return -1;
    }
    const shard = hostWorkerFor(peer, sid, shards.length);
    state.routes.set(sid, shard);
    return shard;
  }

  function toShard(shard: number, peer: number, buf: ArrayBuffer): void {
    const box = inbox[shard];
    if (!box) return;
    let list = box.get(peer);
    if (!list) box.set(peer, (list = []));
    list.push(buf);
    scheduleTurn();
  }

  /** A DataChannel message: route each packet to the shard that owns its stream. */
  function onChannelMessage(peer: number, state: PeerState, msg: Buffer): void {
    trace?.stamp(TraceEvent.MESSAGE);
    state.lastSeen = Date.now();
    counters.messagesIn++;
    counters.bytesIn += msg.byteLength;
    // Walk the headers only; a packet cut short goes whole to its stream's shard, which decodes,
    // rejects and counts it. What the shards get is moved, not copied, when one shard owns it all.
    const parts: { shard: number; start: number; end: number }[] = [];
    let offset = 0;
    let oneShard = -1;
    let mixed = false;
    while (offset < msg.byteLength) {
      let bytes = peekPacketBytes(msg, offset);
      if (bytes < 0) {
        counters.dropped++; // less than a header: no stream to blame
        break;
      }
      if (offset + bytes > msg.byteLength) bytes = msg.byteLength - offset;
      const shard = routeOf(peer, state, msg, offset);
      if (shard >= 0) {
        parts.push({ shard, start: offset, end: offset + bytes });
        if (oneShard < 0) oneShard = shard;
        else if (shard !== oneShard) mixed = true;
      }
      offset += bytes;
    }
    if (parts.length === 0) return;
    const whole = parts.length === 1 ? parts[0]?.start === 0 && parts[0]?.end === msg.byteLength : !mixed && parts.reduce((n, p) => n + p.end - p.start, 0) === msg.byteLength;
    if (whole && msg.byteOffset === 0 && msg.byteLength === msg.buffer.byteLength) {
      toShard(oneShard, peer, msg.buffer as ArrayBuffer); // Buffers arrive over exact-size ArrayBuffers
      return;
    }
    const perShard = new Map<number, Uint8Array[]>();
    for (const part of parts) {
      let list = perShard.get(part.shard);
      if (!list) perShard.set(part.shard, (list = []));
      list.push(msg.subarray(part.start, part.end));
    }
    for (const [shard, pieces] of perShard) toShard(shard, peer, joinPackets(pieces).buffer as ArrayBuffer);
  }

  function addPeer(peer: number, channel: Channel, sendWindow: number): void {
    const state: PeerState = { channel, routes: new Map(), sendWindow, small: [], queue: [], queuedBytes: 0, lastSeen: Date.now() };
    peers.set(peer, state);
    channel.setBufferedAmountLowThreshold(config.channelLowWaterBytes);
    channel.onBufferedAmountLow(() => drain(peer, state));
    channel.onMessage((msg) => {
      if (typeof msg === 'string' || !Buffer.isBuffer(msg)) {
        counters.dropped++;
        return;
      }
      onChannelMessage(peer, state, msg);
    });
    for (const post of shards) post({ t: 'peer-up', peer, sendWindow });
  }

  function removePeer(peer: number, reason: string): void {
    const state = peers.get(peer);
    if (!state) return;
    peers.delete(peer);
    for (const item of [...state.small, ...state.queue]) handedOver(item); // dropped: the shards get their credit back
    state.small.length = 0;
    state.queue.length = 0;
    for (const box of inbox) box.delete(peer);
    for (const post of shards) post({ t: 'peer-down', peer, reason });
    scheduleTurn();
  }

  /** Sends the small packets waiting for this peer as few messages as COALESCE_MAX_BYTES allows. */
  function sendSmall(peer: number, state: PeerState): void {
    const pieces = state.small;
    if (pieces.length === 0) return;
    state.small = [];
    const sendGroup = (group: Outgoing[]) => {
      const one = group[0];
      if (group.length === 1 && one) {
        sendOrQueue(peer, state, one);
        return;
      }
      const mix = new Array<number>(shards.length).fill(0);
      for (const p of group) if (p.shard >= 0) mix[p.shard] = (mix[p.shard] ?? 0) + p.message.byteLength;
      sendOrQueue(peer, state, { message: joinPackets(group.map((p) => p.message)), shard: -1, mix });
    };
    let group: Outgoing[] = [];
    let bytes = 0;
    for (const piece of pieces) {
      if (group.length > 0 && bytes + piece.message.byteLength > COALESCE_MAX_BYTES) {
        sendGroup(group);
        group = [];
        bytes = 0;
      }
      group.push(piece);
      bytes += piece.message.byteLength;
    }
    sendGroup(group);
  }

  /** Everything a shard says. */
  function fromShard(index: number, msg: FromShard): void {
    if (msg.t !== 'turn') return;
    for (const batch of msg.pkts) sendBatch(index, batch);
    for (const { peer, sids } of msg.closed) {
      const state = peers.get(peer);
      if (state) for (const sid of sids) state.routes.delete(sid);
    }
    if (msg.pkts.length > 0) scheduleTurn();
  }

  /** A shard's packets for one peer: large ones sent (or queued) now; small ones (CONNECT and first
   *  DATA, FIN, WINDOW, short replies) wait for the end of the turn, so that every shard's small
   *  packets of the turn leave as one message: each message costs the transport tens of µs. */
  function sendBatch(index: number, batch: PacketBatch): void {
    const state = peers.get(batch.peer);
    for (let i = 0; i < batch.bufs.length; i++) {
      const buf = batch.bufs[i];
      const sid = batch.sids[i];
      if (!buf || sid === undefined) continue;
      if (!state) {
        owed[index] = (owed[index] ?? 0) + buf.byteLength; // peer gone: the bytes are dropped
        continue;
      }
      // a client stream's first packet is its CONNECT: that is how the route is learnt
      if (role === 'client' && !state.routes.has(sid)) state.routes.set(sid, workerOfSid(sid) < shards.length ? workerOfSid(sid) : index);
      const message = new Uint8Array(buf);
      if (message.byteLength >= COALESCE_MAX_BYTES) {
        // what waits goes first: a stream's CONNECT stays ahead of its first full DATA packet
        sendSmall(batch.peer, state);
        sendOrQueue(batch.peer, state, { message, shard: index });
        continue;
      }
      state.small.push({ message, shard: index });
    }
    // one shard: its batch is already the whole turn's, so waiting for the end of the turn buys nothing
    if (state && shards.length === 1) sendSmall(batch.peer, state);
  }

  /** A shard's thread died: reset every stream it owned on the peer's side and drop the routes. */
  function shardLost(index: number): void {
    owed[index] = 0;
    spare[index] = [];
    inbox[index]?.clear();
    for (const [peer, state] of peers) {
      for (const item of [...state.small, ...state.queue]) {
        if (item.shard === index) item.shard = -1;
        if (item.mix) item.mix[index] = 0;
      }
      for (const [sid, shard] of state.routes) {
        if (shard !== index) continue;
        state.routes.delete(sid);
        sendOrQueue(peer, state, { message: encodePacket(PacketType.RESET, sid, 0, Buffer.from(`${ResetReason.WORKER_CRASHED}: worker ${index}`)), shard: -1 });
      }
    }
  }

  /** A restarted shard learns which peers are up. */
  function shardStarted(index: number): void {
    const post = shards[index];
    if (post) for (const [peer, state] of peers) post({ t: 'peer-up', peer, sendWindow: state.sendWindow });
  }

  function close(): void {
    clearInterval(keepalive);
    if (drainTimer) clearInterval(drainTimer);
    drainTimer = null;
    peers.clear();
  }

  return {
    addPeer, removePeer, fromShard, shardLost, shardStarted, close, counters,
    routes: (peer: number) => peers.get(peer)?.routes.size ?? 0,
    queuedBytes: () => { let n = 0; for (const s of peers.values()) n += s.queuedBytes; return n; },
  };
}

export type Dispatcher = ReturnType<typeof createDispatcher>;
