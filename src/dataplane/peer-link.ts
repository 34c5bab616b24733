// One peer's DataChannels as the dispatcher drives them (see ../webrtc/channels.ts for why there are
// several: small messages, and full-size DATA over bulk lanes, a stream on one lane for life). Each
// channel sends while its bufferedAmount is under the high-water mark and queues behind it otherwise,
// draining on onBufferedAmountLow (with a polling fallback). A ping goes out every keepalive interval
// and is answered; its echoed timestamp gives the round-trip time; a peer silent for the timeout is
// declared dead.
//
//   send(item, bulkId?) ──▶ small, or the stream's lane ──▶ bufferedAmount < high? ──yes──▶ sendMessageBinary ──▶ handedOver
//                                                                   │ no
//                                                                   ▼
//                                                   that channel's queue ──low event / poll──▶ sendMessageBinary ──▶ handedOver
//
// handedOver returns the bytes' hop allowance to their shard: a full channel therefore stops the
// shards, which stop reading their sockets, which pushes back on the applications. bufferedAmount
// counts only libdatachannel's own queue, one FIFO per association (each channel has its own, see
// ../webrtc/channels.ts); the real buffer is usrsctp's (4 MiB, see ../webrtc/peer.ts). Each bulk
// lane keeps a short one (bulkHighWaterBytes, one or two full-size messages, low event at 0):
// full-size DATA waits here, while usrsctp still has plenty to send.

import { PacketType, encodePacket, HEADER_BYTES } from '../shared/packet.js';
import type { DataPlaneConfig } from '../shared/limits.js';
import { trace, TraceEvent } from '../shared/trace.js';
import type { Channel, PeerChannels } from '../webrtc/channels.js';
import type { Outgoing } from './coalesce.js';

/** Polling fallback in case onBufferedAmountLow is missed (ms). */
const DRAIN_POLL_MS = 20;
/** Weight of a new round-trip sample in the smoothed RTT (as TCP's 1/8). */
const RTT_GAIN = 1 / 8;
/** The path's own round trip is the smallest sample of the last this many (one per keepalive): a
 *  ping waits behind whatever the channels queue, so the smoothed RTT grows with the queues; windows
 *  sized by it would grow the queues further (bufferbloat), and a ping beside a download waited
 *  300 ms on loopback. */
const MIN_RTT_SAMPLES = 10;
/** Copies of TWICE DATA (see `copy`) only where the path's round trip is at least this (ms): a copy
 *  costs each side a DataChannel message (tens of µs), and on loopback or a LAN, where the CPU is
 *  the limit and a loss is rare, that is all it would be. */
const COPY_MIN_RTT_MS = 5;
/** What copies may add to one peer's traffic: a token bucket (bytes per second, and its depth). An
 *  interactive session sends a few KiB a second; this bounds what a chatty stream can double. */
const COPY_BYTES_PER_S = 256 * 1024;
const COPY_BURST_BYTES = 64 * 1024;
/** Bench only: no copies (`TUNNEL_BENCH_NO_COPIES=1` on both sides), to measure what they bring. */
const benchNoCopies = process.env.TUNNEL_BENCH_NO_COPIES === '1';

export interface LinkCounters {
  messagesOut: number;
  bytesOut: number;
  /** most bytes ever queued waiting for a DataChannel to drain */
  peakQueuedBytes: number;
  /** messages dropped quietly (here: text messages; a peer sends binary only) */
  dropped: number;
  /** copies of TWICE DATA sent over an idle lane */
  copiesOut: number;
}

export interface LinkHooks {
  /** A DataChannel message arrived (already known to be binary). */
  message(msg: Buffer): void;
  /** A message's bytes left (or were dropped because the peer is gone). */
  handedOver(item: Outgoing): void;
  /** Queued messages went out: the shards may have allowance to collect. */
  drained(): void;
  /** The peer stopped answering, or its channel refused a message. */
  dead(reason: string): void;
  /** A new round-trip sample: the path's minimum over the last samples (ms), which sizes windows. */
  rtt(minRttMs: number): void;
}

/** Marks `item`'s bytes of a dead shard as nobody's. */
export function disown(item: Outgoing, shard: number): void {
  if (item.shard === shard) item.shard = -1;
  if (item.mix) item.mix[shard] = 0;
}

export function createPeerLink(channels: PeerChannels, config: DataPlaneConfig, counters: LinkCounters, hooks: LinkHooks) {
  let lastSeen = Date.now();
  let closed = false;
  let rttMs: number | null = null;
  let minRttMs = 0;
  const samples: number[] = [];
  let copyTokens = COPY_BURST_BYTES;
  let copyRefilled = performance.now();

  /** Sends outside the queues and the allowance (pings, the main thread's own RESETs); false if the
   *  channel refused it, and then the peer is dead. */
  function sendNow(message: Uint8Array, channel: Channel = channels.small): boolean {
    if (closed) return false;
    try {
      trace?.stamp(TraceEvent.SEND);
      channel.sendMessageBinary(message);
      trace?.stamp(TraceEvent.SENT);
      counters.messagesOut++;
      counters.bytesOut += message.byteLength;
      return true;
    } catch (err) {
      hooks.dead(`send failed: ${(err as Error).message}`);
      return false;
    }
  }

  function lane(channel: Channel, highWater: number, lowWater: number) {
    const queue: Outgoing[] = [];
    let queuedBytes = 0;
    let drainTimer: NodeJS.Timeout | null = null;

    function send(item: Outgoing): void {
      if (queue.length === 0 && channel.bufferedAmount() < highWater) {
        sendNow(item.message, channel);
        hooks.handedOver(item); // sent, or dropped with a dead peer: either way the shard is owed it
        return;
      }
      queue.push(item);
      queuedBytes += item.message.byteLength;
      if (queuedBytes > counters.peakQueuedBytes) counters.peakQueuedBytes = queuedBytes;
      drainTimer ??= setInterval(drain, DRAIN_POLL_MS);
    }

    function drain(): void {
      let sent = 0;
      while (sent < queue.length && channel.bufferedAmount() < highWater) {
        const item = queue[sent];
        if (!item || !sendNow(item.message, channel)) break; // the peer is gone: close() hands the rest over
        sent++;
        queuedBytes -= item.message.byteLength;
        hooks.handedOver(item);
      }
      if (sent > 0) queue.splice(0, sent);
      if (queue.length === 0 && drainTimer) {
        clearInterval(drainTimer);
        drainTimer = null;
      }
      if (sent > 0) hooks.drained();
    }

    channel.setBufferedAmountLowThreshold(lowWater);
    channel.onBufferedAmountLow(drain);
    channel.onMessage((msg) => {
      if (closed) return;
      if (typeof msg === 'string' || !Buffer.isBuffer(msg)) {
        counters.dropped++;
        return;
      }
      lastSeen = Date.now();
      hooks.message(msg);
    });

    return {
      send,
      queuedBytes: () => queuedBytes,
      idle: () => queue.length === 0,
      forEachQueued: (fn: (item: Outgoing) => void) => { for (const item of queue) fn(item); },
      close(): void {
        if (drainTimer) clearInterval(drainTimer);
        drainTimer = null;
        const left = queue.splice(0);
        queuedBytes = 0;
        for (const item of left) hooks.handedOver(item);
      },
    };
  }

  const small = lane(channels.small, config.channelHighWaterBytes, config.channelLowWaterBytes);
  const bulkHigh = Math.min(config.bulkHighWaterBytes, config.channelHighWaterBytes);
  const bulk = channels.bulk.map((c) => (c === channels.small ? small : lane(c, bulkHigh, 0)));
  const lanes = [...new Set([small, ...bulk])];
  /** The bulk lane of each stream that has sent full-size DATA, and how many streams each lane has:
   *  a stream keeps its lane for life (its packets stay in order, its losses stay on its lane), and
   *  a new one takes the lane with the fewest. */
  const laneOf = new Map<number, number>();
  const streamsOn = bulk.map(() => 0);

  function bulkLane(id: number) {
    let index = laneOf.get(id);
    if (index === undefined) {
      index = 0;
      for (let i = 1; i < streamsOn.length; i++) if ((streamsOn[i] ?? 0) < (streamsOn[index] ?? 0)) index = i;
      laneOf.set(id, index);
      streamsOn[index] = (streamsOn[index] ?? 0) + 1;
    }
    return bulk[index] ?? small;
  }

  /** Copies only on a path slow enough for a lost message to matter (see COPY_MIN_RTT_MS). */
  const copying = (): boolean => minRttMs >= COPY_MIN_RTT_MS && !benchNoCopies;

  /** A bulk lane with no stream and nothing waiting: a copy sent there leaves at once and arrives
   *  by another association than the original's. */
  function idleLane(): Channel | null {
    for (let i = 0; i < bulk.length; i++) {
      const channel = channels.bulk[i];
      const l = bulk[i];
      if (!channel || !l || l === small || (streamsOn[i] ?? 0) > 0 || !l.idle() || channel.bufferedAmount() > 0) continue;
      return channel;
    }
    return null;
  }

  /** PING seq 0 carries our clock (ms, float64); the pong (seq 1) echoes it back. */
  function ping(): Uint8Array {
    const stamp = new Uint8Array(8);
    new DataView(stamp.buffer).setFloat64(0, performance.now());
    return encodePacket(PacketType.PING, 0, 0, stamp);
  }

  sendNow(ping()); // the first round-trip sample now: windows size themselves by it
  const keepalive = setInterval(() => {
    const silent = Date.now() - lastSeen;
    if (silent > config.peerTimeoutMs) hooks.dead(`no answer for ${silent} ms`);
    else if (small.idle()) sendNow(ping());
  }, config.keepaliveMs);
  keepalive.unref();

  return {
    sendNow,
    /** Queues or sends a message: full-size DATA of stream `bulkId` on that stream's bulk lane, the
     *  rest (`bulkId` undefined) on the small channel. */
    send(item: Outgoing, bulkId?: number): void { (bulkId === undefined ? small : bulkLane(bulkId)).send(item); },
    /** Whether copies are made on this path at all (asked before building one). */
    copying,
    /** Sends `message` (DATA flagged TWICE, already sent on the small channel) once more over an idle
     *  lane, so that one lost message costs its stream a round trip rather than usrsctp's
     *  retransmission timeout (200 ms at least): both copies are lost only as often as a loss squared.
     *  Only on a path slow enough for that to matter, within the copy budget, and if a lane is idle;
     *  false if it sent nothing. */
    copy(message: Uint8Array): boolean {
      if (!copying()) return false;
      const now = performance.now();
      copyTokens = Math.min(COPY_BURST_BYTES, copyTokens + ((now - copyRefilled) * COPY_BYTES_PER_S) / 1000);
      copyRefilled = now;
      if (copyTokens < message.byteLength) return false;
      const channel = idleLane();
      if (!channel || !sendNow(message, channel)) return false;
      copyTokens -= message.byteLength;
      counters.copiesOut++;
      return true;
    },
    /** Streams that ended: their lanes take new ones. */
    forget(ids: readonly number[]): void {
      for (const id of ids) {
        const index = laneOf.get(id);
        if (index === undefined) continue;
        laneOf.delete(id);
        streamsOn[index] = (streamsOn[index] ?? 1) - 1;
      }
    },
    /** Streams per bulk lane, now. */
    lanes: () => [...streamsOn],
    /** A PING packet from the peer (`packet` is its whole encoding): a ping gets its pong, a pong
     *  is a round-trip sample. */
    ping(packet: Uint8Array, seq: number): void {
      if (seq === 0) {
        const pong = new Uint8Array(packet); // the same timestamp back
        new DataView(pong.buffer).setUint32(8, 1);
        sendNow(pong);
        return;
      }
      if (packet.byteLength < HEADER_BYTES + 8) return; // a peer that sends no timestamp
      const sent = new DataView(packet.buffer, packet.byteOffset + HEADER_BYTES, 8).getFloat64(0);
      const sample = performance.now() - sent;
      if (!(sample >= 0 && sample < 60_000)) return;
      rttMs = rttMs === null ? sample : rttMs + RTT_GAIN * (sample - rttMs);
      samples.push(sample);
      if (samples.length > MIN_RTT_SAMPLES) samples.shift();
      minRttMs = Math.min(...samples);
      hooks.rtt(minRttMs);
    },
    /** The smoothed round-trip time over the small channel (ms), once a pong came back. */
    rttMs: () => rttMs,
    queuedBytes: () => lanes.reduce((n, l) => n + l.queuedBytes(), 0),
    /** bytes the DataChannels themselves hold (0 once closed) */
    bufferedBytes: () => {
      if (closed) return 0;
      try { return [...new Set([channels.small, ...channels.bulk])].reduce((n, c) => n + c.bufferedAmount(), 0); } catch { return 0; }
    },
    /** A shard died: its queued bytes still go out, but nobody is owed them any more. */
    disown(shard: number): void {
      for (const l of lanes) l.forEachQueued((item) => disown(item, shard));
    },
    /** Stops the timers; what was still queued is handed over (the shards get their allowance back). */
    close(): void {
      if (closed) return;
      closed = true;
      clearInterval(keepalive);
      for (const l of lanes) l.close();
    },
  };
}

export type PeerLink = ReturnType<typeof createPeerLink>;
