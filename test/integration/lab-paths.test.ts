// Issue 11's network-lab cases: the tunnel CLI across two NAT routers and a public namespace with a
// real coturn and the real PeerJS server (bench/lab/). `tunnel host` runs in site B beside an echo
// service, `tunnel client` in site A; every case that connects moves 16 MiB through the tunnel and
// back (a 16 MiB echo round trip, compared byte for byte), and checks the path twice: from the
// `path:` lines both CLIs print, and from the lab's nft counters in PUB (which link the bytes crossed).
//
//   case                                   lab (NATs)                 expected path
//   (a) cone NATs + STUN                   cone / cone                direct (srflx|prflx): UDP A↔B
//   (b) symmetric NATs + TURN              symmetric / symmetric      relayed (TURN): coturn's relay ports
//   (c) symmetric NATs, no TURN            symmetric / symmetric      --no-fallback: exit 2 ~15 s after
//                                                                     signaling (< 25 s asserted), one
//                                                                     sentence naming --ice-server turn:;
//                                                                     fallback on: websocket fallback (TCP)
//   (d) rendezvous, closed host router     cone / closed, PeerJS      direct through the hole punched
//   (e) UDP blocked between the sites      cone / cone, UDP dropped   websocket fallback (TCP)
//
// The four labs run at once (prefixes dcpa, dcps, dcpd, dcpu), each as its own suite. In the symmetric
// lab one host serves (c)'s two clients at once (the one that fails, the one that falls back), then (b):
// a client failing ICE leaves the host serving others, during and after.
//
// Facts of this lab (bench/lab/README.md): no netem in this kernel (delay.c, a TUN forwarder, adds
// delay; `tc tbf` limits rate; neither is used here: the cases are about the path, not the shape);
// nft counters count IP packets with their headers on the last hop out of PUB; coturn's relay ports
// are 49160-49223; two relay-only sides (relay ↔ relay over PUB's loopback) run at only 1.5-2.5 MB/s
// because coturn's 128 KiB socket buffers overflow, so (b) gives TURN to the client only: relay ↔ prflx,
// one hop through coturn. Overheads in the byte thresholds: SCTP/DTLS/UDP/IP headers on the direct
// path, +4 bytes per packet of TURN ChannelData, +16 bytes per message plus WebSocket framing and TCP/IP
// headers on the fallback: each is a floor of 2 × 16 MiB (payload only), which every real path exceeds.
//
// Per case it prints (t.diagnostic) the path, the time from starting the client process to its `path:`
// line (and from the host's PIN check to it: the part without Node's start-up), and the echo's MB/s (10^6 B/s each way); README's "Measured in the network lab" holds medians.
// Needs root and the lab's tools; skips with the reason otherwise. About 30-40 s unloaded (the longest
// suite is the symmetric lab's: 16 s of (c) failing, then (b)); longer on a loaded machine.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startLab, labSkipReason, PEERJS, type Lab, type Counters } from '../../bench/lab/lab.js';
import { spawnIn, running, tail, stopProcess as stopCli, nthLine, arrival, type LabProcess as Cli } from '../support/lab-process.js';

const skip = labSkipReason();
/** LAB_PATHS_SERIAL=1: one lab after the other (for figures undisturbed by the other cases; ~2x longer). */
const SERIAL = process.env.LAB_PATHS_SERIAL === '1';
const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const ECHO = fileURLToPath(new URL('../support/lab-echo.js', import.meta.url));

const MiB = 1024 * 1024;
/** Bytes each case moves each way (the issue: at least 16 MiB, byte-exact). */
const BYTES = 16 * MiB;
/** What "no traffic on that path" allows: ICE's connectivity checks and STUN (a few KB), never data. */
const NONE = 256 * 1024;
const SIGNALING_PORT = 8765;
const ECHO_PORT = 7007;
const FORWARD_PORT = 20002;
/**
 * Bounds (ms), for a shared 2-core machine where Node itself may take seconds to start. A direct or
 * relayed path connects in 1-3 s here; the fallback after the 8 s ICE timeout; a failure after 15 s.
 */
const CONNECT_MS = 45_000;
const FALLBACK_CONNECT_MS = 55_000;
/** The fallback's ICE timeout is 8 s from the client's ICE start, which comes after the host logs the
 *  PIN check; both lines are stamped as they arrive here, so allow this process's own lag (ms). */
const ICE_FALLBACK_MS = 7500;
/** The bound for a client without a path to give up (ICE_TIMEOUT_MS is 15 s). */
const FAIL_MS = 30_000;
/** 16 MiB each way at the slowest path here (the fallback, ~5-40 MB/s): seconds; this is only a hang guard. */
const ECHO_MS = 90_000;

const CLIENT_PATH = /^path: (direct \((?:host|srflx|prflx)\)|relayed \(TURN\)|websocket fallback \(TCP\)) (\S+) -> (\S+), rtt (\d+|\?) ms$/;
const HOST_PATH = /^client (\d+) from (\S+): path: (direct \((?:host|srflx|prflx)\)|relayed \(TURN\)|websocket fallback \(TCP\)) (\S+) -> (\S+), rtt (\d+|\?) ms$/;

/** The host's log line for a client that passed the PIN check: signaling done, ICE starts. */
const AUTHENTICATED = / host info client authenticated /;

interface Side { lab: Lab; pin: string; host: Cli; hostClients: number }

/** The echo service and `tunnel host` in B: direct mode (its port forwarded on RB), or `rendezvous`. */
async function startSide(lab: Lab, hostArgs: string[], rendezvous?: string): Promise<Side> {
  const echo = spawnIn(lab, 'b', 'echo service', [ECHO, 'serve', '--port', String(ECHO_PORT)]);
  const pin = String(randomInt(0, 100_000_000)).padStart(8, '0');
  if (!rendezvous) await lab.portForward(SIGNALING_PORT);
  const host = spawnIn(lab, 'b', 'tunnel host', [CLI,
    'host', ...(rendezvous ? ['--rendezvous', rendezvous] : ['--listen', `0.0.0.0:${SIGNALING_PORT}`]),
    '--pin', pin, '--expose', `echo=127.0.0.1:${ECHO_PORT}`, '--quiet', '--log-level', 'info', ...hostArgs,
  ]);
  await echo.out.waitFor(/^listening /, CONNECT_MS, 'the echo service');
  await host.out.waitFor(rendezvous ? /^code: \S+$/ : /^tunnel host listening on /, CONNECT_MS, 'tunnel host');
  return { lab, pin, host, hostClients: 0 };
}

interface Measured {
  path: string;
  hostPath: string;
  /** from starting the client process to its `path:` line (what a user waits) */
  connectMs: number;
  /** from the host logging the client authenticated (signaling done, ICE starting) to the `path:` line:
   *  the network's part, without Node's start-up, which takes seconds on a loaded machine */
  iceMs: number;
  MBps: number;
  counters: Counters;
}

/** The 16 MiB echo round trip from A through the client's forward; resolves with its MB/s. */
async function echoThrough(lab: Lab): Promise<{ MBps: number; ms: number }> {
  const sender = spawnIn(lab, 'a', 'echo sender', [ECHO, 'send', '--port', String(FORWARD_PORT), '--bytes', String(BYTES), '--timeout-ms', String(ECHO_MS)]);
  const { code } = await sender.exited;
  const line = sender.out.lines.at(-1) ?? '';
  let r: { ok?: boolean; bytes?: number; ms?: number; error?: string } = {};
  try { r = JSON.parse(line) as typeof r; } catch { /* reported below */ }
  assert.ok(code === 0 && r.ok === true && r.bytes === BYTES, `echo of ${BYTES} B: exit ${code}, ${line || tail(sender)}`);
  return { MBps: BYTES / 1e6 / ((r.ms ?? 1) / 1000), ms: r.ms ?? 0 };
}

/** A client in A that must connect: its path line, the host's, the echo, the counters of just this case. */
async function connectAndEcho(side: Side, name: string, clientArgs: string[], connectMs: number): Promise<Measured> {
  const { lab } = side;
  await lab.counters({ reset: true });
  const client = spawnIn(lab, 'a', name, [CLI, 'client', ...clientArgs, '--forward', `127.0.0.1:${FORWARD_PORT}=echo`, '--quiet', '--log-level', 'warn']);
  try {
    const m = await nthLine(client, client.out, CLIENT_PATH, 1, connectMs);
    const pathAt = arrival(client, CLIENT_PATH);
    side.hostClients += 1;
    const h = await nthLine(side.host, side.host.out, HOST_PATH, side.hostClients, 10_000);
    const authenticated = arrival(side.host, new RegExp(`${AUTHENTICATED.source}peer=${h[1]} `));
    await nthLine(client, client.out, /^forwarding /, 1, 10_000);
    const { MBps } = await echoThrough(lab);
    const counters = await lab.counters();
    return { path: m[0], hostPath: h[0], connectMs: pathAt - client.t0, iceMs: pathAt - authenticated, MBps, counters };
  } finally {
    await stopCli(client);
  }
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const countersText = (c: Counters) => `udpDirect ${mb(c.udpDirect.bytes)}, udpRelay ${mb(c.udpRelay.bytes)}, udpTurn ${mb(c.udpTurn.bytes)}, tcpDirect ${mb(c.tcpDirect.bytes)}, tcpPub ${mb(c.tcpPub.bytes)}, udpBlocked ${c.udpBlocked.packets} packets`;
const load = () => os.loadavg().map((v) => v.toFixed(1)).join(' ');

function report(t: { diagnostic(s: string): void }, label: string, r: Measured): string {
  const text = `${label}: ${r.path} | connect ${(r.connectMs / 1000).toFixed(1)} s (${(r.iceMs / 1000).toFixed(1)} s after signaling) | ${r.MBps.toFixed(1)} MB/s each way (16 MiB echo) | host: ${r.hostPath} | ${countersText(r.counters)} | load ${load()}`;
  t.diagnostic(text);
  return text;
}

/** The kind in a path line: direct (srflx), relayed (TURN), websocket fallback (TCP). */
const kindOf = (line: string) => (line.match(/path: (.+?\)) /)?.[1] ?? line);

describe('issue 11: the tunnel across NATs in the network lab', { skip: skip ?? false, timeout: SERIAL ? 400_000 : 170_000, concurrency: !SERIAL }, () => {
  describe('(a) cone NATs + STUN', { concurrency: false }, () => {
    let lab: Lab | undefined;
    let side: Side;
    before(async () => {
      lab = await startLab({ prefix: 'dcpa', nat: { a: 'cone', b: 'cone' } });
      side = await startSide(lab, ['--ice-server', lab.stunUrl]);
    });
    after(async () => { await lab?.down(); });

    test('go direct: a srflx/prflx pair, the bytes on UDP between the sites, none through coturn', { timeout: 120_000 }, async (t) => {
      const l = side.lab;
      const r = await connectAndEcho(side, 'client (a)', ['--connect', `ws://${l.addr.rbWan}:${SIGNALING_PORT}`, '--pin', side.pin, '--ice-server', l.stunUrl], CONNECT_MS);
      const text = report(t, '(a) cone + STUN', r);
      assert.match(kindOf(r.path), /^direct \((srflx|prflx)\)$/, text);
      assert.match(kindOf(r.hostPath), /^direct \((srflx|prflx)\)$/, text);
      assert.ok(r.counters.udpDirect.bytes >= 2 * BYTES, `the echo's bytes crossed as UDP between the sites: ${text}`);
      assert.equal(r.counters.udpRelay.bytes, 0, `nothing through coturn's relay ports: ${text}`);
      assert.ok(r.counters.tcpDirect.bytes < NONE, `only the signaling on TCP: ${text}`);
    });
  });

  describe('(b), (c) symmetric NATs: TURN relays; without it the client fails fast or falls back', { concurrency: false }, () => {
    let lab: Lab | undefined;
    let side: Side;
    before(async () => {
      lab = await startLab({ prefix: 'dcps', nat: { a: 'symmetric', b: 'symmetric' } });
      // the host has STUN only: without TURN on the client there is no path at all
      side = await startSide(lab, ['--ice-server', lab.stunUrl]);
    });
    after(async () => { await lab?.down(); });
    const connect = () => ['--connect', `ws://${side.lab.addr.rbWan}:${SIGNALING_PORT}`, '--pin', side.pin];

    describe('(c) no TURN: two clients at once', { concurrency: true }, () => {
      test('--no-fallback: the client exits 2 about 15 s after signaling, with one sentence naming the remedy; the host logs it', { timeout: 90_000 }, async (t) => {
        const l = side.lab;
        const client = spawnIn(l, 'a', 'client (c)', [CLI, 'client', ...connect(), '--ice-server', l.stunUrl, '--no-fallback',
          '--forward', `127.0.0.1:${FORWARD_PORT + 1}=echo`, '--quiet', '--log-level', 'error']);
        // a hang guard only: the bounds are asserted below
        const timer = setTimeout(() => { try { client.child.kill('SIGKILL'); } catch { /* gone */ } }, 75_000);
        const exit = await client.exited;
        const exitAt = client.t0 + exit.ms;
        clearTimeout(timer);
        const stderr = client.err.lines.filter((line) => line.trim() !== '');
        // the host logged this client's PIN check, and then its giving up
        const gaveUp = await nthLine(side.host, side.host.err, /client could not connect: no network path.* peer=(\d+) /, 1, 10_000);
        const afterSignalingMs = exitAt - arrival(side.host, new RegExp(`${AUTHENTICATED.source}peer=${gaveUp[1]} `));
        t.diagnostic(`(c) symmetric, no TURN, --no-fallback: exit ${exit.code} ${(exit.ms / 1000).toFixed(1)} s after the process started, ${(afterSignalingMs / 1000).toFixed(1)} s after signaling: ${stderr.join(' | ')} | load ${load()}`);
        assert.equal(exit.code, 2, `exit status: ${tail(client)}`);
        assert.equal(stderr.length, 1, `one line on stderr: ${stderr.join(' | ')}`);
        assert.match(stderr[0] ?? '', /no network path to the host: .*symmetric NATs.*add a TURN server with --ice-server turn:/);
        assert.ok(!client.out.lines.some((line) => CLIENT_PATH.test(line)), 'no path printed');
        // The issue: gone within ~30 s. The tunnel's own part is the 15 s ICE timeout after signaling; on a
        // loaded 2-core machine Node alone may take 10-15 s to start before that, so the 30 s bound is on
        // the part after signaling (with start-up it is reported above; unloaded it is ~16 s in all).
        assert.ok(afterSignalingMs >= 14_000 && afterSignalingMs < FAIL_MS - 5_000, `gave up ${afterSignalingMs.toFixed(0)} ms after signaling (the ICE timeout is 15 s)`);
        assert.ok(running(side.host), 'the host is still up');
      });

      test('the fallback on: websocket fallback (TCP) after the 8 s ICE timeout, the bytes on TCP, none on UDP', { timeout: 120_000 }, async (t) => {
        const l = side.lab;
        const r = await connectAndEcho(side, 'client (c, fallback)', [...connect(), '--ice-server', l.stunUrl], FALLBACK_CONNECT_MS);
        const text = report(t, '(c) symmetric, no TURN, fallback', r);
        assert.match(kindOf(r.path), /^websocket fallback \(TCP\)$/, text);
        assert.match(kindOf(r.hostPath), /^websocket fallback \(TCP\)$/, text);
        assert.ok(r.iceMs >= ICE_FALLBACK_MS, `the fallback waits for the 8 s ICE timeout: ${text}`);
        assert.ok(r.counters.tcpDirect.bytes >= 2 * BYTES, `the echo's bytes on TCP between the sites: ${text}`);
        // the other client's failing ICE checks run meanwhile: a few KB, never the echo's 32 MiB
        assert.ok(r.counters.udpDirect.bytes < NONE, `no data on UDP between the sites: ${text}`);
        assert.equal(r.counters.udpRelay.bytes, 0, text);
      });
    });

    test('(b) TURN on the client: relayed (TURN), the bytes through coturn\'s relay ports, none direct; the host serves it after (c)', { timeout: 120_000 }, async (t) => {
      const l = side.lab;
      const r = await connectAndEcho(side, 'client (b)', [...connect(), '--ice-server', l.stunUrl, '--ice-server', l.turnUrl], CONNECT_MS);
      const text = report(t, '(b) symmetric + TURN', r);
      assert.match(kindOf(r.path), /^relayed \(TURN\)$/, text);
      assert.match(kindOf(r.hostPath), /^relayed \(TURN\)$/, text);
      // relayed data crosses a relay port once each way (client → 3478 → relay port → host, and back)
      assert.ok(r.counters.udpRelay.bytes >= 2 * BYTES, `the echo's bytes on coturn's relay ports: ${text}`);
      assert.ok(r.counters.udpTurn.bytes >= 2 * BYTES, `and on its port 3478 (the client's side): ${text}`);
      assert.ok(r.counters.udpDirect.bytes < NONE, `nothing direct between the sites: ${text}`);
      assert.deepEqual(l.turnDenials(), [], 'coturn refused nothing');
    });
  });

  describe('(d) rendezvous, the host\'s router drops every unsolicited inbound packet', { concurrency: false }, () => {
    let lab: Lab | undefined;
    let side: Side;
    let relay = '';
    let code = '';
    before(async () => {
      lab = await startLab({ prefix: 'dcpd', nat: { a: 'cone', b: 'closed' }, peerjs: true });
      relay = `ws://${lab.addr.pub}:${PEERJS.port}`;
      side = await startSide(lab, ['--ice-server', lab.stunUrl], relay);
      code = (side.host.out.lines.map((l) => l.match(/^code: (\S+)$/)).find((m) => m)?.[1]) ?? '';
    });
    after(async () => { await lab?.down(); });

    test('the client finds the host by its code and goes direct through the punched hole; no TCP between the sites', { timeout: 120_000 }, async (t) => {
      const l = side.lab;
      assert.match(code, /^[a-z0-9]+-\d+$/, 'the host printed its code');
      const r = await connectAndEcho(side, 'client (d)', ['--rendezvous', relay, '--code', code, '--ice-server', l.stunUrl], CONNECT_MS);
      const text = report(t, '(d) rendezvous, closed host router', r);
      assert.match(kindOf(r.path), /^direct \((srflx|prflx)\)$/, text);
      assert.match(kindOf(r.hostPath), /^direct \((srflx|prflx)\)$/, text);
      assert.ok(r.counters.udpDirect.bytes >= 2 * BYTES, `the echo's bytes crossed as UDP between the sites: ${text}`);
      assert.equal(r.counters.udpRelay.bytes, 0, `nothing through coturn's relay ports: ${text}`);
      assert.equal(r.counters.tcpDirect.bytes, 0, `no TCP between the sites (no port is open on RB): ${text}`);
      assert.ok(r.counters.tcpPub.bytes > 0, `the signaling went through the PeerJS server: ${text}`);
    });
  });

  describe('(e) UDP blocked between the sites', { concurrency: false }, () => {
    let lab: Lab | undefined;
    let side: Side;
    before(async () => {
      lab = await startLab({ prefix: 'dcpu', nat: { a: 'cone', b: 'cone' }, blockUdp: true });
      side = await startSide(lab, ['--ice-server', lab.stunUrl]);
    });
    after(async () => { await lab?.down(); });

    test('the WebSocket fallback carries the traffic: websocket fallback (TCP) on both sides, TCP bytes, no UDP', { timeout: 120_000 }, async (t) => {
      const l = side.lab;
      const r = await connectAndEcho(side, 'client (e)', ['--connect', `ws://${l.addr.rbWan}:${SIGNALING_PORT}`, '--pin', side.pin, '--ice-server', l.stunUrl], FALLBACK_CONNECT_MS);
      const text = report(t, '(e) UDP blocked', r);
      assert.match(kindOf(r.path), /^websocket fallback \(TCP\)$/, text);
      assert.match(kindOf(r.hostPath), /^websocket fallback \(TCP\)$/, text);
      assert.ok(r.iceMs >= ICE_FALLBACK_MS, `the fallback waits for the 8 s ICE timeout: ${text}`);
      assert.ok(r.counters.tcpDirect.bytes >= 2 * BYTES, `the echo's bytes on TCP between the sites: ${text}`);
      assert.equal(r.counters.udpDirect.bytes + r.counters.udpRelay.bytes, 0, `no UDP crossed: ${text}`);
      assert.ok(r.counters.udpBlocked.packets > 0, `ICE's UDP was dropped: ${text}`);
    });
  });
});

if (skip) test(`issue 11 lab cases skipped: ${skip}`, { skip }, () => {});
