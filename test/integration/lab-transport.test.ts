// The tunnel on a delayed path (issue 12): `tunnel host` in the lab's site B, `tunnel client` in A,
// two cone NATs, ICE through the lab's STUN, RTT 40 ms, one download for 20 s. A bare DataChannel
// collapses there (usrsctp's spurious retransmission timeouts: ~20 MB/s, then under 1 MB/s for
// seconds, often for good); this fails when any second after the ramp falls under a floor. The bytes
// are the service's checked pattern (bench/pattern.ts), compared byte for byte as they arrive.
// Needs root and the lab's tools; skips with the reason otherwise. About 25-35 s.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { startLab, labSkipReason } from '../../bench/lab/lab.js';
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

describe('the tunnel across the lab', { skip: skip ?? false, timeout: 90_000 }, () => {
  test(`one download at RTT ${2 * DELAY_MS} ms keeps every second above ${FLOOR_MBPS} MB/s for ${SECONDS} s, byte for byte`, { timeout: 80_000 }, async (t) => {
    const lab = await startLab({ prefix: 'dctl', shape: { delayMs: DELAY_MS } });
    try {
      const apps = await startApps(lab);
      try {
        await forwardSignaling(lab);
        const tunnel = await startLabTunnel(lab, apps, { args: [], env: {} });
        let r;
        try {
          r = await timed(apps.load, tunnel.target, 'down', 1, SECONDS, 0);
        } finally {
          await tunnel.stop();
        }
        const series = r.perSecond.map((v) => v.toFixed(2)).join(' ');
        const context = `MB/s per second: ${series}; load average ${os.loadavg().map((v) => v.toFixed(1)).join(' ')}`;
        t.diagnostic(context);
        assert.ok(r.ok, `${r.error ?? 'the download failed'} (${context})`);
        assert.equal(r.perSecond.length, SECONDS);
        const low = r.perSecond.map((v, i) => ({ second: i + 1, MBps: v })).filter((s) => s.second > RAMP_SECONDS && s.MBps < FLOOR_MBPS);
        assert.deepEqual(low.map((s) => s.second), [], `seconds under ${FLOOR_MBPS} MB/s after the first ${RAMP_SECONDS} (a collapse): ${context}`);
      } finally {
        await apps.close();
      }
    } finally {
      await lab.down();
    }
  });
});

if (skip) test(`lab transport test skipped: ${skip}`, { skip }, () => {});
