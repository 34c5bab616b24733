// One stream's handler: the whole state of a stream lives in the local variables of `runStream`,
// and every event (a packet from the peer, a TCP read, 'drain', a timer) is a small step on them.
// It is an explicit read/write loop rather than pipe(): when to read TCP, when to hold bytes, and
// when to return credit is the logic, and it is all here.
//
// Closing. Each direction closes on its own, like TCP. The channel is unordered, so FIN carries a
// sequence number and is delivered only after every byte before it.
//
//   our TCP reader ──'end'──▶ send FIN(seq n) ─────────────▶ peer delivers 0..n-1, then ends its write side
//   peer FIN(seq m) ────────▶ deliver 0..m-1, then socket.end()
//   both FINs done ─────────▶ done(): the id and the route are released
//   RESET (either way) ─────▶ both directions abort now; done()
//
// Flow control (per stream, per direction). The sender may have at most a window of bytes that the
// receiver has not credited back. The receiver credits bytes once its TCP socket accepted them
// (write() returned true, or 'drain'); the window starts small and grows while the peer keeps it
// busy (./receive-window.ts). A peer that sends past its window is reset: our memory for one stream
// is therefore bounded by its window (reassembler + socket write buffer) plus one packet.
//
// Resume (the path broke; the peer stays): ./retention.ts keeps what the peer has not confirmed.
//
//   suspend() ─▶ stop reading; sequenced packets are kept, not sent; no WINDOW (credit is reconciled)
//   resume()  ─▶ drop packets held out of order, send RESUME {our next seq, credit}; wait for the peer's
//   peer's RESUME {its next, credit} ─▶ resend from its next, credit = its credit - resent bytes
//                                       (+ WINDOWs that overtook its RESUME); read again

import type net from 'node:net';
import { HEADER_BYTES, PacketFlag, PacketType, encodePacket, payloadText, readU32, u32Payload, MAX_PAYLOAD_BYTES, type Packet } from '../src/shared/packet.js';
import { ResetReason } from '../src/shared/reset-reason.js';
import type { StreamEnv } from './stream-env.js';
import { createRetention } from './retention.js';
import { trace, TraceEvent } from '../src/shared/trace.js';
import { createReassembler, isRepeat, reassemble } from './reassembler.js';
import { createReceiveWindow } from './receive-window.js';

/** How long a new client stream's CONNECT waits for the application's first bytes (ms). */
const CONNECT_HOLD_MS = 2;
/** DATA up to this payload, of a stream that never sent a full packet, is flagged TWICE (bytes): the
 *  keystrokes, prompts and short replies of an interactive stream, which a lost message would hold
 *  up for a retransmission timeout (see TWICE in ../src/shared/packet.ts). A bulk stream's packets
 *  are not: its throughput, not one packet's delay, is what matters to it. */
const TWICE_MAX_PAYLOAD_BYTES = 4096;

export type { StreamEnv } from './stream-env.js';

export interface StreamHandle {
  packet(p: Packet): void;
  /** The path to the peer broke; the stream waits for a new one (see the top of the file). */
  suspend(): void;
  /** A new path is up: tell the peer where we stand. */
  resume(): void;
  /** Ends the stream now (peer gone, shutdown); sends a RESET when the peer can still hear it. */
  abort(reason: string, tellPeer: boolean): void;
}

/**
 * Runs one stream. Client side: `socket` is the accepted connection and `service` the name to
 * CONNECT to. Host side: both are null; the stream waits for CONNECT (DATA that overtook it is held
 * by the reassembler, bounded by the window) and then dials.
 */
export function runStream(env: StreamEnv, accepted: net.Socket | null, service: string | null): StreamHandle {
  const { streamId, config } = env;
  const limits = { maxHeldBytes: 2 * config.windowBytes, maxAheadPackets: 16384 };
  let socket: net.Socket | null = null;
  let connected = accepted !== null;
  let over = false;

  // peer -> our socket
  const inbound = createReassembler();
  const window = createReceiveWindow({ initial: config.initialWindowBytes, max: config.windowBytes, rttMs: env.rttMs, grow: env.grow });
  let awaitingDrain = 0; // bytes written while the socket's buffer was over its mark
  let inboundFinished = false;

  // our socket -> peer
  let sendSeq = 0;
  let sendCredit = env.sendWindow.initial;
  let stash: Buffer | null = null; // the tail of a TCP read past our credit (< one read)
  let readEnded = false;
  let finSent = false;
  let reading = false;
  // TWICE: only once the peer is known to have the stream (a copy never starts one), and only while
  // the stream looks interactive
  let heard = accepted === null;
  let sentFull = false;
  // resume: what the peer has not confirmed, while resume is on
  const sent = config.resumeTimeoutMs > 0 ? createRetention() : null;
  let suspended = false; // the path is down
  let awaitingPeer = false; // we sent our RESUME; the peer's has not come
  let pendingCredit = 0; // WINDOW credit that overtook the peer's RESUME
  const paused = () => suspended || awaitingPeer;

  let pendingTimer: NodeJS.Timeout | null = null;
  let connectHold: NodeJS.Timeout | null = null;
  if (accepted) {
    // CONNECT waits a moment for the application's first bytes so that both leave in one message
    // (most protocols speak first from the client); a server-first protocol waits CONNECT_HOLD_MS.
    connectHold = setTimeout(sendConnect, CONNECT_HOLD_MS);
    attach(accepted);
    startReading();
  } else {
    pendingTimer = setTimeout(() => reset(ResetReason.CONNECT_TIMEOUT, 'no CONNECT arrived'), config.pendingMs);
  }

  function sendConnect(): void {
    if (!connectHold || over) return;
    clearTimeout(connectHold);
    connectHold = null;
    sendSequenced(PacketType.CONNECT, Buffer.from(service ?? '', 'utf8'));
  }

  /** Sends a CONNECT, DATA or FIN with the next sequence number, keeping it until the peer confirms
   *  it; while the path is down it is only kept. */
  function sendSequenced(type: PacketType, payload?: Uint8Array, into?: ArrayBuffer, flags = 0): void {
    const seq = sendSeq++;
    sent?.keep(type, seq, payload);
    if (!paused()) env.send(encodePacket(type, streamId, seq, payload, into, flags));
  }

  function attach(s: net.Socket): void {
    socket = s;
    s.setNoDelay(true);
    s.on('data', onRead);
    s.on('end', onReadEnd);
    s.on('drain', onDrain);
    s.pause(); // reading starts explicitly, when there is somewhere to send the bytes
    s.on('error', (err: NodeJS.ErrnoException) => {
      reset(connected ? ResetReason.SOCKET_ERROR : ResetReason.DIAL_FAILED, err.code ?? err.message);
    });
    s.on('close', () => {
      if (!over && !(readEnded && inboundFinished)) reset(ResetReason.SOCKET_ERROR, 'socket closed');
    });
  }

  // ---- peer -> socket ----

  function packet(p: Packet): void {
    if (over) return;
    heard = true;
    // the other copy of it came first: nothing to do, nothing to count against the window
    if (p.twice && isRepeat(inbound, p.seq)) return;
    switch (p.type) {
      case PacketType.WINDOW: {
        const ack = readU32(p.payload);
        if (sent && ack !== undefined && !sent.confirm(ack, sendSeq)) {
          reset(ResetReason.PROTOCOL, `acknowledgement ${ack} beyond what was sent (${sendSeq})`);
          return;
        }
        if (awaitingPeer) pendingCredit += p.seq;
        else onCredit(p.seq);
        return;
      }
      case PacketType.RESUME:
        onPeerResume(p.seq, readU32(p.payload) ?? 0);
        return;
      case PacketType.RESET:
        finish(`${ResetReason.PEER_RESET}: ${payloadText(p.payload)}`, false);
        return;
      case PacketType.DATA:
        if (!window.received(p.payload.byteLength)) {
          reset(ResetReason.FLOW_VIOLATION, `${window.unacked()} bytes in flight, window ${window.size()}`);
          return;
        }
        break;
      case PacketType.CONNECT:
      case PacketType.FIN:
        break;
      default:
        reset(ResetReason.PROTOCOL, `unexpected packet type ${p.type}`);
        return;
    }
    const error = reassemble(inbound, p, limits, deliver);
    if (error && !over) reset(error, `seq ${p.seq}, expected ${inbound.next}`);
    if (!over) env.count(inbound.heldBytes + (socket ? socket.writableLength : 0), 0, 0);
  }

  function deliver(p: Packet): void {
    if (over) return;
    if (inboundFinished) {
      reset(ResetReason.PROTOCOL, 'packet after FIN');
      return;
    }
    if (p.type === PacketType.CONNECT) {
      if (accepted || socket || inbound.next !== 1) {
        reset(ResetReason.PROTOCOL, 'unexpected CONNECT');
        return;
      }
      openService(payloadText(p.payload));
      return;
    }
    if (!socket) {
      reset(ResetReason.PROTOCOL, 'data before CONNECT was delivered');
      return;
    }
    if (p.type === PacketType.FIN) {
      inboundFinished = true;
      socket.end();
      maybeDone();
      return;
    }
    const size = p.payload.byteLength;
    if (size === 0) return;
    // payload is a view into the transferred message buffer: written without a copy
    trace?.stamp(TraceEvent.WRITE);
    env.count(0, size, 0); // counted as written: a stream that ends with this packet still counts it
    if (socket.write(p.payload) && awaitingDrain === 0) credit(size);
    else awaitingDrain += size;
  }

  function onDrain(): void {
    const bytes = awaitingDrain;
    awaitingDrain = 0;
    credit(bytes);
  }

  function credit(bytes: number): void {
    const back = window.consumed(bytes);
    // while the path is down the credit is not sent: resume() reconciles it
    if (back > 0 && !suspended) env.send(encodePacket(PacketType.WINDOW, streamId, back, u32Payload(inbound.next)));
  }

  function openService(name: string): void {
    if (pendingTimer) clearTimeout(pendingTimer);
    pendingTimer = null;
    const s = env.dial(name);
    if (typeof s === 'string') {
      reset(ResetReason.UNKNOWN_SERVICE, s);
      return;
    }
    attach(s);
    const dialTimer = setTimeout(() => reset(ResetReason.DIAL_FAILED, `no answer from service '${name}' in ${config.dialTimeoutMs} ms`), config.dialTimeoutMs);
    s.once('connect', () => {
      connected = true;
      clearTimeout(dialTimer);
      startReading();
    });
    s.once('close', () => clearTimeout(dialTimer));
  }

  // ---- socket -> peer ----

  function onRead(chunk: Buffer): void {
    trace?.stamp(TraceEvent.READ);
    sendConnect();
    env.count(0, 0, chunk.byteLength);
    sendData(chunk);
    if (!stash && !env.mayPost(chunk.byteLength)) pauseUntilAllowance();
  }

  function sendData(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.byteLength && sendCredit > 0) {
      const n = Math.min(chunk.byteLength - offset, sendCredit, MAX_PAYLOAD_BYTES);
      if (n === MAX_PAYLOAD_BYTES) sentFull = true;
      const flags = heard && !sentFull && n <= TWICE_MAX_PAYLOAD_BYTES ? PacketFlag.TWICE : 0;
      sendSequenced(PacketType.DATA, chunk.subarray(offset, offset + n), env.spare(HEADER_BYTES + n), flags);
      sendCredit -= n;
      offset += n;
    }
    if (offset < chunk.byteLength) {
      stash = chunk.subarray(offset);
      stopReading();
    }
  }

  function onCredit(bytes: number): void {
    sendCredit += bytes;
    if (sendCredit > env.sendWindow.max) {
      reset(ResetReason.FLOW_VIOLATION, `credit ${sendCredit} exceeds window ${env.sendWindow.max}`);
      return;
    }
    if (stash) {
      const rest = stash;
      stash = null;
      sendData(rest);
    }
    if (stash) return;
    if (readEnded) sendFin();
    else if (env.mayPost()) startReading();
    else pauseUntilAllowance();
  }

  function onReadEnd(): void {
    sendConnect();
    readEnded = true;
    if (!stash) sendFin();
  }

  function sendFin(): void {
    if (finSent || over) return;
    finSent = true;
    sendSequenced(PacketType.FIN);
    maybeDone();
  }

  function startReading(): void {
    if (over || !socket || reading || stash || readEnded || paused()) return;
    reading = true;
    socket.resume();
  }

  function stopReading(): void {
    if (!socket || !reading) return;
    reading = false;
    socket.pause();
  }

  function pauseUntilAllowance(): void {
    stopReading();
    env.onAllowance(startReading);
  }

  // ---- resume ----

  function suspend(): void {
    if (over || !sent) return;
    suspended = true;
    stopReading();
  }

  function resume(): void {
    if (over || !suspended) return;
    suspended = false;
    awaitingPeer = true;
    // what was held out of order comes again: the peer resends from our next sequence number
    let held = 0;
    for (const p of inbound.held.values()) if (p.type === PacketType.DATA) held += p.payload.byteLength;
    inbound.held.clear();
    inbound.heldBytes = 0;
    env.send(encodePacket(PacketType.RESUME, streamId, inbound.next, u32Payload(window.resume(held))));
  }

  function onPeerResume(next: number, credit: number): void {
    if (!sent || !awaitingPeer) {
      reset(ResetReason.PROTOCOL, 'unexpected RESUME');
      return;
    }
    const oldest = sent.confirm(next, sendSeq) ? sent.oldest() ?? sendSeq : -1;
    if (oldest !== next) {
      reset(ResetReason.PROTOCOL, `RESUME from seq ${next}: kept ${oldest < 0 ? 'nothing that old' : `from ${oldest}`}, sent up to ${sendSeq}`);
      return;
    }
    awaitingPeer = false;
    let resent = 0;
    for (const k of sent.pending()) {
      env.send(encodePacket(k.type, streamId, k.seq, k.payload));
      if (k.type === PacketType.DATA && k.payload) resent += k.payload.byteLength;
    }
    sendCredit = credit - resent + pendingCredit;
    pendingCredit = 0;
    if (sendCredit > env.sendWindow.max) {
      reset(ResetReason.FLOW_VIOLATION, `credit ${sendCredit} after resume exceeds window ${env.sendWindow.max}`);
      return;
    }
    if (stash && sendCredit > 0) {
      const rest = stash;
      stash = null;
      sendData(rest);
    }
    if (!stash && readEnded) sendFin();
    else if (!stash) startReading();
    maybeDone();
  }

  // ---- the end ----

  function maybeDone(): void {
    if (finSent && inboundFinished && !paused()) finish(null, false);
  }

  function reset(reason: string, detail: string): void {
    if (over) return;
    const text = `${reason}: ${detail}`;
    env.send(encodePacket(PacketType.RESET, streamId, 0, Buffer.from(text.slice(0, 200), 'utf8')));
    finish(text, true);
  }

  function finish(reason: string | null, sentReset: boolean): void {
    if (over) return;
    over = true;
    if (pendingTimer) clearTimeout(pendingTimer);
    if (connectHold) clearTimeout(connectHold);
    inbound.held.clear();
    env.release(window.grown());
    // A reset reaches the application as a reset (RST), not as a clean end of stream. But libuv
    // refuses an RST once our write side is shut down or while connecting, and Node then leaves the
    // handle open (a worker holding one never terminates): then a plain destroy. After both FINs the
    // socket finishes its own close once its write buffer is flushed.
    if (socket && reason !== null && !socket.destroyed) {
      if (socket.writableEnded || socket.connecting) socket.destroy();
      else socket.resetAndDestroy();
    }
    env.done(reason, sentReset);
  }

  function abort(reason: string, tellPeer: boolean): void {
    if (over) return;
    if (tellPeer) reset(reason, 'aborted');
    else finish(reason, false);
  }

  return { packet, abort, suspend, resume };
}
