// One side of the raw DataChannel baseline, as its own process (`offer` or `answer` in argv). The
// harness relays SDP and candidates between the two sides over IPC, then drives them with jobs
// (see jobs.ts). The channel is what the tunnel uses: reliable, unordered, full-size messages, the
// same bufferedAmount marks with onBufferedAmountLow and a polling fallback.
//
// This is the only thread of this process that loads node-datachannel, and it calls cleanup() at the
// end (without it the process does not exit).

import ndc from 'node-datachannel';
import { tuneGarbageCollector } from '../src/gc.js';
import { defaultMtu } from '../src/webrtc/mtu.js';
import { MAX_RETRANSMITS } from '../src/webrtc/channels.js';
import { SCTP_SETTINGS } from '../src/webrtc/sctp-settings.js';
import { serve } from './ipc.js';
import { summarize } from './stats.js';
import type { RawJob, RawSignal } from './jobs.js';
import { RAW_MESSAGE_BYTES, HIGH_WATER_BYTES, LOW_WATER_BYTES, DRAIN_POLL_MS, ICE_BIND } from './raw-constants.js';

// the same V8 setting as the tunnel's processes, so the baseline is not held back by what the tunnel
// was relieved of
tuneGarbageCollector();

/** First byte of every message: what it is. */
const BULK = 1;
const PING = 2;
const PONG = 3;

const role = process.argv[2] === 'offer' ? 'offer' : 'answer';
const onLoopback = (cand: string) => cand.replace(/^a=/, '').split(' ')[4] === ICE_BIND;

// the tunnel's own transport settings, so the baseline is the transport the tunnel gets: the MTU it
// picks on loopback (TUNNEL_BENCH_MTU overrides both, for a sweep), its SCTP settings and channel options
const mtu = Number(process.env.TUNNEL_BENCH_MTU) || defaultMtu(ICE_BIND, 0);
ndc.setSctpSettings(SCTP_SETTINGS);
const pc = new ndc.PeerConnection(`raw-${role}`, { iceServers: [], bindAddress: ICE_BIND, mtu });
pc.onLocalDescription((sdp, type) => process.send?.({ t: 'signal', sdp, type } satisfies RawSignal));
pc.onLocalCandidate((cand, mid) => { if (onLoopback(cand)) process.send?.({ t: 'signal', cand, mid } satisfies RawSignal); });

let channel: ndc.DataChannel | null = null; // kept referenced: an unreferenced channel is collected and closes
let opened: Promise<ndc.DataChannel> | null = null;
let received = 0;
let expecting: { bytes: number; resolve(): void } | null = null;
let pong: (() => void) | null = null;

function wire(dc: ndc.DataChannel): Promise<ndc.DataChannel> {
  channel = dc;
  dc.setBufferedAmountLowThreshold(LOW_WATER_BYTES);
  dc.onMessage((msg) => {
    if (typeof msg === 'string' || !Buffer.isBuffer(msg)) return;
    const kind = msg[0];
    if (kind === BULK) {
      received += msg.byteLength;
      if (expecting && received >= expecting.bytes) {
        const e = expecting;
        expecting = null;
        e.resolve();
      }
    } else if (kind === PING) {
      msg[0] = PONG;
      dc.sendMessageBinary(msg);
    } else if (kind === PONG) {
      pong?.();
    }
  });
  return new Promise((resolve) => { if (dc.isOpen()) resolve(dc); else dc.onOpen(() => resolve(dc)); });
}

process.on('message', (m: RawSignal | { id: number }) => {
  if (!('t' in m) || m.t !== 'signal') return;
  if ('sdp' in m) pc.setRemoteDescription(m.sdp, m.type as ndc.DescriptionType);
  else pc.addRemoteCandidate(m.cand, m.mid);
});

if (role === 'answer') {
  opened = new Promise((resolve) => pc.onDataChannel((dc) => { void wire(dc).then(resolve); }));
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: not done in ${ms} ms`)), ms);
    promise.then((v) => { clearTimeout(timer); resolve(v); }, (e: unknown) => { clearTimeout(timer); reject(e); });
  });
}

function current(): ndc.DataChannel {
  if (!channel) throw new Error('no channel yet');
  return channel;
}

/** Full-size messages while bufferedAmount is under the high mark; resumes on the low event. */
function send(bytes: number, timeoutMs: number): Promise<void> {
  const dc = current();
  const message = Buffer.alloc(RAW_MESSAGE_BYTES, 0x5a);
  message[0] = BULK;
  let sent = 0;
  return withTimeout(new Promise<void>((resolve) => {
    const poll = setInterval(pump, DRAIN_POLL_MS);
    function pump(): void {
      while (sent < bytes) {
        if (dc.bufferedAmount() >= HIGH_WATER_BYTES) return;
        const n = Math.min(RAW_MESSAGE_BYTES, bytes - sent);
        dc.sendMessageBinary(n === RAW_MESSAGE_BYTES ? message : message.subarray(0, n));
        sent += n;
      }
      clearInterval(poll);
      dc.onBufferedAmountLow(() => {});
      resolve();
    }
    dc.onBufferedAmountLow(pump);
    pump();
  }), timeoutMs, 'send');
}

async function ping(size: number, count: number, warmup: number, timeoutMs: number) {
  const dc = current();
  const message = Buffer.alloc(size, 0x33);
  const samples: number[] = [];
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < warmup + count && Date.now() < deadline; i++) {
    message[0] = PING;
    const start = process.hrtime.bigint();
    await withTimeout(new Promise<void>((resolve) => { pong = resolve; dc.sendMessageBinary(message); }), Math.max(1, deadline - Date.now()), 'ping');
    const us = Number(process.hrtime.bigint() - start) / 1000;
    if (i >= warmup) samples.push(us);
  }
  pong = null;
  return { ok: samples.length === count, latency: summarize(samples) };
}

function close(): void {
  try { channel?.close(); } catch { /* closed */ }
  try { pc.close(); } catch { /* closed */ }
  ndc.cleanup();
}

serve<RawJob>(async (job) => {
  switch (job.t) {
    case 'open':
      if (role === 'offer' && !opened) opened = wire(pc.createDataChannel('bench', { unordered: true, maxRetransmits: MAX_RETRANSMITS }));
      if (!opened) throw new Error('no channel');
      await withTimeout(opened, job.timeoutMs, 'open');
      return { maxMessageSize: current().maxMessageSize() };
    case 'expect': {
      const target = received + job.bytes;
      if (received >= target) return { bytes: received };
      await withTimeout(new Promise<void>((resolve) => { expecting = { bytes: target, resolve }; }), job.timeoutMs, 'expect');
      return { bytes: received };
    }
    case 'send': await send(job.bytes, job.timeoutMs); return {};
    case 'ping': return ping(job.size, job.count, job.warmup, job.timeoutMs);
    case 'cpu': { const u = process.cpuUsage(); return { us: u.user + u.system }; }
    case 'close':
      close();
      setTimeout(() => process.exit(0), 50).unref();
      return {};
  }
});
process.on('disconnect', close);
