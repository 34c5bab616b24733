// One side of the lab's raw-DataChannel scenario (rawdc.ts), as its own process in a lab site. No
// tunnel code: node-datachannel PeerConnections (one by default) with one DataChannel each, so what it
// shows on a lab path is libdatachannel/usrsctp's own behaviour.
//
// This process's main thread is the only one that loads node-datachannel (a second thread that loads
// it aborts the process); it calls cleanup() before it exits, or it would not exit.
//
//   offer   creates the channels and sends, on each, `messageBytes` messages as fast as bufferedAmount allows
//           (stop at highWater, resume on onBufferedAmountLow below lowWater, 20 ms polling fallback)
//           for `seconds`, lets the buffer drain (bounded), then closes.
//   answer  counts what arrives on all of them and reports it every second.
//
// The config comes as JSON in argv[2]; signaling and reports go over the IPC channel to rawdc.ts.

import ndc from 'node-datachannel';

export interface RawDcPeerConfig {
  role: 'offer' | 'answer';
  iceServers: string[];
  relayOnly: boolean;
  /** RtcConfig.mtu (bytes); libdatachannel's default is 1280. */
  mtu?: number;
  /** Process-wide usrsctp settings, applied before the PeerConnection exists. */
  sctp?: ndc.SctpSettings;
  seconds: number;
  messageBytes: number;
  highWater: number;
  lowWater: number;
  ordered: boolean;
  /** The channel's maxRetransmits (partially reliable): 65535 keeps usrsctp off the SACK fast path
   *  whose retransmission timer never restarts, the cause of the collapse (see the tunnel's
   *  src/webrtc/peer.ts). Unset: fully reliable, as WebRTC's default. */
  maxRetransmits?: number;
  /** libdatachannel's log level, to stderr (Verbose shows SCTP). */
  log?: ndc.LogLevel;
  /** PeerConnections (so SCTP associations) in this process, each with one channel, sending at once:
   *  what the tunnel's bulk lanes are. Default 1. */
  pcs?: number;
  /** Before closing, report `hold` and wait (bounded) for `release`, so that the harness can read
   *  this process's SCTP counters (sctp-stats.ts) while its associations still exist. */
  holdForStats?: boolean;
}

export type RawDcReport =
  | { t: 'signal'; pc: number; sdp: string; type: string }
  | { t: 'signal'; pc: number; cand: string; mid: string }
  | { t: 'state'; state: string; atMs: number }
  | { t: 'open'; local: string; remote: string; atMs: number }
  | { t: 'tick'; second: number; MBps: number }
  | { t: 'done'; role: 'offer' | 'answer'; bytes: number; ms: number; leftBuffered?: number; rttMs?: number }
  | { t: 'error'; message: string }
  | { t: 'hold' }
  | { t: 'release' };

/** Time to let bufferedAmount drain after sending ends (ms). */
const DRAIN_LIMIT_MS = 20_000;
/** Wait after the buffer drained before closing, plus 4 RTT (ms). */
const CLOSE_GRACE_MS = 1000;
/** Polling fallback in case onBufferedAmountLow is missed (ms). */
const POLL_MS = 20;
/** Beyond the scenario's own time: signaling, ICE, draining, a hold for the counters (s). */
const HARD_LIMIT_MARGIN_S = 40;
/** The longest a hold for the counters waits for its release (ms). */
const HOLD_LIMIT_MS = 30_000;

const config = JSON.parse(process.argv[2] ?? '{}') as RawDcPeerConfig;
const report = (m: RawDcReport) => process.send?.(m);
const t0 = Date.now();
setTimeout(() => { report({ t: 'error', message: 'hard time limit' }); finish(3); }, (config.seconds + HARD_LIMIT_MARGIN_S) * 1000).unref();

if (config.log) ndc.initLogger(config.log, (level, message) => process.stderr.write(`libdatachannel ${level} ${message}\n`));
if (config.sctp) ndc.setSctpSettings(config.sctp);

const pcs = Array.from({ length: Math.max(1, config.pcs ?? 1) }, (_, i) => {
  const pc = new ndc.PeerConnection(`rawdc-${config.role}-${i}`, {
    iceServers: config.iceServers,
    ...(config.relayOnly ? { iceTransportPolicy: 'relay' as const } : {}),
    ...(config.mtu ? { mtu: config.mtu } : {}),
  });
  pc.onLocalDescription((sdp, type) => report({ t: 'signal', pc: i, sdp, type }));
  pc.onLocalCandidate((cand, mid) => report({ t: 'signal', pc: i, cand, mid }));
  pc.onStateChange((state) => report({ t: 'state', state, atMs: Date.now() - t0 }));
  return pc;
});
const keep: ndc.DataChannel[] = []; // an unreferenced channel is garbage-collected and closes

let release: (() => void) | null = null;
process.on('message', (m: RawDcReport) => {
  if (m.t === 'release') { release?.(); return; }
  const pc = m.t === 'signal' ? pcs[m.pc] : undefined;
  if (!pc || m.t !== 'signal') return;
  if ('sdp' in m) pc.setRemoteDescription(m.sdp, m.type as ndc.DescriptionType);
  else { try { pc.addRemoteCandidate(m.cand, m.mid); } catch { /* a candidate it cannot use */ } }
});
process.on('disconnect', () => { if (release) release(); else finish(0); });

let finished = false;
function finish(code: number): void {
  if (finished) return;
  finished = true;
  if (config.holdForStats && process.connected) {
    const timer = setTimeout(() => release?.(), HOLD_LIMIT_MS);
    release = () => { release = null; clearTimeout(timer); close(code); };
    report({ t: 'hold' });
  } else {
    close(code);
  }
}

function close(code: number): void {
  for (const pc of pcs) { try { pc.close(); } catch { /* closed */ } }
  ndc.cleanup();
  setTimeout(() => process.exit(code), 100);
}

/** Starts sending (or counting) once every PeerConnection's channel is open, so the associations run
 *  side by side from the same moment. */
const opening: ndc.DataChannel[] = [];
function opened(dc: ndc.DataChannel): void {
  opening.push(dc);
  if (opening.length < pcs.length) return;
  const pair = pcs[0]?.getSelectedCandidatePair();
  const show = (c: ndc.SelectedCandidateInfo | undefined) => c ? `${c.type} ${c.address}:${c.port}` : '?';
  report({ t: 'open', local: show(pair?.local), remote: show(pair?.remote), atMs: Date.now() - t0 });
  if (config.role === 'offer') sendAll(opening); else receive(opening);
}

/** Sends on every channel; reports done when all have drained. */
function sendAll(dcs: ndc.DataChannel[]): void {
  let sent = 0;
  let left = dcs.length;
  const start = Date.now();
  dcs.forEach((dc, i) => send(dc, (bytes, leftBuffered) => {
    sent += bytes;
    if (--left > 0) return;
    const rttMs = pcs[i]?.rtt();
    report({ t: 'done', role: 'offer', bytes: sent, ms: Date.now() - start, leftBuffered, ...(rttMs !== undefined ? { rttMs } : {}) });
    setTimeout(() => { for (const c of dcs) c.close(); setTimeout(() => finish(0), 500); }, CLOSE_GRACE_MS + 4 * Math.max(0, rttMs ?? 0));
  }));
}

function send(dc: ndc.DataChannel, done: (bytes: number, leftBuffered: number) => void): void {
  const message = Buffer.alloc(config.messageBytes, 0x5a);
  const start = Date.now();
  const end = start + config.seconds * 1000;
  let sent = 0;
  let ending = false;
  dc.setBufferedAmountLowThreshold(config.lowWater);
  const pump = () => {
    try {
      while (Date.now() < end && dc.bufferedAmount() < config.highWater) {
        dc.sendMessageBinary(message);
        sent += message.byteLength;
      }
    } catch (err) {
      report({ t: 'error', message: (err as Error).message });
      finish(1);
      return;
    }
    if (Date.now() < end || ending) return;
    ending = true;
    clearInterval(poll);
    const drainStart = Date.now();
    const drain = setInterval(() => {
      if (dc.bufferedAmount() > 0 && Date.now() - drainStart < DRAIN_LIMIT_MS) return;
      clearInterval(drain);
      // bufferedAmount counts only libdatachannel's queue: what usrsctp still holds needs a few more
      // round trips before the close (a stream reset) ends the receiver's count (sendAll waits them)
      done(sent, dc.bufferedAmount());
    }, 50);
  };
  dc.onBufferedAmountLow(pump);
  const poll = setInterval(pump, POLL_MS);
  pump();
}

function receive(dcs: ndc.DataChannel[]): void {
  const start = Date.now();
  let total = 0;
  let thisSecond = 0;
  let second = 0;
  let last = start;
  let open = dcs.length;
  const tick = setInterval(() => {
    const now = Date.now();
    report({ t: 'tick', second: ++second, MBps: +(thisSecond / 1e6 / ((now - last) / 1000)).toFixed(2) });
    thisSecond = 0;
    last = now;
  }, 1000);
  for (const dc of dcs) {
    dc.onMessage((m) => {
      const n = typeof m === 'string' ? Buffer.byteLength(m) : m.byteLength;
      total += n;
      thisSecond += n;
    });
    dc.onClosed(() => {
      if (--open > 0) return;
      clearInterval(tick);
      report({ t: 'done', role: 'answer', bytes: total, ms: Date.now() - start });
      finish(0);
    });
  }
}

if (config.role === 'offer') {
  for (const pc of pcs) {
    const dc = pc.createDataChannel('rawdc', { unordered: !config.ordered, ...(config.maxRetransmits !== undefined ? { maxRetransmits: config.maxRetransmits } : {}) });
    keep.push(dc);
    dc.onOpen(() => opened(dc));
  }
} else {
  for (const pc of pcs) {
    pc.onDataChannel((dc) => {
      keep.push(dc);
      if (dc.isOpen()) opened(dc); else dc.onOpen(() => opened(dc));
    });
  }
}
