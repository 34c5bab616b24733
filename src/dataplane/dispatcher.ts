// The dispatcher: on the main thread, between the peers' DataChannels and the shards. It routes, and
// nothing else: the table is ./routes.ts, each DataChannel's queue and keepalive ./peer-link.ts, the
// turn's small packets ./coalesce.ts, and what goes back to each shard ./shard-mail.ts.
//
//   DataChannel ──message──▶ split by stream id, route each packet ──▶ shard mail ──once a turn──▶ shard
//                            (no backpressure here: every stream's window bounds what comes in)
//   shard ──turn──▶ full-size packets now, small ones at the end of the turn, all shards' joined
//                   ──▶ peer link (send, or queue above the high-water mark) ──▶ DataChannel
//         ◀─turn─── hop allowance once the bytes are on the DataChannel, and spent buffers for reuse
//
// It holds no stream state.

import { PacketType, encodePacket, joinPackets, peekPacketBytes, peekSeq, peekStreamId, peekTwice } from '../shared/packet.js';
import { ResetReason } from '../shared/reset-reason.js';
import type { DataPlaneConfig, WindowOffer } from '../shared/limits.js';
import type { FromShard, PacketBatch } from '../shared/thread-messages.js';
import type { Logger } from '../shared/log.js';
import { trace, TraceEvent } from '../shared/trace.js';
import { onceATurn } from '../shared/turn.js';
import { createRoutes, Route } from './routes.js';
import { createPeerLink, disown, type PeerLink } from './peer-link.js';
import type { PeerChannels } from '../webrtc/channels.js';
import { coalesce, type Outgoing } from './coalesce.js';
import { createShardMail } from './shard-mail.js';
import type { ShardPost } from './pool.js';

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
  /** copies of small interactive DATA sent over an idle lane (TWICE, see peer-link.ts) */
  copiesOut: number;
}

/** A turn's small packets leave joined, up to this many bytes per DataChannel message. */
const COALESCE_MAX_BYTES = 16 * 1024;

interface PeerState {
  link: PeerLink;
  sendWindow: WindowOffer;
  /** this turn's small packets for the peer, every shard's */
  small: Outgoing[];
}

export function createDispatcher(options: DispatcherOptions) {
  const { role, config, shards, log } = options;
  const counters: DispatcherCounters = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, dropped: 0, refused: 0, peakQueuedBytes: 0, copiesOut: 0 };
  const routes = createRoutes(role, shards.length, config.maxStreamsPerPeer);
  const mail = createShardMail(shards, config.hopAllowanceBytes);
  const peers = new Map<number, PeerState>();
  const scheduleTurn = onceATurn(endOfTurn);

  /** The turn's small packets to their peers, and to each shard what it is owed. */
  function endOfTurn(): void {
    for (const state of peers.values()) sendSmall(state);
    mail.flush();
  }

  function sendSmall(state: PeerState): void {
    if (state.small.length === 0) return;
    const pieces = state.small;
    state.small = [];
    for (const item of coalesce(pieces, shards.length, COALESCE_MAX_BYTES)) state.link.send(item);
    copyTwice(state, pieces);
  }

  /** The turn's DATA flagged TWICE, once more in one message, if the link has an idle lane for it. */
  function copyTwice(state: PeerState, pieces: readonly Outgoing[]): void {
    if (!state.link.copying()) return; // loopback, a LAN: nothing to scan or join
    let copies: Uint8Array[] | null = null;
    let bytes = 0;
    for (const { message } of pieces) {
      if (!peekTwice(message) || bytes + message.byteLength > COALESCE_MAX_BYTES) continue;
      (copies ??= []).push(message);
      bytes += message.byteLength;
    }
    if (copies) state.link.copy(copies.length === 1 ? copies[0] as Uint8Array : joinPackets(copies));
  }

  // ---- from the peer ----

  /** The shard of the packet at `offset`, or -1 to drop it (pings are answered here). */
  function routeOf(peer: number, state: PeerState, msg: Uint8Array, offset: number, bytes: number): number {
    const type = msg[offset] ?? 0;
    if (type === PacketType.PING) {
      state.link.ping(msg.subarray(offset, offset + bytes), peekSeq(msg, offset));
      return -1;
    }
    const id = peekStreamId(msg, offset);
    const shard = routes.inbound(peer, id, type, peekTwice(msg, offset));
    if (shard === Route.REFUSE) {
      counters.refused++;
      if (counters.refused === 1 || counters.refused % 1000 === 0) log.warn('stream refused: too many streams', { peer, limit: config.maxStreamsPerPeer, refused: counters.refused });
      state.link.sendNow(encodePacket(PacketType.RESET, id, 0, Buffer.from(`${ResetReason.TOO_MANY_STREAMS}: limit ${config.maxStreamsPerPeer}`)));
    } else if (shard === Route.DROP) {
      counters.dropped++;
      // the peer resumes a stream that ended here while the path was down: it must not wait for it
      if (type === PacketType.RESUME) state.link.sendNow(encodePacket(PacketType.RESET, id, 0, Buffer.from(`${ResetReason.PEER_GONE}: stream not found on resume`)));
    }
    return shard;
  }

  /** A DataChannel message: each packet to the shard that owns its stream. */
  function onChannelMessage(peer: number, state: PeerState, msg: Buffer): void {
    trace?.stamp(TraceEvent.MESSAGE);
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
      const shard = routeOf(peer, state, msg, offset, bytes);
      if (shard >= 0) {
        parts.push({ shard, start: offset, end: offset + bytes });
        if (oneShard < 0) oneShard = shard;
        else if (shard !== oneShard) mixed = true;
      }
      offset += bytes;
    }
    if (parts.length === 0) return;
    scheduleTurn();
    const whole = parts.length === 1 ? parts[0]?.start === 0 && parts[0]?.end === msg.byteLength : !mixed && parts.reduce((n, p) => n + p.end - p.start, 0) === msg.byteLength;
    if (whole && msg.byteOffset === 0 && msg.byteLength === msg.buffer.byteLength) {
      mail.deliver(oneShard, peer, msg.buffer as ArrayBuffer); // Buffers arrive over exact-size ArrayBuffers
      return;
    }
    const perShard = new Map<number, Uint8Array[]>();
    for (const part of parts) {
      let list = perShard.get(part.shard);
      if (!list) perShard.set(part.shard, (list = []));
      list.push(msg.subarray(part.start, part.end));
    }
    for (const [shard, pieces] of perShard) mail.deliver(shard, peer, joinPackets(pieces).buffer as ArrayBuffer);
  }

  // ---- from the shards ----

  function fromShard(index: number, msg: FromShard): void {
    if (msg.t !== 'turn') return;
    for (const batch of msg.pkts) sendBatch(index, batch);
    for (const { peer, ids } of msg.closed) {
      routes.release(peer, ids);
      peers.get(peer)?.link.forget(ids);
    }
    if (msg.pkts.length > 0) scheduleTurn();
  }

  /** A shard's packets for one peer: full-size ones go to the link now, small ones wait for the end
   *  of the turn so that every shard's small packets of the turn leave as one message. */
  function sendBatch(index: number, batch: PacketBatch): void {
    const state = peers.get(batch.peer);
    for (let i = 0; i < batch.bufs.length; i++) {
      const buf = batch.bufs[i];
      const id = batch.ids[i];
      if (!buf || id === undefined) continue;
      if (!state) {
        mail.dropped(index, buf.byteLength); // the peer is gone
        continue;
      }
      routes.outbound(batch.peer, id, index);
      const message = new Uint8Array(buf);
      if (message.byteLength >= COALESCE_MAX_BYTES) {
        // what waits goes first: a stream's CONNECT stays ahead of its first full DATA packet
        sendSmall(state);
        state.link.send({ message, shard: index }, id);
        continue;
      }
      state.small.push({ message, shard: index });
    }
    // one shard: its batch is already the whole turn's, so waiting for the end of the turn buys nothing
    if (state && shards.length === 1) sendSmall(state);
  }

  // ---- peers and shards coming and going ----

  function addPeer(peer: number, channels: PeerChannels, sendWindow: WindowOffer): void {
    routes.addPeer(peer);
    attach(peer, channels, sendWindow);
    for (const post of shards) post({ t: 'peer-up', peer, sendWindow });
  }

  function attach(peer: number, channels: PeerChannels, sendWindow: WindowOffer): void {
    const state: PeerState = {
      sendWindow,
      small: [],
      link: createPeerLink(channels, config, counters, {
        message: (msg) => onChannelMessage(peer, state, msg),
        handedOver: mail.handedOver,
        drained: scheduleTurn,
        dead: (reason) => options.onPeerDead(peer, reason),
        rtt: (rttMs) => { for (const post of shards) post({ t: 'peer-rtt', peer, rttMs }); },
      }),
    };
    peers.set(peer, state);
  }

  /** The peer's channels are gone: what waited for them is dropped (the shards get their allowance
   *  back). The routes stay until removePeer. */
  function detach(peer: number): boolean {
    const state = peers.get(peer);
    if (!state) return false;
    peers.delete(peer);
    for (const item of state.small) mail.handedOver(item);
    state.small = [];
    state.link.close();
    mail.removePeer(peer);
    scheduleTurn();
    return true;
  }

  function removePeer(peer: number, reason: string): void {
    const known = routes.has(peer);
    detach(peer);
    routes.removePeer(peer);
    if (known) for (const post of shards) post({ t: 'peer-down', peer, reason });
  }

  /** The path to the peer broke but its streams wait for a new one (resume): the routes stay. */
  function suspendPeer(peer: number, reason: string): void {
    if (!detach(peer)) return;
    for (const post of shards) post({ t: 'peer-suspend', peer, reason });
  }

  /** The peer is back on new channels: its streams go on where they stopped. */
  function resumePeer(peer: number, channels: PeerChannels, sendWindow: WindowOffer): void {
    if (!routes.has(peer)) routes.addPeer(peer);
    detach(peer);
    attach(peer, channels, sendWindow);
    for (const post of shards) post({ t: 'peer-resume', peer, sendWindow });
  }

  /** A shard's thread died: reset every stream it owned on the peer's side and drop the routes. */
  function shardLost(index: number): void {
    mail.lost(index);
    for (const state of peers.values()) {
      for (const item of state.small) disown(item, index);
      state.link.disown(index);
    }
    for (const { peer, id } of routes.takeShard(index)) {
      const link = peers.get(peer)?.link;
      link?.send({ message: encodePacket(PacketType.RESET, id, 0, Buffer.from(`${ResetReason.WORKER_CRASHED}: worker ${index}`)), shard: -1 });
      link?.forget([id]);
    }
  }

  /** A restarted shard learns which peers are up. */
  function shardStarted(index: number): void {
    const post = shards[index];
    if (post) for (const [peer, state] of peers) post({ t: 'peer-up', peer, sendWindow: state.sendWindow });
  }

  function close(): void {
    for (const state of peers.values()) state.link.close();
    peers.clear();
  }

  return {
    addPeer, removePeer, suspendPeer, resumePeer, fromShard, shardLost, shardStarted, close, counters,
    routes: (peer: number) => routes.count(peer),
    rttMs: (peer: number) => peers.get(peer)?.link.rttMs() ?? null,
    queuedBytes: () => { let n = 0; for (const s of peers.values()) n += s.link.queuedBytes(); return n; },
    bufferedBytes: () => { let n = 0; for (const s of peers.values()) n += s.link.bufferedBytes(); return n; },
  };
}

export type Dispatcher = ReturnType<typeof createDispatcher>;
