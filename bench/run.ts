// `tunnel bench` / `npm run bench`: the benchmark suite. Options in, the suite run (suite.ts), then a
// table on stdout with each figure beside its baseline, a JSON file and an SVG chart if asked.
// `--micro` runs the hot-path micro-benchmarks instead (micro.ts).

import { parseArgs } from 'node:util';
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { installCleanup } from './children.js';
import { describeMachine, machineLine } from './machine.js';
import { readLimits } from './proc.js';
import { createProgress } from './progress.js';
import { SCENARIOS, countSteps, runSuite, type Scenario, type SuiteConfig } from './suite.js';
import { summarize, references } from './summary.js';
import { renderTable } from './table.js';
import { renderChart } from './chart.js';
import { renderBreakdown } from './breakdown.js';

const HELP = `Usage: tunnel bench [options]          (npm run bench: the default suite)

Starts a tunnel host and client as separate processes, a sink/source/echo service and a load
generator, and a raw DataChannel between two processes as the baseline, all on 127.0.0.1.
Prints the machine, a progress line per step (stderr) and a table (stdout): each figure is the
median of --runs runs, beside its baseline and the ratio.

  --runs N            runs per figure, median reported (default 3; --quick 1)
  --workers LIST      worker counts of host and client alike (default 0,1,2)
  --scenarios LIST    any of ${SCENARIOS.join(',')} (default all)
  --streams LIST      concurrent streams for bulk (default 1,8,64,256)
  --bytes MB          MB one bulk measurement moves (default 200; --quick 16)
  --connections N     connections held open at once (default 10000; --quick 1000)
  --quick             a small configuration (npm start's quick table, the test)
  --window BYTES      the tunnel's per-stream window on both sides (default: the tunnel's default)
  --mtu BYTES         the MTU of the tunnel and of the raw baseline alike (default: what the tunnel picks
                      on loopback, 4140)
  --mixed             the mixed scenario instead: 8 bulk downloads alone and beside a 1 MiB/s reader
                      (with --runs, --bytes, --window, and the first of --workers)
  --metrics-cost      bulk (and churn) on a tunnel without metrics and on one with --metrics, scraped
                      every second, in the same run (with --runs, --workers, --streams, --bytes,
                      --scenarios bulk,churn, --window)
  --no-ssh            leave out the ssh -L baseline (bulk, latency and churn through sshd on loopback)
  --json FILE         write every run's figures, the medians and the machine as JSON
  --svg FILE          write a chart of throughput against concurrency per worker count
  --micro             the micro-benchmarks of the hot paths instead (codec, reassembler, dispatcher)
  --lab               the network-lab suite instead (root): RTT, rate and loss between two NATed
                      sites, the tunnel beside plain TCP, ssh -L and the raw DataChannel
                      (tunnel bench --lab --help)
  --help              this text
`;

const MB = 1e6;

export function defaultConfig(quick: boolean): SuiteConfig {
  return {
    runs: quick ? 1 : 3,
    tunnelArgs: [],
    ssh: true,
    workers: quick ? [0, 2] : [0, 1, 2],
    scenarios: [...SCENARIOS],
    streams: quick ? [1, 8, 64] : [1, 8, 64, 256],
    bulkBytes: (quick ? 16 : 200) * MB,
    bulkTimeoutMs: quick ? 20000 : 30000,
    pingBytes: 1024,
    pings: quick ? 300 : 2000,
    pingWarmup: quick ? 30 : 100,
    latencyTimeoutMs: quick ? 10000 : 20000,
    churnTotal: quick ? 500 : 3000,
    churnInflight: 16,
    churnTimeoutMs: quick ? 10000 : 15000,
    connections: quick ? 1000 : 10000,
    connectionBytes: 64,
    opening: 256,
    manyTimeoutMs: quick ? 30000 : 90000,
  };
}

function list(text: string, flag: string, min: number): number[] {
  const values = text.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < min)) throw new Error(`${flag} takes integers >= ${min}, comma-separated; got '${text}'`);
  return values;
}

function integer(text: string, flag: string, min: number): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < min) throw new Error(`${flag} must be an integer >= ${min}, got '${text}'`);
  return v;
}

function writeFile(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

export async function bench(args: string[]): Promise<number> {
  if (args.includes('--lab')) return (await import('./lab/run.js')).labBench(args);
  let values;
  try {
    ({ values } = parseArgs({
      args, strict: true, allowPositionals: false,
      options: {
        runs: { type: 'string' }, workers: { type: 'string' }, scenarios: { type: 'string' }, streams: { type: 'string' },
        bytes: { type: 'string' }, connections: { type: 'string' }, quick: { type: 'boolean' },
        json: { type: 'string' }, svg: { type: 'string' }, micro: { type: 'boolean' }, help: { type: 'boolean' },
        window: { type: 'string' }, mtu: { type: 'string' }, 'no-ssh': { type: 'boolean' }, mixed: { type: 'boolean' }, 'metrics-cost': { type: 'boolean' },
      },
    }));
  } catch (err) {
    process.stderr.write(`tunnel bench: ${(err as Error).message.split('\n')[0]}\n`);
    return 2;
  }
  if (values.help) { process.stdout.write(HELP); return 0; }
  if (values.micro) return (await import('./micro.js')).micro({ quick: values.quick === true, json: values.json });

  const config = defaultConfig(values.quick === true);
  try {
    if (values['no-ssh']) config.ssh = false;
    if (values.runs) config.runs = integer(values.runs, '--runs', 1);
    if (values.workers) config.workers = list(values.workers, '--workers', 0);
    if (values.streams) config.streams = list(values.streams, '--streams', 1);
    if (values.bytes) config.bulkBytes = integer(values.bytes, '--bytes', 1) * MB;
    if (values.connections) config.connections = integer(values.connections, '--connections', 1);
    if (values.window) config.tunnelArgs = ['--window', String(integer(values.window, '--window', 65536))];
    if (values.mtu) {
      const mtu = String(integer(values.mtu, '--mtu', 576));
      config.tunnelArgs = [...config.tunnelArgs, '--mtu', mtu];
      process.env.TUNNEL_BENCH_MTU = mtu; // the raw baseline's peers read it
    }
    if (values.scenarios) {
      const names = values.scenarios.split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = names.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
      if (unknown.length || names.length === 0) throw new Error(`--scenarios takes ${SCENARIOS.join(',')}; got '${values.scenarios}'`);
      config.scenarios = names as Scenario[];
    }
  } catch (err) {
    process.stderr.write(`tunnel bench: ${(err as Error).message}\n`);
    return 2;
  }

  const uninstall = installCleanup();
  try {
    if (values['metrics-cost']) {
      const { metricsCost } = await import('./metrics-cost.js');
      return await metricsCost({
        runs: config.runs, workers: config.workers, streams: config.streams, bytes: config.bulkBytes, tunnelArgs: config.tunnelArgs,
        scenarios: values.scenarios ? config.scenarios : ['bulk', 'churn'], churnTotal: config.churnTotal, churnInflight: config.churnInflight,
      });
    }
    if (values.mixed) {
      const { mixed } = await import('./mixed.js');
      return await mixed({ runs: config.runs, workers: config.workers[0] ?? 0, bytes: config.bulkBytes, tunnelArgs: config.tunnelArgs });
    }
    const machine = describeMachine(readLimits('self'));
    process.stdout.write(`${machineLine(machine)}\n`);
    process.stdout.write(`config: workers ${config.workers.join(',')}; ${config.runs} run(s) per figure, median; scenarios ${config.scenarios.join(',')}; `
      + `bulk ${config.bulkBytes / MB} MB per measurement over ${config.streams.join('/')} streams; ${config.pings} pings; `
      + `churn ${config.churnTotal} x ${config.churnInflight} in flight; ${config.connections} connections held\n`);
    const progress = createProgress(countSteps(config));
    const started = Date.now();
    const results = await runSuite(config, progress);
    progress.done();
    const rows = summarize(config, results);
    const table = renderTable(rows, config.workers);
    const refs = references(config, results);
    const loadAfter = describeMachine(null).loadAverage;
    process.stdout.write(`\n${table}\n${refs.map((l) => `${l}\n`).join('')}`);
    process.stdout.write(`figures are medians of ${config.runs} run(s); MB = 10^6 bytes; CPU = user+sys of host+client (tunnel) or both peers (raw), all threads; `
      + `w=N: --workers N on host and client; load average after the run ${loadAfter.join(' ')}\n`);
    if (results.breakdown) process.stdout.write(`\n${renderBreakdown(results.breakdown).join('\n')}\n`);
    if (results.breakdownError) process.stdout.write(`\nlatency breakdown failed: ${results.breakdownError}\n`);
    const errors = [...results.baseline.errors, ...Object.values(results.tunnel).flatMap((w) => w.errors)];
    const warnings = Object.values(results.tunnel).flatMap((w) => w.warnings);
    if (warnings.length) process.stdout.write(`\n${warnings.length} warning(s):\n${warnings.map((e) => `  ${e}`).join('\n')}\n`);
    if (errors.length) process.stdout.write(`\n${errors.length} measurement(s) failed:\n${errors.map((e) => `  ${e}`).join('\n')}\n`);
    if (values.json) {
      writeFile(values.json, `${JSON.stringify({ machine, config, elapsedMs: Date.now() - started, loadAverageAfter: loadAfter, baseline: results.baseline, tunnel: results.tunnel, breakdown: results.breakdown, rows, references: refs, warnings, errors }, null, 2)}\n`);
      process.stdout.write(`JSON: ${values.json}\n`);
    }
    if (values.svg) {
      writeFile(values.svg, renderChart(rows, config.workers, config.streams, `datachannel-tunnel bulk throughput (${machine.cores} cores, Node ${machine.node})`));
      process.stdout.write(`chart: ${values.svg}\n`);
    }
    return errors.length ? 1 : 0;
  } catch (err) {
    process.stderr.write(`tunnel bench: ${(err as Error).message}\n`);
    return 1;
  } finally {
    uninstall();
  }
}
