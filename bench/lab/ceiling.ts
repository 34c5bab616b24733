// What the lab's path carries: plain TCP from A to B (through both NATs and PUB, to a port forwarded on
// RB), 1 and 8 streams, with no impairment (the baseline: veth and NAT only), with the delay forwarders
// at RTT 40 ms, and with them again but the GSO pass-through turned off (a tiny loss setting does that;
// see delay.c). iperf3 when the machine has it, otherwise probe.ts's TCP sender. Prints a table and,
// with --json, one JSON object.
//
//   npx node dist/bench/lab/ceiling.js [--seconds 8] [--delay-ms 20] [--json] [--node]

import { parseArgs } from 'node:util';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { startLab, type Lab, type Shape } from './lab.js';
import { runProbe, startProbe } from './run-probe.js';
import { lineLog } from './processes.js';

const PORT = 5201;

function hasIperf3(): boolean {
  try { execFileSync('sh', ['-c', 'command -v iperf3'], { stdio: 'ignore' }); return true; } catch { return false; }
}

/** MB/s (10^6 B) received by B. */
async function measure(lab: Lab, streams: number, seconds: number, useIperf: boolean): Promise<number> {
  if (useIperf) {
    const server = lab.spawn('b', 'iperf3', ['-s', '-1', '--forceflush', '-p', String(PORT), '-B', lab.addr.b]);
    const log = lineLog(server);
    await log.waitFor(/Server listening/, 5000, 'iperf3 -s');
    const { stdout } = await lab.exec('a', 'iperf3', ['-c', lab.addr.rbWan, '-p', String(PORT), '-P', String(streams), '-t', String(seconds), '-J'], { timeoutMs: (seconds + 20) * 1000 });
    // the next run binds the same port: wait until this one-off server is gone
    if (server.exitCode === null && server.signalCode === null) {
      await new Promise<void>((resolve) => { const t = setTimeout(resolve, 5000); server.once('exit', () => { clearTimeout(t); resolve(); }); });
    }
    const report = JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number } } };
    return report.end.sum_received.bits_per_second / 8 / 1e6;
  }
  const sink = await startProbe(lab, 'b', ['tcp-sink', '--port', String(PORT), '--seconds', String(seconds + 3)]);
  await runProbe(lab, 'a', ['tcp-send', '--host', lab.addr.rbWan, '--port', String(PORT), '--streams', String(streams), '--seconds', String(seconds)]);
  const [, got] = (await sink.done) as { bytes: number; ms: number }[];
  return got ? got.bytes / 1e6 / (got.ms / 1000) : NaN;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string' }, 'delay-ms': { type: 'string' }, json: { type: 'boolean' }, node: { type: 'boolean' } } });
  const seconds = Number(values.seconds ?? 8);
  const delayMs = Number(values['delay-ms'] ?? 20);
  const useIperf = !values.node && hasIperf3();
  const cases: { name: string; shape: Shape }[] = [
    { name: 'no impairment (baseline)', shape: {} },
    { name: `delay ${delayMs} ms each way, GSO pass-through`, shape: { delayMs } },
    // any loss turns the offloads off; one in a million is no loss to speak of
    { name: `delay ${delayMs} ms each way, per packet`, shape: { delayMs, lossPct: 0.0001 } },
  ];
  const lab = await startLab({ prefix: 'dcc' });
  // the machine's 1-minute load with each figure: on a shared 2-core machine it explains most of the spread
  const rows: { case: string; streams: number; MBps: number; load1: number; forwarders: string[] }[] = [];
  try {
    await lab.portForward(PORT);
    for (const c of cases) {
      await lab.shape(c.shape);
      for (const streams of [1, 8]) {
        const MBps = await measure(lab, streams, seconds, useIperf);
        rows.push({ case: c.name, streams, MBps: +MBps.toFixed(1), load1: +(os.loadavg()[0] ?? 0).toFixed(1), forwarders: await lab.forwarderStats() });
        if (!values.json) process.stdout.write(`${c.name.padEnd(44)} ${String(streams).padStart(2)} stream(s) ${MBps.toFixed(1).padStart(7)} MB/s   load ${(os.loadavg()[0] ?? 0).toFixed(1)}\n`);
      }
    }
  } finally {
    await lab.down();
  }
  if (values.json) process.stdout.write(JSON.stringify({ tool: useIperf ? 'iperf3' : 'node', seconds, delayMs, rows }) + '\n');
}

main().catch((err: unknown) => { process.stderr.write(`ceiling: ${(err as Error).message}\n`); process.exit(1); });
