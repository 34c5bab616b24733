// One peer's DataChannel as the dispatcher drives it: messages go out while the channel's
// bufferedAmount is under its high-water mark and queue behind it otherwise, draining on
// onBufferedAmountLow (with a polling fallback); a keepalive ping every interval, and a peer silent
// for the timeout is declared dead. Pings are answered, so each side hears from the other at its own
// interval, whatever the other's is.
//
//   send(item) ──▶ bufferedAmount < high? ──yes──▶ sendMessageBinary ──▶ handedOver(item)
//                          │ no
//                          ▼
//                        queue ──onBufferedAmountLow / poll──▶ sendMessageBinary ──▶ handedOver(item)
//
// handedOver returns the bytes' hop allowance to their shard: a full channel therefore stops the
// shards, which stop reading their sockets, which pushes back on the applications.

import type { DataChannel } from 'node-datachannel';
import { PacketType, encodePacket } from '../shared/packet.js';
import type { DataPlaneConfig } from '../shared/limits.js';
import { trace, TraceEvent } from '../shared/trace.js';
import type { Outgoing } from './coalesce.js';

/** The part of node-datachannel's DataChannel the data plane uses (a fake in unit tests). */
export type Channel = Pick<DataChannel, 'sendMessageBinary' | 'bufferedAmount' | 'setBufferedAmountLowThreshold' | 'onBufferedAmountLow' | 'onMessage' | 'isOpen'>;

/** Polling fallback in case onBufferedAmountLow is missed (ms). */
const DRAIN_POLL_MS = 20;

export interface LinkCounters {
  messagesOut: number;
  bytesOut: number;
  /** most bytes ever queued waiting for a DataChannel to drain */
  peakQueuedBytes: number;
  /** messages dropped quietly (here: text messages; a peer sends binary only) */
  dropped: number;
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
}

/** Marks `item`'s bytes of a dead shard as nobody's. */
export function disown(item: Outgoing, shard: number): void {
  if (item.shard === shard) item.shard = -1;
  if (item.mix) item.mix[shard] = 0;
}

export function createPeerLink(channel: Channel, config: DataPlaneConfig, counters: LinkCounters, hooks: LinkHooks) {
  const queue: Outgoing[] = [];
  let queuedBytes = 0;
  let lastSeen = Date.now();
  let drainTimer: NodeJS.Timeout | null = null;
  let closed = false;

  const ping = encodePacket(PacketType.PING, 0, 0);
  const pong = encodePacket(PacketType.PING, 0, 1);
  const keepalive = setInterval(() => {
    const silent = Date.now() - lastSeen;
    if (silent > config.peerTimeoutMs) hooks.dead(`no answer for ${silent} ms`);
    else if (queue.length === 0) sendNow(ping);
  }, config.keepaliveMs);
  keepalive.unref();

  /** Sends outside the queue and the allowance (pings, the main thread's own RESETs); false if the
   *  channel refused it, and then the peer is dead. */
  function sendNow(message: Uint8Array): boolean {
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

  function send(item: Outgoing): void {
    if (queue.length === 0 && channel.bufferedAmount() < config.channelHighWaterBytes) {
      sendNow(item.message);
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
    while (sent < queue.length && channel.bufferedAmount() < config.channelHighWaterBytes) {
      const item = queue[sent];
      if (!item || !sendNow(item.message)) break; // the peer is gone: close() hands the rest over
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

  channel.setBufferedAmountLowThreshold(config.channelLowWaterBytes);
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
    send, sendNow,
    /** A ping from the peer (seq 0) gets a pong (seq 1); a pong is only a sign of life. */
    ping(seq: number): void { if (seq === 0) sendNow(pong); },
    queuedBytes: () => queuedBytes,
    /** bytes the DataChannel itself holds (0 once closed) */
    bufferedBytes: () => { if (closed) return 0; try { return channel.bufferedAmount(); } catch { return 0; } },
    /** A shard died: its queued bytes still go out, but nobody is owed them any more. */
    disown(shard: number): void {
      for (const item of queue) disown(item, shard);
    },
    /** Stops the timers; what was still queued is handed over (the shards get their allowance back). */
    close(): void {
      if (closed) return;
      closed = true;
      clearInterval(keepalive);
      if (drainTimer) clearInterval(drainTimer);
      drainTimer = null;
      const left = queue.splice(0);
      queuedBytes = 0;
      for (const item of left) hooks.handedOver(item);
    },
  };
}

export type PeerLink = ReturnType<typeof createPeerLink>;
