// Resume (issue 15) under a real cut: `tunnel host` in the lab's site B beside an echo service,
// `tunnel client` in A (cone NATs, the lab's STUN, no delay), paced echoes in flight through the
// tunnel (64 MiB each way at 8 MiB/s; 64 streams of 256 KiB; 16 MiB at 4 MiB/s), then PUB drops every
// UDP packet forwarded between the two routers (an nft table of its own, like the lab's `blockUdp` but
// added and removed on the live lab) for 15 s, then for 3 s.
// Signaling is TCP and still crosses during the cut. The client runs with --no-fallback, so after a
// long cut it must rebuild a PeerConnection (ICE again through the same NATs), not take the WebSocket
// (LAB_RESUME_FALLBACK=1 leaves the fallback on, to see what a default client does: it resumes over the
// WebSocket ~8.6 s into the outage, before the path returns, and stays there, so "restore → data
// flowing" means nothing then and the 3 s cut finds no UDP to drop; the path assertion is skipped).
//
//   15 s: the keepalive (5 s) declares the peer gone on both sides; both log the outage; the client
//         rebuilds, both log "peer back: streams resumed" with the outage's length; the echo completes
//         byte-exact (SHA-256 of what was sent and what came back). Measured: restore → data flowing
//         again (the first echoed byte that reaches the sender after the nft table is gone). The issue's
//         goal is < 2 s. Attempts overlap while streams wait (src/signaling/reconnect.ts: a new one
//         every 3 s, since libjuice spaces an attempt's check retransmissions up to 8 s apart), so the
//         newest attempt's next check is at most ~2 s after the path returns: 0.29-0.36 s here (6 runs).
//         Before the overlap one attempt at a time waited out its 15 s ICE timeout: 6.6-6.9 s. The
//         bound below (5 s) leaves room for a loaded machine and still catches that.
//   64 streams, 15 s: the same cut under 64 concurrent paced echoes (the issue's 50 concurrent
//         streams) and an interactive session (1 KiB request/response every 20 ms) beside them: all
//         complete byte-exact, both sides resume 64 + 1 streams, the interactive one goes on after the
//         restore; reported: its round trips (the longest is the one across the cut), each process's
//         VmRSS during the outage (what holding 64 busy streams costs: retention is bounded by the
//         windows they already had, so it does not grow with the outage).
//   3 s:  shorter than the keepalive: the SCTP association survives on its own (retransmits; no outage
//         is logged); asserted: byte-exact completion; reported: the stall.
//
// Per case it prints (t.diagnostic) the figures and, for the long cut, both sides' log lines with their
// time from the cut. Needs root and the lab's tools; skips with the reason otherwise. About 55-60 s.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startLab, labSkipReason, ADDR, type Lab } from '../../bench/lab/lab.js';
import { nft } from '../../bench/lab/netns.js';
import { spawnIn, running, stopProcess as stop, waitLine, type LabProcess as Proc } from '../support/lab-process.js';

const skip = labSkipReason();
const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const ECHO = fileURLToPath(new URL('../support/lab-echo.js', import.meta.url));

const MiB = 1024 * 1024;
const BYTES = 16 * MiB;
/** The long cut's single stream: 64 MiB each way (the issue's size), paced faster. */
const BIG = 64 * MiB;
const BIG_RATE = 8 * MiB;
/** Pace of the sender (bytes/s): 16 MiB takes ~4 s without a cut, so the cut lands mid-transfer. */
const RATE = 4 * MiB;
/** The cut starts once this much has come back (data is flowing through the tunnel). */
const CUT_AFTER = 2 * MiB;
const SIGNALING_PORT = 8765;
const ECHO_PORT = 7007;
const FORWARD_PORT = 20002;
const CONNECT_MS = 30_000;
/** A bound on restore → data flowing (the issue's goal is < 2 s; a loaded machine needs room). */
const BACK_MS = 5_000;
/** Hang guard for a whole echo. */
const ECHO_MS = 60_000;

/** Connections at once in the many-stream case (the issue asks for 50). */
const STREAMS = 64;
/** How long the interactive session beside them runs (s): past the 15 s cut by a few seconds. */
const PING_SECONDS = 20;

const CUT_TABLE = 'dcrz_cut';
/** LAB_RESUME_FALLBACK=1: the client keeps its WebSocket fallback (it may resume over it during the cut). */
const FALLBACK = process.env.LAB_RESUME_FALLBACK === '1';

/** PUB drops UDP forwarded between the two WAN addresses (before the lab's counters see it). */
async function cut(lab: Lab): Promise<void> {
  await nft(lab.ns.pub, `
table inet ${CUT_TABLE} {
  chain c_cut { type filter hook forward priority filter - 10; policy accept;
    ip saddr { ${ADDR.raWan}, ${ADDR.rbWan} } ip daddr { ${ADDR.raWan}, ${ADDR.rbWan} } meta l4proto udp counter drop
  }
}
`);
}

async function restore(lab: Lab): Promise<number> {
  const { stdout } = await lab.exec('pub', 'nft', ['-j', 'list', 'table', 'inet', CUT_TABLE]);
  const dropped = (JSON.parse(stdout) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] }).nftables
    .flatMap((i) => i.rule?.expr ?? []).reduce((n, e) => n + (e.counter?.packets ?? 0), 0);
  await lab.exec('pub', 'nft', ['delete', 'table', 'inet', CUT_TABLE]);
  return dropped;
}

/**
 * The paced echo sender, run in A as `node --input-type=module -e`: over STREAMS connections at once
 * writes BYTES random bytes in all at RATE in all (under backpressure), reads each connection's back,
 * compares byte for byte and by SHA-256; prints `p RECEIVED` (all connections) at most every 20 ms
 * while bytes come back, and one JSON line at the end.
 */
const SENDER = `
import net from 'node:net';
import { randomBytes, createHash } from 'node:crypto';
const [port, total, rate, timeoutMs, streams] = process.argv.slice(1).map(Number);
const each = Math.floor(total / streams);
const TICK = 20;
let received = 0, lastPrint = 0, done = false, start = Date.now(), pending = streams;
const conns = [];
const finish = (ok, error) => {
  if (done) return; done = true;
  clearTimeout(timer);
  const sentHash = createHash('sha256'), receivedHash = createHash('sha256');
  for (const c of conns) { sentHash.update(c.sentHash); receivedHash.update(c.got.digest('hex')); }
  const [s, r] = [sentHash.digest('hex'), receivedHash.digest('hex')];
  process.stdout.write('p ' + received + '\\n');
  process.stdout.write(JSON.stringify({ ok: ok && s === r, bytes: received, ms: Date.now() - start, streams, sentHash: s, receivedHash: r, ...(error ? { error } : {}) }) + '\\n');
  for (const c of conns) { clearInterval(c.tick); c.sock.destroy(); }
  process.exitCode = ok ? 0 : 1;
};
const timer = setTimeout(() => finish(false, 'timeout with ' + received + ' of ' + each * streams + ' back'), timeoutMs);
for (let i = 0; i < streams; i++) {
  const c = { data: randomBytes(each), got: createHash('sha256'), received: 0, off: 0, tick: undefined, sock: undefined, sentHash: '' };
  c.sentHash = createHash('sha256').update(c.data).digest('hex');
  conns.push(c);
  c.sock = net.connect(port, '127.0.0.1', () => {
    c.tick = setInterval(() => {
      if (c.off >= each || c.sock.writableLength > 256 * 1024) return;
      const end = Math.min(c.off + Math.max(1, Math.round(rate / streams * TICK / 1000)), each);
      c.sock.write(c.data.subarray(c.off, end)); c.off = end;
    }, TICK);
  });
  c.sock.on('data', (chunk) => {
    if (c.received + chunk.length > each) return finish(false, 'stream ' + i + ': more bytes back than sent');
    if (!chunk.equals(c.data.subarray(c.received, c.received + chunk.length))) return finish(false, 'stream ' + i + ': a byte differs in ' + c.received + '-' + (c.received + chunk.length));
    c.got.update(chunk); c.received += chunk.length; received += chunk.length;
    if (c.received === each) { clearInterval(c.tick); if (--pending === 0) finish(true); }
  });
  c.sock.on('error', (e) => finish(false, 'stream ' + i + ': ' + e.message));
  c.sock.on('close', () => { if (c.received < each) finish(false, 'stream ' + i + ' closed with ' + c.received + ' of ' + each + ' back'); });
}
const flush = setInterval(() => { if (received !== lastPrint) { lastPrint = received; process.stdout.write('p ' + received + '\\n'); } }, 20);
flush.unref();
`;

/**
 * An interactive session beside the bulk echoes, run in A like SENDER: 1 KiB request, wait for its
 * echo (checked byte for byte), 20 ms pause, for SECONDS; prints `p ROUNDS` per round trip and one
 * JSON line at the end (round trips, the median and the longest in ms: the one across the cut).
 */
const PINGER = `
import net from 'node:net';
import { randomBytes } from 'node:crypto';
const [port, seconds, timeoutMs] = process.argv.slice(1).map(Number);
const until = Date.now() + seconds * 1000;
const rtts = [];
let want, parts = [], got = 0, sentAt = 0, done = false;
const finish = (ok, error) => {
  if (done) return; done = true;
  clearTimeout(timer); sock.destroy();
  const sorted = [...rtts].sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ ok, rounds: rtts.length, p50Ms: sorted[sorted.length >> 1] ?? null, maxMs: sorted.at(-1) ?? null, ...(error ? { error } : {}) }) + '\\n');
  process.exitCode = ok ? 0 : 1;
};
const timer = setTimeout(() => finish(false, 'timeout'), timeoutMs);
const next = () => {
  if (Date.now() >= until) return finish(true);
  want = randomBytes(1024); parts = []; got = 0; sentAt = performance.now();
  sock.write(want);
};
const sock = net.connect(port, '127.0.0.1', next);
sock.on('data', (chunk) => {
  parts.push(chunk); got += chunk.length;
  if (got > 1024) return finish(false, 'more bytes back than sent in round ' + rtts.length);
  if (got < 1024) return;
  if (!Buffer.concat(parts).equals(want)) return finish(false, 'round ' + rtts.length + ' came back different');
  rtts.push(Math.round(performance.now() - sentAt));
  process.stdout.write('p ' + rtts.length + '\\n');
  setTimeout(next, 20);
});
sock.on('error', (e) => finish(false, e.message));
sock.on('close', () => finish(false, 'closed after ' + rtts.length + ' round trips'));
`;

const quietTail = (p: Proc) => p.lines.filter((l) => !l.line.startsWith('p ')).slice(-10).map((l) => l.line).join(' | ');

/** Bytes back at the sender as of `t` (its last `p` line before t). */
function receivedAt(sender: Proc, t: number): number {
  let n = 0;
  for (const l of sender.lines) {
    if (l.t > t) break;
    const m = l.line.match(/^p (\d+)$/);
    if (m) n = Number(m[1]);
  }
  return n;
}

const LOST = /path to the peer lost; its streams wait for it/;
const RESUMED = /peer back: streams resumed.* outageS=([\d.]+)/;
const CLIENT_PATH = /^path: (.+)$/;
/** A process's lines since index `from`, each with its arrival in seconds from `t0`, the time stamp dropped. */
const timeline = (p: Proc, from: number, t0: number) => p.lines.slice(from).slice(0, 40)
  .map((l) => `[${((l.t - t0) / 1000).toFixed(1)}] ${l.line.replace(/^\S*\d{4}-\d\d-\d\dT\S+\s+/, '')}`).join(' | ');
/** A process's resident memory now (MiB), from /proc (the lab's namespaces share it). */
const vmRssMiB = (p: Proc) => {
  try {
    const kb = Number(readFileSync(`/proc/${p.child.pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)/m)?.[1]);
    return (kb / 1024).toFixed(0);
  } catch { return '?'; }
};
const load = () => os.loadavg().map((v) => v.toFixed(1)).join(' ');

interface CutResult {
  ok: boolean;
  result: string;
  /** restore → the first echoed byte after it (ms) */
  backMs: number;
  /** the last echoed byte before the restore → the first after it (ms): the stall as the application saw it */
  stallMs: number;
  dropped: number;
  /** performance.now() when the cut began and ended */
  cutAt: number;
  restoredAt: number;
}

/** One paced echo over `streams` connections with a cut of `cutMs` in the middle; `during` runs 2 s
 *  before the cut ends (the outage is under way). */
async function echoWithCut(lab: Lab, cutMs: number, o: { streams?: number; bytes?: number; rate?: number; during?: () => Promise<void> } = {}): Promise<CutResult> {
  const { streams = 1, bytes = BYTES, rate = RATE, during } = o;
  const total = Math.floor(bytes / streams) * streams;
  const sender = spawnIn(lab, 'a', 'echo sender', ['--input-type=module', '-e', SENDER, String(FORWARD_PORT), String(bytes), String(rate), String(ECHO_MS), String(streams)]);
  try {
    const flowDeadline = performance.now() + 30_000;
    while (receivedAt(sender, Infinity) < CUT_AFTER) {
      if (!running(sender)) throw new Error(`the sender ended before the cut: ${quietTail(sender)}`);
      if (performance.now() > flowDeadline) throw new Error(`under ${CUT_AFTER} B back in 30 s: ${quietTail(sender)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await cut(lab);
    const cutAt = performance.now();
    if (during && cutMs > 2000) {
      await new Promise((r) => setTimeout(r, cutMs - 2000));
      await during();
    }
    await new Promise((r) => setTimeout(r, cutAt + cutMs - performance.now()));
    const dropped = await restore(lab);
    const restoredAt = performance.now();
    const before = receivedAt(sender, restoredAt);
    const lastMoveBefore = sender.lines.filter((l) => l.t <= restoredAt && /^p \d+$/.test(l.line)).at(-1)?.t ?? restoredAt;
    const deadline = restoredAt + BACK_MS;
    let backAt = NaN;
    while (performance.now() < deadline && Number.isNaN(backAt)) {
      const next = sender.lines.find((l) => l.t > restoredAt && /^p \d+$/.test(l.line) && Number(l.line.slice(2)) > before);
      if (next) backAt = next.t;
      else if (!running(sender)) break;
      else await new Promise((r) => setTimeout(r, 10));
    }
    const timer = setTimeout(() => { try { sender.child.kill('SIGKILL'); } catch { /* gone */ } }, ECHO_MS + 5000);
    const { code } = await sender.exited;
    clearTimeout(timer);
    const result = sender.lines.filter((l) => l.line.startsWith('{')).at(-1)?.line ?? quietTail(sender);
    let r: { ok?: boolean; bytes?: number } = {};
    try { r = JSON.parse(result) as typeof r; } catch { /* reported */ }
    return { ok: code === 0 && r.ok === true && r.bytes === total, result, backMs: backAt - restoredAt, stallMs: backAt - lastMoveBefore, dropped, cutAt, restoredAt };
  } finally {
    await stop(sender);
  }
}

describe('resume across a real cut in the network lab (issue 15)', { skip: skip ?? false, timeout: 150_000, concurrency: false }, () => {
  let lab: Lab | undefined;
  let host: Proc | undefined;
  let client: Proc | undefined;
  let echo: Proc | undefined;

  before(async () => {
    lab = await startLab({ prefix: 'dcrz', nat: { a: 'cone', b: 'cone' } });
    const pin = String(randomInt(0, 100_000_000)).padStart(8, '0');
    echo = spawnIn(lab, 'b', 'echo service', [ECHO, 'serve', '--port', String(ECHO_PORT)]);
    await lab.portForward(SIGNALING_PORT);
    host = spawnIn(lab, 'b', 'tunnel host', [CLI, 'host', '--listen', `0.0.0.0:${SIGNALING_PORT}`, '--pin', pin,
      '--expose', `echo=127.0.0.1:${ECHO_PORT}`, '--ice-server', lab.stunUrl, '--quiet', '--log-level', 'info']);
    await waitLine(echo, /^listening /, CONNECT_MS);
    await waitLine(host, /^tunnel host listening on /, CONNECT_MS);
    client = spawnIn(lab, 'a', 'tunnel client', [CLI, 'client', '--connect', `ws://${lab.addr.rbWan}:${SIGNALING_PORT}`, '--pin', pin,
      '--ice-server', lab.stunUrl, ...(FALLBACK ? [] : ['--no-fallback']), '--forward', `127.0.0.1:${FORWARD_PORT}=echo`, '--quiet', '--log-level', 'info']);
    await waitLine(client, CLIENT_PATH, CONNECT_MS);
    await waitLine(client, /^forwarding /, 10_000);
  });

  after(async () => {
    await stop(client);
    await stop(host);
    await stop(echo);
    await lab?.down();
  });

  test('a 15 s UDP cut mid-transfer of 64 MiB each way: both sides log the outage, the client rebuilds its PeerConnection, the echo completes byte-exact', { timeout: 90_000 }, async (t) => {
    const c = client as Proc;
    const h = host as Proc;
    const firstPath = (await waitLine(c, CLIENT_PATH, 1000)).m[1];
    const [cFrom, hFrom] = [c.lines.length, h.lines.length];
    const r = await echoWithCut(lab as Lab, 15_000, { bytes: BIG, rate: BIG_RATE });
    const cLost = c.lines.slice(cFrom).find((l) => LOST.test(l.line));
    const hLost = h.lines.slice(hFrom).find((l) => LOST.test(l.line));
    const cRes = c.lines.slice(cFrom).find((l) => RESUMED.test(l.line));
    const hRes = h.lines.slice(hFrom).find((l) => RESUMED.test(l.line));
    const newPath = c.lines.slice(cFrom).map((l) => l.line.match(CLIENT_PATH)).find((m) => m)?.[1] ?? '(none printed)';
    const outage = (l: typeof cRes) => l?.line.match(RESUMED)?.[1] ?? '?';
    const text = `15 s cut: restore -> data flowing ${(r.backMs / 1000).toFixed(2)} s (stall seen by the application ${(r.stallMs / 1000).toFixed(1)} s); ` +
      `outage logged: client ${outage(cRes)} s, host ${outage(hRes)} s; path before: ${firstPath}; after: ${newPath}; ` +
      `${r.dropped} UDP packets dropped by the cut; load ${load()}; sender: ${r.result}`;
    t.diagnostic(text);
    t.diagnostic(`client's log, seconds from the cut (restored at ${((r.restoredAt - r.cutAt) / 1000).toFixed(1)}): ${timeline(c, cFrom, r.cutAt)}`);
    t.diagnostic(`host's log, seconds from the cut: ${timeline(h, hFrom, r.cutAt)}`);
    assert.ok(r.ok, `the echo of ${BIG} B completes byte-exact (SHA-256): ${text} | client: ${quietTail(c)} | host: ${quietTail(h)}`);
    assert.ok(r.dropped > 0, `the cut dropped UDP: ${text}`);
    assert.ok(cLost && hLost, `both sides logged the path lost: ${text} | client: ${quietTail(c)} | host: ${quietTail(h)}`);
    assert.ok(cRes && hRes, `both sides logged the resume: ${text} | client: ${quietTail(c)} | host: ${quietTail(h)}`);
    assert.ok(r.backMs < BACK_MS, `data flowing again within ${BACK_MS} ms of the restore: ${text}`);
    if (!FALLBACK) assert.match(newPath, /^direct \((srflx|prflx|host)\)/, `a new direct PeerConnection, not the fallback: ${text}`);
    assert.ok(running(c) && running(h), 'both CLIs still run');
  });

  test('64 streams and an interactive session across a 15 s UDP cut: every one resumes byte-exact; what each side holds meanwhile', { timeout: 90_000 }, async (t) => {
    const c = client as Proc;
    const h = host as Proc;
    const [cFrom, hFrom] = [c.lines.length, h.lines.length];
    let rss = '';
    const pinger = spawnIn(lab as Lab, 'a', 'interactive', ['--input-type=module', '-e', PINGER, String(FORWARD_PORT), String(PING_SECONDS), String(ECHO_MS)]);
    const r = await echoWithCut(lab as Lab, 15_000, { streams: STREAMS, during: async () => { rss = `client ${vmRssMiB(c)} MiB, host ${vmRssMiB(h)} MiB`; } });
    const pingTimer = setTimeout(() => { try { pinger.child.kill('SIGKILL'); } catch { /* gone */ } }, ECHO_MS);
    const { code: pingCode } = await pinger.exited;
    clearTimeout(pingTimer);
    const pingResult = pinger.lines.filter((l) => l.line.startsWith('{')).at(-1)?.line ?? quietTail(pinger);
    const roundsAfter = pinger.lines.filter((l) => l.t > r.restoredAt && /^p \d+$/.test(l.line)).length;
    const cRes = c.lines.slice(cFrom).find((l) => RESUMED.test(l.line));
    const hRes = h.lines.slice(hFrom).find((l) => RESUMED.test(l.line));
    const streams = (l: typeof cRes) => l?.line.match(/streams=(\d+)/)?.[1] ?? '?';
    const text = `${STREAMS} streams, 15 s cut: restore -> data flowing ${(r.backMs / 1000).toFixed(2)} s; resumed streams: client ${streams(cRes)}, host ${streams(hRes)}; ` +
      `VmRSS 13 s into the cut (the outage under way): ${rss}; ${r.dropped} UDP packets dropped; load ${load()}; sender: ${r.result}; ` +
      `interactive beside them: ${pingResult}, ${roundsAfter} round trips after the restore`;
    t.diagnostic(text);
    assert.ok(pingCode === 0 && /"ok":true/.test(pingResult), `the interactive session goes on across the cut, every round trip byte-exact: ${text}`);
    assert.ok(roundsAfter > 0, `round trips after the restore: ${text}`);
    assert.ok(r.ok, `every stream's echo completes byte-exact (SHA-256): ${text} | client: ${quietTail(c)} | host: ${quietTail(h)}`);
    assert.ok(cRes && hRes, `both sides logged the resume: ${text} | client: ${quietTail(c)} | host: ${quietTail(h)}`);
    assert.equal(streams(cRes), String(STREAMS + 1), text);
    assert.ok(r.backMs < BACK_MS, `data flowing again within ${BACK_MS} ms of the restore: ${text}`);
  });

  test('a 3 s UDP cut mid-transfer: the echo completes byte-exact (the association may survive on its own)', { timeout: 60_000 }, async (t) => {
    const c = client as Proc;
    const h = host as Proc;
    const [cFrom, hFrom] = [c.lines.length, h.lines.length];
    const r = await echoWithCut(lab as Lab, 3000);
    const cRes = c.lines.slice(cFrom).find((l) => RESUMED.test(l.line));
    const hRes = h.lines.slice(hFrom).find((l) => RESUMED.test(l.line));
    const cLost = c.lines.slice(cFrom).some((l) => LOST.test(l.line));
    const text = `3 s cut: restore -> data flowing ${(r.backMs / 1000).toFixed(2)} s (stall seen by the application ${(r.stallMs / 1000).toFixed(1)} s); ` +
      `outage logged: ${cLost ? `yes (client resumed after ${cRes?.line.match(RESUMED)?.[1] ?? '?'} s, host ${hRes?.line.match(RESUMED)?.[1] ?? '?'} s)` : 'no (the association survived)'}; ` +
      `${r.dropped} UDP packets dropped by the cut; load ${load()}; sender: ${r.result}`;
    t.diagnostic(text);
    assert.ok(r.ok, `the echo of ${BYTES} B completes byte-exact (SHA-256): ${text} | client: ${quietTail(c)} | host: ${quietTail(h)}`);
    assert.ok(r.backMs < BACK_MS, `data flowing again within ${BACK_MS} ms of the restore: ${text}`);
    assert.ok(running(c) && running(h), 'both CLIs still run');
  });
});

if (skip) test(`lab resume test skipped: ${skip}`, { skip }, () => {});
