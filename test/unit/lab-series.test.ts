// The lab bench's pure pieces: the per-second collapse checks (bench/lab/series.ts), the checked
// byte stream of its time-bounded runs (bench/pattern.ts), and the table's rows (bench/lab/summary.ts).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkSeries } from '../../bench/lab/series.js';
import { patternCheck, patternWriter } from '../../bench/pattern.js';
import { summarizeLab } from '../../bench/lab/summary.js';
import { renderSection } from '../../bench/lab/table.js';
import type { BulkRun, LabConfig, PathResult, RawRun } from '../../bench/lab/suite.js';
import type { LoadSample } from '../../bench/lab/machine-load.js';
import { prng } from '../support/prng.js';

describe('per-second checks', () => {
  it('a steady run on a busy machine passes both', () => {
    const s = checkSeries([3, 9, 20, 14, 31, 18, 25, 12, 22, 16]);
    assert.equal(s.collapse, false);
    assert.equal(s.drop, false);
    assert.equal(s.minSecond, 12);
    assert.equal(s.maxSecond, 31);
  });

  it('the ramp is left out', () => {
    assert.equal(checkSeries([0.1, 0.5, 20, 21, 19, 20]).collapse, false);
  });

  it('a short collapse is under 25% of the median', () => {
    const s = checkSeries([5, 15, 20, 19, 0.5, 0.4, 18, 20, 21, 19]);
    assert.equal(s.collapse, true);
    assert.equal(s.lowSeconds, 2);
  });

  it('a collapse that lasts most of the run passes the median check but not the best-second one', () => {
    const s = checkSeries([5, 15, 20, 19, 0.8, 0.5, 0.6, 0.7, 0.5, 0.9, 0.6, 0.7]);
    assert.equal(s.collapse, false, 'the median is the collapsed rate');
    assert.equal(s.drop, true);
    assert.equal(s.dropSeconds, 8);
  });
});

describe('checked pattern', () => {
  const stream = (n: number) => patternWriter()(n);

  it('is the same on every connection and not periodic', () => {
    const a = stream(300_000);
    assert.ok(a.equals(stream(300_000)));
    assert.ok(!a.subarray(0, 65536).equals(a.subarray(65536, 131072)));
  });

  it('accepts the stream cut anywhere', () => {
    const rand = prng(7);
    const data = stream(1_000_000);
    const check = patternCheck();
    for (let at = 0; at < data.byteLength;) {
      const n = Math.min(data.byteLength - at, 1 + Math.floor(rand() * 70_000));
      assert.ok(check.push(data.subarray(at, at + n)));
      at += n;
    }
    assert.equal(check.offset, 1_000_000);
    assert.equal(check.mismatchAt, -1);
  });

  it('finds a lost byte, a repeated piece and a changed byte at their offsets', () => {
    const data = stream(200_000);
    const lost = patternCheck();
    assert.equal(lost.push(Buffer.concat([data.subarray(0, 5000), data.subarray(5001, 9000)])), false);
    assert.ok(lost.mismatchAt >= 5000 && lost.mismatchAt < 5010, String(lost.mismatchAt));

    const repeated = patternCheck();
    assert.ok(repeated.push(data.subarray(0, 65520)));
    assert.equal(repeated.push(data.subarray(0, 65520)), false);
    assert.ok(repeated.mismatchAt >= 65520, String(repeated.mismatchAt));

    const changed = Buffer.from(data.subarray(0, 100_000));
    changed[77_777] = (changed[77_777] ?? 0) ^ 1;
    const flip = patternCheck();
    assert.equal(flip.push(changed), false);
    assert.equal(flip.mismatchAt, 77_777);
    assert.equal(flip.push(data.subarray(100_000, 100_010)), false, 'stays failed');
  });
});

describe("the table's machine rows", () => {
  const load = (machineBusyPct: number, pubCpuPct: number): LoadSample => ({ loadAverage: [1, 1], machineBusyPct, pubCpuPct, otherCpuPct: 0, stealPct: 0 });
  const series = checkSeries([10, 10, 10, 10]);
  const bulk = (transport: BulkRun['transport'], MBps: number, l: LoadSample | null): BulkRun =>
    ({ transport, dir: 'down', streams: 8, run: 1, ok: true, MBps, perSecond: [10, 10, 10, 10], series, cpuMsPerMB: 20, load: l });
  const raw = (MBps: number, l: LoadSample): RawRun => ({ variant: 'reliable', run: 1, ok: true, MBps, perSecond: [], series, path: '?', load: l });
  const config = { runs: 2, streams: [8], directions: ['down'], transports: ['tcp', 'tunnel'], raw: true, pingBytes: 1024 } as unknown as LabConfig;
  const result: PathResult = {
    path: { name: 'rtt40', label: 'RTT 40 ms', shape: { delayMs: 20 }, loss: false },
    bulk: [bulk('tcp', 600, load(58, 20)), bulk('tcp', 620, load(62, 28)), bulk('tunnel', 55, load(90, 30)), bulk('tunnel', 57, load(94, 28)), bulk('tunnel', 50, null)],
    pings: [],
    raw: [raw(45, load(70, 27)), raw(44, load(72, 29))],
    errors: [],
  };

  it('says how busy the machine was under each bulk figure and each raw-DC figure, median of the runs', () => {
    const [section] = summarizeLab(config, [result]);
    assert.ok(section);
    const rows = section.rows.filter((r) => r.unit === '%');
    assert.deepEqual(rows.map((r) => r.values), [
      { tcp: 60, tunnel: 92 }, { tcp: 24, tunnel: 29 }, // a run without a sample (null) is left out
      { tunnel: 71 }, { tunnel: 28 }, // raw, reliable
      { tunnel: Number.NaN }, { tunnel: Number.NaN }, // raw, maxRetransmits: no runs
    ]);
    const text = renderSection(section);
    assert.match(text, /machine busy, all cores\s+%\s+60\s+92/);
    assert.match(text, /of it in PUB \(forwarders, coturn\)\s+%\s+24\s+29/);
  });
});
