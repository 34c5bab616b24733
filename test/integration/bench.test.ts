// The benchmark harness runs: `tunnel bench` in a tiny configuration (host, client, service, load
// generator and the raw DataChannel baseline as separate processes) and the micro-benchmarks each
// print their table and write JSON with the expected keys. Benchmarks are not timed tests: no figure
// is checked against a target here.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runToExit } from '../support/cli.js';

describe('benchmark harness', { timeout: 90000 }, () => {
  it('runs a tiny suite and writes the table and JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-test-'));
    try {
      const json = join(dir, 'bench.json');
      const svg = join(dir, 'bench.svg');
      const { code, stdout, stderr } = await runToExit(['bench', '--quick', '--workers', '0', '--streams', '1,8', '--bytes', '4', '--connections', '100', '--json', json, '--svg', svg], 55000);
      // 0, or 1 when a measurement failed on a busy machine; never a crash or a usage error
      assert.ok(code === 0 || code === 1, `exit ${code}\n${stderr}`);
      assert.match(stdout, /^machine: \d+ cores/m);
      assert.match(stdout, /^scenario\s+unit\s+baseline/m);
      assert.match(stderr, /\[\s*1\/\d+ /); // progress
      const result = JSON.parse(readFileSync(json, 'utf8')) as Record<string, unknown>;
      for (const key of ['machine', 'config', 'baseline', 'tunnel', 'rows', 'errors']) assert.ok(key in result, `JSON lacks '${key}'`);
      const rows = result.rows as { label: string; unit: string; values: Record<string, number | null> }[];
      for (const label of ['upload, 1 stream', 'download, 8 streams', 'CPU, upload, 1 stream', '1024 B ping-pong p50', 'churn, 16 in flight', 'RSS per connection, host', 'idle RSS, host', 'idle RSS, client']) {
        assert.ok(rows.some((r) => r.label === label), `no row '${label}'`);
      }
      assert.ok(rows.some((r) => typeof r.values['0'] === 'number'), 'no figure was measured');
      // the node proxy: the floor of a tunnel on Node's sockets, measured in the same run
      const node = (result.baseline as { node: { latency: { ok: boolean }[]; churn: { ok: boolean; done: number }[] } }).node;
      assert.ok(node.latency.some((l) => l.ok) && node.churn.some((c) => c.ok && c.done > 0), `node proxy baseline: ${JSON.stringify(node)}`);
      assert.match(stdout, /churn, 16 in flight\s+conn\/s\s+\d+\s+node proxy/);
      assert.match(readFileSync(svg, 'utf8'), /^<svg /);
      // the traced ping-pong run: where a round trip goes (or, on a failure, one line that says so)
      assert.match(stdout, /^latency breakdown (\(--workers 0, one traced run, \d+ of \d+ pings matched|failed: )/m);
      const breakdown = result.breakdown as { matched: number; segments: { label: string; kind: string; p50: number }[] } | undefined;
      if (breakdown) {
        assert.equal(breakdown.segments.length, 12);
        assert.ok(breakdown.matched > 0, 'no ping matched its stamps');
        assert.ok(breakdown.segments.every((s) => Number.isFinite(s.p50)), `a segment without a time: ${JSON.stringify(breakdown.segments)}`);
        // Between two stamps of one process a segment takes time. Between two processes (the
        // DataChannel transits, the load generator's TCP legs) it starts at a stamp taken after a
        // call returned, when the other side may already have the bytes: on a loaded machine such a
        // median can fall below zero (seen: client -> host transit -57 µs, its send call 202 µs).
        const oneProcess = breakdown.segments.filter((s) => s.kind !== 'transit' && !/\bload\b/.test(s.label));
        assert.ok(oneProcess.every((s) => s.p50 > 0), `a segment within one process took no time: ${JSON.stringify(oneProcess)}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs the micro-benchmarks', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-micro-'));
    try {
      const json = join(dir, 'micro.json');
      const { code, stdout, stderr } = await runToExit(['bench', '--micro', '--quick', '--json', json], 55000);
      assert.equal(code, 0, stderr);
      assert.match(stdout, /codec: DATA 1 KiB/);
      const result = JSON.parse(readFileSync(json, 'utf8')) as { results: { name: string; ours: number; naive: number; ratio: number }[] };
      for (const part of ['codec', 'reassembler', 'dispatcher']) assert.ok(result.results.some((r) => r.name.startsWith(part) && r.ours > 0 && r.naive > 0), `no ${part} result`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
