// The raw-DataChannel scenario: one unordered node-datachannel DataChannel from host A to host B across
// the lab, no tunnel code, the received MB/s every second. It separates what libdatachannel/usrsctp
// does on a lab path (RTT 40 ms: a collapse after a few seconds, DESIGN.md section 6) from what the
// tunnel adds, and shows a change to the SCTP settings, the MTU or the buffer marks before and after.
//
// Each side is its own process in its site (rawdc-peer.ts); this harness relays their signaling over
// IPC (out of band, so signaling never competes with the data on the path), collects the reports and
// ends them. node-datachannel is loaded only in those processes.
//
//   npx node dist/bench/lab/rawdc.js --seconds 20 --delay-ms 20              # RTT 40 ms, defaults
//   npx node dist/bench/lab/rawdc.js --delay-ms 20 --sctp '{"recvBufferSize":4194304,"sendBufferSize":4194304}'
//   npx node dist/bench/lab/rawdc.js --relay --nat-a symmetric --nat-b symmetric --mtu 1400 --json
//
// Flags: --seconds S (default 20), --delay-ms, --loss-pct, --rate-mbit, --nat-a/--nat-b MODE,
// --relay (TURN only, iceTransportPolicy relay), --mtu BYTES, --sctp JSON (setSctpSettings, both sides),
// --high/--low BYTES (bufferedAmount marks, default 4 MiB / 1 MiB as the tunnel), --msg BYTES (default
// 65520, one DATA packet's payload), --ordered, --max-retransmits N (65535: the collapse's fix),
// --pcs N (PeerConnections per process, each with a channel, all sending: the tunnel's lanes),
// --pairs N (that many sending and receiving processes side by side; per-second figures are summed),
// --prefix (default dcr), --log LEVEL (libdatachannel's log to stderr), --json (one JSON object at the
// end instead of the table), --sctp-stats (root, gdb: each side's usrsctp and UDP counters at its end,
// sctp-stats.ts; shows packets the kernel delivered that the receiving process lost).

import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import type { SctpSettings, LogLevel } from 'node-datachannel';
import { startLab, type Lab, type NatMode, type Shape } from './lab.js';
import type { RawDcPeerConfig, RawDcReport } from './rawdc-peer.js';
import { lineLog } from './processes.js';
import { readProcessCounters, sctpStatsUnavailable, type ProcessCounters } from './sctp-stats.js';

const PEER = fileURLToPath(new URL('./rawdc-peer.js', import.meta.url));

export interface RawDcOptions {
  seconds?: number;
  relayOnly?: boolean;
  /** ICE servers (default: the lab's STUN and TURN). */
  iceServers?: string[];
  mtu?: number;
  sctp?: SctpSettings;
  highWater?: number;
  lowWater?: number;
  messageBytes?: number;
  ordered?: boolean;
  maxRetransmits?: number;
  log?: LogLevel;
  /** PeerConnections per process (see rawdc-peer.ts). */
  pcs?: number;
  /** Read each peer's usrsctp and UDP counters at its end (sctp-stats.ts; root, gdb). */
  sctpStats?: boolean;
  /** Each received-MB/s second as it comes. */
  onSecond?: (second: number, MBps: number) => void;
}

export interface RawDcResult {
  ok: boolean;
  error?: string;
  /** The selected candidate pair, as each side saw it ("relay 203.0.113.1:49160"). */
  offer: { local: string; remote: string } | null;
  answer: { local: string; remote: string } | null;
  /** Time from start to an open channel on the receiving side (ms). */
  openMs: number;
  perSecond: number[];
  sentMB: number;
  receivedMB: number;
  /** Received MB over the receiving side's whole time (open to close, draining included). */
  MBps: number;
  leftBuffered: number;
  rttMs: number | null;
  /** With `sctpStats`: each side's counters at its end. */
  processCounters?: { offer?: ProcessCounters; answer?: ProcessCounters };
}

/** What the channel moves by default: the tunnel's settings (bench/raw-constants.ts). */
const DEFAULTS = { seconds: 20, highWater: 4 * 1024 * 1024, lowWater: 1024 * 1024, messageBytes: 64 * 1024 - 16 };
/** Signaling, ICE and the drain, beyond the scenario's own seconds (ms). */
const RUN_MARGIN_MS = 45_000;

export async function runRawDc(lab: Lab, opts: RawDcOptions = {}): Promise<RawDcResult> {
  const seconds = opts.seconds ?? DEFAULTS.seconds;
  const base: Omit<RawDcPeerConfig, 'role'> = {
    iceServers: opts.iceServers ?? [lab.stunUrl, lab.turnUrl],
    relayOnly: opts.relayOnly ?? false,
    seconds,
    messageBytes: opts.messageBytes ?? DEFAULTS.messageBytes,
    highWater: opts.highWater ?? DEFAULTS.highWater,
    lowWater: opts.lowWater ?? DEFAULTS.lowWater,
    ordered: opts.ordered ?? false,
    ...(opts.mtu ? { mtu: opts.mtu } : {}),
    ...(opts.maxRetransmits !== undefined ? { maxRetransmits: opts.maxRetransmits } : {}),
    ...(opts.sctp ? { sctp: opts.sctp } : {}),
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.pcs ? { pcs: opts.pcs } : {}),
    ...(opts.sctpStats ? { holdForStats: true } : {}),
  };
  const start = Date.now();
  const spawnPeer = (role: 'offer' | 'answer', site: 'a' | 'b') =>
    lab.spawn(site, process.execPath, [PEER, JSON.stringify({ ...base, role } satisfies RawDcPeerConfig)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  const offer = spawnPeer('offer', 'a');
  const answer = spawnPeer('answer', 'b');
  const logs = [lineLog(offer, ['stderr']), lineLog(answer, ['stderr'])];
  const result: RawDcResult = { ok: false, offer: null, answer: null, openMs: NaN, perSecond: [], sentMB: 0, receivedMB: 0, MBps: 0, leftBuffered: 0, rttMs: null };

  // With sctpStats a peer holds before closing: it is read, then released. A read settles when it is
  // done or its peer has exited without holding.
  const reads = opts.sctpStats ? ([['offer', offer], ['answer', answer]] as const).map(([side, child]) => new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.on('message', (m: RawDcReport) => {
      if (m.t !== 'hold' || child.pid === undefined) return;
      readProcessCounters(child.pid)
        .then((c) => { (result.processCounters ??= {})[side] = c; })
        .catch((err: unknown) => { result.error ??= `${side}: counters not read: ${(err as Error).message}`; })
        .finally(() => { if (child.connected) child.send({ t: 'release' } satisfies RawDcReport); resolve(); });
    });
  })) : [];

  const relay = (to: ChildProcess) => (m: RawDcReport) => { if (m.t === 'signal' && to.connected) to.send(m); };
  offer.on('message', relay(answer));
  answer.on('message', relay(offer));

  const done = new Promise<void>((resolve) => {
    let ended = 0;
    const fail = (message: string) => { result.error ??= message; resolve(); };
    const onReport = (side: 'offer' | 'answer') => (m: RawDcReport) => {
      if (m.t === 'open') {
        result[side] = { local: m.local, remote: m.remote };
        if (side === 'answer') result.openMs = Date.now() - start;
      } else if (m.t === 'tick') {
        result.perSecond.push(m.MBps);
        opts.onSecond?.(m.second, m.MBps);
      } else if (m.t === 'done') {
        if (m.role === 'offer') { result.sentMB = m.bytes / 1e6; result.leftBuffered = m.leftBuffered ?? 0; result.rttMs = m.rttMs ?? null; }
        else { result.receivedMB = m.bytes / 1e6; result.MBps = m.bytes / 1e6 / (m.ms / 1000); }
        if (++ended === 2) resolve();
      } else if (m.t === 'error') {
        fail(`${side}: ${m.message}`);
      } else if (m.t === 'state' && m.state === 'failed') {
        fail(`${side}: PeerConnection failed (ICE found no path)`);
      }
    };
    offer.on('message', onReport('offer'));
    answer.on('message', onReport('answer'));
    for (const [side, child] of [['offer', offer], ['answer', answer]] as const) {
      child.once('exit', (code) => { if (code !== 0) fail(`${side} exited (${code}): ${logs[side === 'offer' ? 0 : 1]?.lines.slice(-5).join(' | ')}`); });
    }
    setTimeout(() => fail('not done in time'), seconds * 1000 + RUN_MARGIN_MS).unref();
  });
  await done;
  await Promise.all(reads); // each peer's hold comes within seconds of its end, and is bounded there
  result.ok = !result.error && result.receivedMB > 0;
  for (const child of [offer, answer]) if (child.connected) child.disconnect();
  return result;
}

// ---- command line ----

function table(r: RawDcResult): string {
  const rows = [
    ['path (offer side)', r.offer ? `${r.offer.local} -> ${r.offer.remote}` : '-'],
    ['open after', `${r.openMs.toFixed(0)} ms`],
    ['per second, MB/s', r.perSecond.map((x) => x.toFixed(1)).join(' ')],
    ['sent / received', `${r.sentMB.toFixed(1)} / ${r.receivedMB.toFixed(1)} MB`],
    ['average', `${r.MBps.toFixed(2)} MB/s`],
    ['left buffered at close', `${r.leftBuffered} B`],
    ['SCTP RTT (libdatachannel)', r.rttMs === null ? '-' : `${r.rttMs} ms`],
    ...countersRows(r),
  ];
  return rows.map(([k, v]) => `${(k ?? '').padEnd(32)} ${v}`).join('\n');
}

/** --sctp-stats: what each side's kernel and usrsctp counted, and what went missing in between. */
function countersRows(r: RawDcResult): string[][] {
  const { offer, answer } = r.processCounters ?? {};
  if (!offer || !answer) return [];
  return [
    ['A sent (UDP) / B received (UDP)', `${offer.udp.outDatagrams} / ${answer.udp.inDatagrams} datagrams (B's socket dropped ${answer.udp.rcvbufErrors})`],
    ['B usrsctp packets', `${answer.sctp.inpackets}: ${answer.udp.inDatagrams - answer.sctp.inpackets} delivered by the kernel and lost in the process (STUN included)`],
    ['A retransmitted', `${offer.sctp.sendretransdata} DATA chunks of ${offer.sctp.senddata} (${offer.sctp.sendfastretrans} fast, ${offer.sctp.timodata} T3 expiries)`],
    ['B duplicates', `${answer.sctp.recvdupdata} (retransmissions of chunks that had arrived)`],
  ];
}

/** Several pairs' results as one: bytes and per-second figures summed. */
function sumOf(results: RawDcResult[]): RawDcResult {
  const [first, ...rest] = results;
  if (!first) throw new Error('no result');
  const sum = { ...first, perSecond: [...first.perSecond] };
  for (const r of rest) {
    sum.ok &&= r.ok;
    sum.error ??= r.error;
    r.perSecond.forEach((x, i) => { sum.perSecond[i] = +((sum.perSecond[i] ?? 0) + x).toFixed(2); });
    sum.sentMB += r.sentMB;
    sum.receivedMB += r.receivedMB;
    sum.MBps += r.MBps;
    sum.leftBuffered += r.leftBuffered;
  }
  return sum;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string' }, 'delay-ms': { type: 'string' }, 'loss-pct': { type: 'string' }, 'rate-mbit': { type: 'string' },
      'nat-a': { type: 'string' }, 'nat-b': { type: 'string' }, relay: { type: 'boolean' }, mtu: { type: 'string' },
      sctp: { type: 'string' }, high: { type: 'string' }, low: { type: 'string' }, msg: { type: 'string' },
      ordered: { type: 'boolean' }, prefix: { type: 'string' }, log: { type: 'string' }, json: { type: 'boolean' },
      'max-retransmits': { type: 'string' }, pcs: { type: 'string' }, pairs: { type: 'string' },
      'sctp-stats': { type: 'boolean' },
    },
  });
  if (values['sctp-stats']) {
    const why = sctpStatsUnavailable();
    if (why) throw new Error(why);
    if (Number(values.pairs ?? 1) > 1) throw new Error('--sctp-stats reads one pair: leave out --pairs');
  }
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const shape: Shape = { delayMs: num(values['delay-ms']) ?? 0, lossPct: num(values['loss-pct']) ?? 0, rateMbit: num(values['rate-mbit']) ?? 0 };
  const lab = await startLab({
    prefix: values.prefix ?? 'dcr',
    nat: { a: (values['nat-a'] ?? 'cone') as NatMode, b: (values['nat-b'] ?? 'cone') as NatMode },
    shape,
  });
  try {
    const opts: RawDcOptions = {
      relayOnly: values.relay ?? false,
      ordered: values.ordered ?? false,
      onSecond: (s, MBps) => { if (!values.json) process.stdout.write(JSON.stringify({ t: s, MBps }) + '\n'); },
    };
    const set = <K extends keyof RawDcOptions>(k: K, v: RawDcOptions[K] | undefined) => { if (v !== undefined) opts[k] = v; };
    set('seconds', num(values.seconds));
    set('mtu', num(values.mtu));
    set('maxRetransmits', num(values['max-retransmits']));
    set('highWater', num(values.high));
    set('lowWater', num(values.low));
    set('messageBytes', num(values.msg));
    set('sctp', values.sctp ? JSON.parse(values.sctp) as SctpSettings : undefined);
    set('log', values.log as LogLevel | undefined);
    set('pcs', num(values.pcs));
    set('sctpStats', values['sctp-stats']);
    const pairs = Math.max(1, num(values.pairs) ?? 1);
    if (pairs > 1) delete opts.onSecond; // the sum is printed at the end
    const result = sumOf(await Promise.all(Array.from({ length: pairs }, () => runRawDc(lab, opts))));
    const counters = await lab.counters();
    const forwarders = await lab.forwarderStats();
    if (values.json) process.stdout.write(JSON.stringify({ shape, nat: lab.nat, ...result, counters, forwarders }) + '\n');
    else process.stdout.write(`${table(result)}\ncounters: ${JSON.stringify(counters)}\n${forwarders.join('\n')}\n`);
    process.exitCode = result.ok ? 0 : 1;
    if (!result.ok) process.stderr.write(`rawdc: ${result.error ?? 'nothing received'}\n`);
  } finally {
    await lab.down();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => { process.stderr.write(`rawdc: ${(err as Error).message}\n`); process.exit(1); });
}
