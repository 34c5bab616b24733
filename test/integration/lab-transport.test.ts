// The tunnel on a delayed path (issue 12): `tunnel host` in the lab's site B, `tunnel client` in A,
// two cone NATs, ICE through the lab's STUN, RTT 40 ms, one download for 20 s. A bare DataChannel
// collapses there (usrsctp's spurious retransmission timeouts: ~20 MB/s, then under 1 MB/s for
// seconds, often for good); this fails when two seconds in a row after the ramp fall under a floor.
// One second alone may: in 2 of 3 full suites on this 2-core machine (never in 4 runs alone) one
// second fell to 1.05-1.31 MB/s and the flow climbed back at ~0.7 MB/s per second (`... 26.9 3.47
// 1.31 2.03 2.82`), the shape of a retransmission timeout after a loss burst, not of the collapse,
// which stayed under 1 MB/s for seconds. The loss is the receiving site's UDP socket overflowing
// while the receiving process falls behind SCTP's bursts (a run on 2026-12-06 that dipped from 29 to
// 19 MB/s: 114 receive-buffer drops at A, 0 at B); the report counts them. The bytes are
// the service's checked pattern (bench/pattern.ts), compared byte for byte as they arrive.
// The second test: 1 KiB pings beside a download under 1 % loss each way, which must not wait
// behind it (the bulk channel's own association, ../../src/webrtc/channels.ts). The third: 8
// downloads under the same loss on the default lanes against one lane (--lanes 1): each lane is one
// more congestion window.
// Needs root and the lab's tools; skips with the reason otherwise. About 70-90 s.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { startLab, labSkipReason, type Lab } from '../../bench/lab/lab.js';
import { startApps, timed, pings, type LabApps } from '../../bench/lab/apps.js';
import { forwardSignaling, startLabTunnel } from '../../bench/lab/tunnel-pair.js';
import { DEFAULT_BULK_LANES } from '../../src/webrtc/channels.js';

const skip = labSkipReason();
/** One-way delay (ms): RTT 40 ms between the sites. */
const DELAY_MS = 20;
/** Length of the download (s). */
const SECONDS = 20;
/** Seconds at the start not held to the floor: SCTP's slow start and the first round trips. */
const RAMP_SECONDS = 3;
/**
 * The floor (MB/s). A healthy tunnel on this path is window-bound well above it: 1 MiB of usrsctp
 * buffer per 40 ms RTT is ~26 MB/s (4 MiB: ~100). Measured on the busy 2-core VM (load average ~12,
 * other work taking most of the CPU), a tunnel patched to create its channel with maxRetransmits
 * 65535 (no collapse) had its slowest second at 3.1 MB/s (the rest 4-13); the tunnel needs 50-80 ms
 * of CPU per MB there. Today's tunnel collapsed in the same conditions to 0.9-1.1 MB/s for seconds,
 * and the collapse the issue describes runs at 0.3-0.9 MB/s. 1.5 MB/s sits between the two.
 */
const FLOOR_MBPS = 1.5;
/** The lossy path of the second test: random loss each way (%), at the same delay. */
const LOSS_PCT = 1;
/** Length of the ping-pong beside the download (s). */
const PING_SECONDS = 10;
/**
 * What the pings must reach. Alone on this path a 1 KiB round trip is ~43 ms (p99 50-250 ms: a lost
 * packet costs a retransmission timeout). With the bulk channel in the same association as the
 * pings (before, and TUNNEL_BENCH_ONE_ASSOCIATION=1 still) 1-200 round trips came back in 10 s, p99
 * 2.7-6.8 s: after a timeout usrsctp resends the download's outstanding data first, from a window of
 * one MTU. On its own association: ~200 round trips, p50 42-43 ms, p99 150-260 ms, a lost message
 * costing usrsctp's retransmission timeout (200 ms at least) plus the round trip. With each small
 * DATA copied over an idle lane (TWICE, src/dataplane/peer-link.ts): p99 46 ms (tunnel bench --lab,
 * 2 runs), against 242-243 with TUNNEL_BENCH_NO_COPIES=1 in the same session. Under 150 ms, no
 * ping but the first (sent before the stream heard from the host) waited for a timeout.
 */
const MIN_ROUND_TRIPS = 100;
const MAX_P99_MS = 150;
/** Downloads and seconds of the lanes test. */
const LANE_STREAMS = 8;
const LANE_SECONDS = 10;
/**
 * What the default lanes must carry over one lane, 8 downloads, 1 % loss: 4 lanes 1.49-1.77 MB/s
 * against 0.40-0.44 on one (bench/lab/README, 2 runs each), so 3.4-4.4x; one lane's worth is
 * NewReno's under this loss, not the CPU's, so load does not move it much. 2x leaves room for the
 * loss draw of a 10 s run and still fails if the lanes stopped spreading streams.
 */
const MIN_LANES_GAIN = 2;

/** UDP datagrams a site's sockets dropped for a full receive buffer since the namespace began. */
async function rcvbufErrors(lab: Lab, site: 'a' | 'b'): Promise<number> {
  const { stdout } = await lab.exec(site, 'cat', ['/proc/net/snmp']);
  const [names, values] = stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const i = names?.split(/\s+/).indexOf('RcvbufErrors') ?? -1;
  return i < 0 ? NaN : Number(values?.split(/\s+/)[i]);
}

describe('the tunnel across the lab', { skip: skip ?? false, timeout: 150_000 }, () => {
  let lab: Lab | null = null;
  let apps: LabApps | null = null;
  before(async () => {
    lab = await startLab({ prefix: 'dctl', shape: { delayMs: DELAY_MS } });
    apps = await startApps(lab);
    await forwardSignaling(lab);
  });
  after(async () => {
    await apps?.close();
    await lab?.down();
  });

  test(`one download at RTT ${2 * DELAY_MS} ms for ${SECONDS} s never spends two seconds in a row under ${FLOOR_MBPS} MB/s, byte for byte`, { timeout: 80_000 }, async (t) => {
    if (!lab || !apps) throw new Error('no lab');
    await lab.shape({ delayMs: DELAY_MS });
    const tunnel = await startLabTunnel(lab, apps, { args: [], env: {} });
    const dropsBefore = { a: await rcvbufErrors(lab, 'a'), b: await rcvbufErrors(lab, 'b') };
    let r;
    try {
      r = await timed(apps.load, tunnel.target, 'down', 1, SECONDS, 0);
    } finally {
      await tunnel.stop();
    }
    const series = r.perSecond.map((v) => v.toFixed(2)).join(' ');
    const drops = `UDP receive-buffer drops: A ${(await rcvbufErrors(lab, 'a')) - dropsBefore.a}, B ${(await rcvbufErrors(lab, 'b')) - dropsBefore.b}`;
    const context = `MB/s per second: ${series}; ${drops}; load average ${os.loadavg().map((v) => v.toFixed(1)).join(' ')}`;
    t.diagnostic(context);
    assert.ok(r.ok, `${r.error ?? 'the download failed'} (${context})`);
    assert.equal(r.perSecond.length, SECONDS);
    const low = (i: number) => i >= RAMP_SECONDS && (r.perSecond[i] ?? 0) < FLOOR_MBPS;
    const runs = r.perSecond.map((_, i) => i).filter((i) => low(i) && low(i + 1)).map((i) => i + 1);
    assert.deepEqual(runs, [], `two seconds in a row under ${FLOOR_MBPS} MB/s after the first ${RAMP_SECONDS}, from second(s) ${runs.join(', ')} (a collapse): ${context}`);
  });

  test(`under ${LOSS_PCT} % loss each way, 1 KiB pings beside a download are not held behind it, nor by a lost message`, { timeout: 60_000 }, async (t) => {
    if (!lab || !apps) throw new Error('no lab');
    await lab.shape({ delayMs: DELAY_MS, lossPct: LOSS_PCT });
    const tunnel = await startLabTunnel(lab, apps, { args: [], env: {} });
    let r;
    let bulk;
    try {
      const download = timed(apps.load, tunnel.target, 'down', 1, PING_SECONDS + 4, 0);
      download.catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 2000)); // the download under way first
      r = await pings(apps.pinger, tunnel.target, 1024, PING_SECONDS, 10_000, 0, 5000);
      bulk = await download;
    } finally {
      await tunnel.stop();
    }
    const ms = (us: number) => (us / 1000).toFixed(0);
    const context = `${r.latency.n} round trips, p50 ${ms(r.latency.p50)} ms, p99 ${ms(r.latency.p99)} ms, max ${ms(r.latency.max)} ms, ${r.unanswered} unanswered; the download beside: ${bulk.perSecond.map((v) => v.toFixed(2)).join(' ')} MB/s; load average ${os.loadavg().map((v) => v.toFixed(1)).join(' ')}`;
    t.diagnostic(context);
    assert.ok(r.ok && bulk.ok, `${r.error ?? bulk.error ?? 'failed'} (${context})`);
    assert.ok(r.latency.n >= MIN_ROUND_TRIPS, `only ${r.latency.n} round trips in ${PING_SECONDS} s: the pings waited behind the download (${context})`);
    assert.ok(r.latency.p99 / 1000 < MAX_P99_MS, `p99 ${ms(r.latency.p99)} ms (${context})`);
  });

  test(`under ${LOSS_PCT} % loss each way, ${LANE_STREAMS} downloads carry at least ${MIN_LANES_GAIN}x on ${DEFAULT_BULK_LANES} lanes what they carry on one`, { timeout: 90_000 }, async (t) => {
    if (!lab || !apps) throw new Error('no lab');
    await lab.shape({ delayMs: DELAY_MS, lossPct: LOSS_PCT });
    const run = async (args: string[]) => {
      const tunnel = await startLabTunnel(lab as Lab, apps as LabApps, { args, env: {} });
      try {
        return await timed((apps as LabApps).load, tunnel.target, 'down', LANE_STREAMS, LANE_SECONDS, 0);
      } finally {
        await tunnel.stop();
      }
    };
    const one = await run(['--lanes', '1']);
    const many = await run([]);
    const rate = (r: typeof one) => r.bytes / 1e6 / (r.ms / 1000);
    const series = (r: typeof one) => r.perSecond.map((v) => v.toFixed(2)).join(' ');
    const context = `one lane ${rate(one).toFixed(2)} MB/s (${series(one)}), ${DEFAULT_BULK_LANES} lanes ${rate(many).toFixed(2)} MB/s (${series(many)}); load average ${os.loadavg().map((v) => v.toFixed(1)).join(' ')}`;
    t.diagnostic(context);
    assert.ok(one.ok && many.ok, `${one.error ?? many.error ?? 'failed'} (${context})`);
    assert.ok(rate(many) >= MIN_LANES_GAIN * rate(one), `the lanes gave ${(rate(many) / rate(one)).toFixed(2)}x (${context})`);
  });
});

if (skip) test(`lab transport test skipped: ${skip}`, { skip }, () => {});
