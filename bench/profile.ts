// A profiling run: the tunnel's host and client as separate processes under load for a while, with
// `node --cpu-prof` (one profile per thread, worker threads included) and optionally `clinic doctor`
// or `clinic flame` around one of them (clinic sees the main thread only). Prints the functions with
// the most self time in every thread.
//
//   node dist/bench/profile.js SCENARIO [--workers N] [--seconds S] [--streams N] [--clinic doctor|flame] [--role host|client] [--dir DIR]
//   SCENARIO: upload | download | churn | latency | many

import { parseArgs } from 'node:util';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { installCleanup, stop, exited, type Child, type Launch } from './children.js';
import { descendants, commandLine } from './proc.js';
import { startApps, startTunnel, bulk, latency, churn, many, type Tunnel } from './tunnel.js';
import { summarizeProfile, renderProfile } from './cpuprofile.js';

const SCENARIOS = ['upload', 'download', 'churn', 'latency', 'many'] as const;
type Scenario = (typeof SCENARIOS)[number];

const HELP = `Usage: node dist/bench/profile.js SCENARIO [options]      (npm run profile -- SCENARIO)

SCENARIO is one of ${SCENARIOS.join(', ')}. Runs it against a host and a client started with
node --cpu-prof (every thread), then prints each thread's functions with the most self time.

  --workers N         --workers of host and client (default 2)
  --seconds S         how long to keep the load on (default 15)
  --streams N         concurrent streams for upload/download (default 64)
  --connections N     connections for many (default 10000)
  --clinic TOOL       also run clinic doctor or clinic flame around --role (main thread only)
  --role host|client  which process clinic wraps (default host)
  --dir DIR           where profiles go (default bench-results/profile)
  --top N             functions listed per thread (default 8)
`;

async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args, strict: true, allowPositionals: true,
    options: {
      workers: { type: 'string' }, seconds: { type: 'string' }, streams: { type: 'string' }, connections: { type: 'string' },
      clinic: { type: 'string' }, role: { type: 'string' }, dir: { type: 'string' }, top: { type: 'string' }, help: { type: 'boolean' },
    },
  });
  const scenario = positionals[0] as Scenario | undefined;
  if (values.help || !scenario || !(SCENARIOS as readonly string[]).includes(scenario)) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  const workers = Number(values.workers ?? 2);
  const seconds = Number(values.seconds ?? 15);
  const streams = Number(values.streams ?? 64);
  const connections = Number(values.connections ?? 10000);
  const top = Number(values.top ?? 8);
  const role = values.role === 'client' ? 'client' : 'host';
  if (values.clinic && values.clinic !== 'doctor' && values.clinic !== 'flame') throw new Error('--clinic takes doctor or flame');
  const dir = resolve(values.dir ?? 'bench-results/profile');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });

  const launch = (who: 'host' | 'client'): Launch => {
    const cpuProf = ['--cpu-prof', '--cpu-prof-dir', join(dir, who)];
    if (values.clinic && who === role) {
      const clinic = createRequire(import.meta.url).resolve('clinic/bin.js');
      // clinic runs the command after `--`; NO_INSIGHT keeps it from asking questions without a terminal
      // cwd: clinic flame (0x) leaves V8 logs in its working directory
      return { wrapper: [process.execPath, clinic, values.clinic, '--dest', join(dir, `clinic-${who}`), '--'], nodeArgs: cpuProf, env: { NO_INSIGHT: '1' }, cwd: dir };
    }
    return { nodeArgs: cpuProf };
  };

  const uninstall = installCleanup();
  const apps = await startApps();
  let t: Tunnel | null = null;
  try {
    process.stderr.write(`profile: ${scenario}, workers ${workers}, ${seconds} s, profiles in ${dir}\n`);
    t = await startTunnel(workers, apps, connections, { host: launch('host'), client: launch('client') });
    const until = Date.now() + seconds * 1000;
    let rounds = 0;
    while (Date.now() < until) {
      rounds++;
      if (scenario === 'upload' || scenario === 'download') {
        const f = await bulk(apps, t, scenario === 'upload' ? 'up' : 'down', streams, 100e6, 60000);
        process.stderr.write(`  ${scenario} ${streams} streams: ${f.mbps.toFixed(1)} MB/s, ${f.cpuMsPerMB.toFixed(2)} ms CPU/MB\n`);
      } else if (scenario === 'latency') {
        const l = await latency(apps, t.ports.echo, 1024, 2000, 50, 30000);
        process.stderr.write(`  latency p50 ${l.p50.toFixed(0)} µs p99 ${l.p99.toFixed(0)} µs\n`);
      } else if (scenario === 'churn') {
        const c = await churn(apps, t, 1024, 5000, 16, 30000);
        process.stderr.write(`  churn ${c.perS.toFixed(0)} conn/s, ${c.cpuUsPerConn.toFixed(0)} µs CPU/conn\n`);
      } else {
        const m = await many(apps, t, connections, 64, 256, 90000);
        process.stderr.write(`  many: ${m.exchanged}/${connections}, host ${m.hostKiBPerConn.toFixed(1)} KiB/conn, client ${m.clientKiBPerConn.toFixed(1)} KiB/conn\n`);
      }
    }
    process.stderr.write(`profile: ${rounds} round(s); stopping (profiles are written at exit${values.clinic ? '; clinic then analyses, which takes a while' : ''})\n`);
    // SIGINT: the CLI closes cleanly (workers included, so they write their profiles)
    await finish(t.client, values.clinic !== undefined && role === 'client');
    await finish(t.host, values.clinic !== undefined && role === 'host');
  } finally {
    await t?.close();
    await apps.close();
    uninstall();
  }

  for (const who of ['host', 'client'] as const) {
    let files: string[] = [];
    try { files = readdirSync(join(dir, who)).filter((f) => f.endsWith('.cpuprofile')).sort(); } catch { /* none */ }
    if (files.length === 0) process.stdout.write(`${who}: no profile written\n`);
    for (const f of files) process.stdout.write(`${renderProfile(summarizeProfile(join(dir, who, f), top), who)}\n\n`);
  }
  if (values.clinic) process.stdout.write(`clinic ${values.clinic} report: ${join(dir, `clinic-${role}`)}/*.html\n`);
  return 0;
}

/** Time clinic may take to analyse after the profiled process exited (ms). */
const CLINIC_ANALYSIS_MS = 180000;

/** Stops a CLI process with SIGINT. Under clinic the signal goes to the wrapped node process itself
 *  (clinic flame does not pass it on), then clinic is given time to write its report. */
async function finish(child: Child, underClinic: boolean): Promise<void> {
  if (!underClinic) {
    await stop(child, 10000, 'SIGINT');
    return;
  }
  const target = descendants(child.pid).find((pid) => commandLine(pid).includes('cli.js'));
  if (target) {
    try { process.kill(target, 'SIGINT'); } catch { /* gone */ }
  }
  if (!(await exited(child, CLINIC_ANALYSIS_MS))) await stop(child, 5000, 'SIGINT');
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`profile: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
