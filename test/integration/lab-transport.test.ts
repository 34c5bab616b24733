// The tunnel on a delayed path (issue 12): `tunnel host` in the lab's site B, `tunnel client` in A,
// two cone NATs, ICE through the lab's STUN, RTT 40 ms, one download for 20 s. A bare DataChannel
// collapses there (usrsctp's spurious retransmission timeouts: ~20 MB/s, then under 1 MB/s for
// seconds, often for good); this fails when two seconds in a row after the ramp fall under a floor.
// One second alone may: in 2 of 3 full suites on this 2-core machine (never in 4 runs alone) one
// second fell to 1.05-1.31 MB/s and the flow climbed back at ~0.7 MB/s per second (`... 26.9 3.47
// 1.31 2.03 2.82`), the shape of a retransmission timeout after a loss burst, not of the collapse,
// which stayed under 1 MB/s for seconds. Where that loss comes from is not established; the report
// counts the sites' UDP receive-buffer drops (0 in the runs read so far) to help tell. The bytes are
// the service's checked pattern (bench/pattern.ts), compared byte for byte as they arrive.
// Needs root and the lab's tools; skips with the reason otherwise. About 25-35 s.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { startLab, labSkipReason, type Lab } from '../../bench/lab/lab.js';
import { startApps, timed } from '../../bench/lab/apps.js';
import { forwardSignaling, startLabTunnel } from '../../bench/lab/tunnel-pair.js';

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

/** UDP datagrams a site's sockets dropped for a full receive buffer since the namespace began. */
async function rcvbufErrors(lab: Lab, site: 'a' | 'b'): Promise<number> {
  const { stdout } = await lab.exec(site, 'cat', ['/proc/net/snmp']);
  const [names, values] = stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const i = names?.split(/\s+/).indexOf('RcvbufErrors') ?? -1;
  return i < 0 ? NaN : Number(values?.split(/\s+/)[i]);
}

describe('the tunnel across the lab', { skip: skip ?? false, timeout: 90_000 }, () => {
  test(`one download at RTT ${2 * DELAY_MS} ms for ${SECONDS} s never spends two seconds in a row under ${FLOOR_MBPS} MB/s, byte for byte`, { timeout: 80_000 }, async (t) => {
    const lab = await startLab({ prefix: 'dctl', shape: { delayMs: DELAY_MS } });
    try {
      const apps = await startApps(lab);
      try {
        await forwardSignaling(lab);
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
      } finally {
        await apps.close();
      }
    } finally {
      await lab.down();
    }
  });
});

if (skip) test(`lab transport test skipped: ${skip}`, { skip }, () => {});
