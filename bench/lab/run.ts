// `tunnel bench --lab`: options in, one lab up, the suite over every path (suite.ts), then per path a
// table (summary.ts, table.ts), every run's per-second series, and a JSON file if asked. Root only.

import { parseArgs } from 'node:util';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { describeMachine, machineLine } from '../machine.js';
import { readLimits } from '../proc.js';
import { createProgress } from '../progress.js';
import { labSkipReason, startLab } from './lab.js';
import { sshSkipReason } from './baselines.js';
import { PATHS, countSteps, runLabSuite, type Direction, type LabConfig } from './suite.js';
import { summarizeLab } from './summary.js';
import { renderSection, renderSeries } from './table.js';
import { COLLAPSE_FRACTION, RAMP_SECONDS } from './series.js';

const HELP = `Usage: tunnel bench --lab [options]          (root: network namespaces, nft, TUN devices)

Builds the network lab (bench/lab/README.md): the load generator and \`tunnel client\` in site A, the
services and \`tunnel host\` in site B, two cone NATs, the lab's STUN server for ICE. On each path it
measures, through plain TCP (RB's forwarded ports), the tunnel and ssh -L: bulk downloads of a checked
byte stream with the MB/s of every second, a 1 KiB ping-pong alone and beside one download, and the
raw DataChannel (no tunnel) on the same path. Each figure is the median of --runs runs.

  --runs N             runs per figure (default 3)
  --paths LIST         any of ${PATHS.map((p) => p.name).join(',')} (default all)
  --seconds S          length of a bulk measurement and a raw-DC run (default 15)
  --streams LIST       bulk stream counts (default 1,8)
  --directions LIST    down (host to client) and/or up (default down)
  --ping-seconds S     ping-pong time per measurement (default 10)
  --tunnel-args "..."  extra flags for tunnel host and client alike, split on spaces
                       (e.g. "--workers 0" or "--window 4194304")
  --tunnel-env K=V     an environment variable for host and client (repeatable; the bench's own
                       environment is passed to every process anyway)
  --tunnel-only        only the tunnel: no TCP, ssh -L or raw-DC runs (to compare tunnel settings)
  --no-ssh             leave out ssh -L      --no-raw    leave out the raw DataChannel
  --tcp-cc NAME        TCP congestion control in the two sites (cubic, bbr, reno; default: the
                       kernel's default, here bbr): what plain TCP and ssh -L run with
  --prefix P           the lab's namespace prefix (default dcb)
  --json FILE          every run, the per-second series, the rows and the machine as JSON
  --help               this text
`;

export function defaultLabConfig(): LabConfig {
  return {
    runs: 3, paths: [...PATHS], seconds: 15, streams: [1, 8], directions: ['down'],
    pingSeconds: 10, pingBytes: 1024, pingWarmup: 5, pingMaxCount: 2000, pingGraceMs: 10_000,
    drainMs: 10_000, transports: ['tcp', 'tunnel', 'ssh'], raw: true,
    tunnel: { args: [], env: {} }, prefix: 'dcb',
  };
}

function integer(text: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${flag} must be an integer from ${min} to ${max}, got '${text}'`);
  return v;
}

/** A sysctl of the root namespace as text, or '?'. */
function readProc(key: string): string {
  try { return readFileSync(`/proc/sys/${key}`, 'utf8').trim(); } catch { return '?'; }
}

const items = (text: string) => text.split(',').map((s) => s.trim()).filter(Boolean);

/** Flags whose value is itself flags ("--workers 0"): parseArgs wants them as --flag=value. */
const FLAGS_WITH_FLAG_VALUES = new Set(['--tunnel-args', '--tunnel-env']);

function joinFlagValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    const next = args[i + 1];
    if (FLAGS_WITH_FLAG_VALUES.has(a) && next !== undefined) { out.push(`${a}=${next}`); i++; } else out.push(a);
  }
  return out;
}

function parse(args: string[]): { config: LabConfig; json: string | undefined } | 'help' {
  const { values } = parseArgs({
    args: joinFlagValues(args), strict: true, allowPositionals: false,
    options: {
      lab: { type: 'boolean' }, runs: { type: 'string' }, paths: { type: 'string' }, seconds: { type: 'string' },
      streams: { type: 'string' }, directions: { type: 'string' }, 'ping-seconds': { type: 'string' },
      'tunnel-args': { type: 'string' }, 'tunnel-env': { type: 'string', multiple: true }, 'tunnel-only': { type: 'boolean' },
      'no-ssh': { type: 'boolean' }, 'no-raw': { type: 'boolean' }, prefix: { type: 'string' }, json: { type: 'string' },
      'tcp-cc': { type: 'string' }, help: { type: 'boolean' },
    },
  });
  if (values.help) return 'help';
  const c = defaultLabConfig();
  if (values.runs) c.runs = integer(values.runs, '--runs', 1, 50);
  if (values.seconds) c.seconds = integer(values.seconds, '--seconds', RAMP_SECONDS + 3, 600);
  if (values['ping-seconds']) c.pingSeconds = integer(values['ping-seconds'], '--ping-seconds', 1, 600);
  if (values.streams) c.streams = items(values.streams).map((s) => integer(s, '--streams', 1, 256));
  if (values.paths) {
    const names = items(values.paths);
    const unknown = names.filter((n) => !PATHS.some((p) => p.name === n));
    if (unknown.length || !names.length) throw new Error(`--paths takes ${PATHS.map((p) => p.name).join(',')}; got '${values.paths}'`);
    c.paths = PATHS.filter((p) => names.includes(p.name));
  }
  if (values.directions) {
    const dirs = items(values.directions);
    if (!dirs.length || dirs.some((d) => d !== 'down' && d !== 'up')) throw new Error(`--directions takes down,up; got '${values.directions}'`);
    c.directions = [...new Set(dirs)] as Direction[];
  }
  if (values['tunnel-args']) c.tunnel.args = values['tunnel-args'].split(/\s+/).filter(Boolean);
  for (const kv of values['tunnel-env'] ?? []) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`--tunnel-env takes NAME=VALUE, got '${kv}'`);
    c.tunnel.env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  if (values['tunnel-only']) { c.transports = ['tunnel']; c.raw = false; }
  if (values['no-ssh']) c.transports = c.transports.filter((t) => t !== 'ssh');
  if (values['no-raw']) c.raw = false;
  if (values.prefix) c.prefix = values.prefix;
  if (values['tcp-cc']) {
    if (!/^[a-z0-9_]+$/.test(values['tcp-cc'])) throw new Error(`--tcp-cc takes a congestion control's name (cubic, bbr, reno), got '${values['tcp-cc']}'`);
    c.tcpCc = values['tcp-cc'];
  }
  return { config: c, json: values.json };
}

export async function labBench(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (err) {
    process.stderr.write(`tunnel bench --lab: ${(err as Error).message.split('\n')[0]}\n`);
    return 2;
  }
  if (parsed === 'help') { process.stdout.write(HELP); return 0; }
  const { config, json } = parsed;
  const reason = labSkipReason();
  if (reason) { process.stderr.write(`tunnel bench --lab: ${reason}.\n`); return 2; }
  if (config.tcpCc) {
    // a namespace other than the root one may only pick from this list (the root's setting)
    const allowed = readProc('net/ipv4/tcp_allowed_congestion_control').split(/\s+/);
    if (!allowed.includes(config.tcpCc)) {
      process.stderr.write(`tunnel bench --lab: --tcp-cc ${config.tcpCc} is not in net.ipv4.tcp_allowed_congestion_control (${allowed.join(' ')}), which network namespaces are held to; add it there first (sysctl -w net.ipv4.tcp_allowed_congestion_control="${[...allowed, config.tcpCc].join(' ')}").\n`);
      return 2;
    }
  }
  const notes: string[] = [];
  if (config.transports.includes('ssh')) {
    const sshReason = sshSkipReason();
    if (sshReason) { notes.push(`ssh -L left out: ${sshReason}`); config.transports = config.transports.filter((t) => t !== 'ssh'); }
  }

  const machine = describeMachine(readLimits('self'));
  process.stdout.write(`${machineLine(machine)}\n`);
  process.stdout.write(`config: paths ${config.paths.map((p) => p.name).join(',')}; ${config.runs} run(s) per figure, median; bulk ${config.seconds} s, `
    + `${config.directions.join('/')} x ${config.streams.join('/')} stream(s); ping-pong ${config.pingBytes} B for ${config.pingSeconds} s; `
    + `transports ${config.transports.join(',')}${config.raw ? ', raw DC' : ''}; tunnel args '${config.tunnel.args.join(' ')}'`
    + `${Object.keys(config.tunnel.env).length ? `, env ${Object.entries(config.tunnel.env).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`
    + `; TCP congestion control ${config.tcpCc ?? `${readProc('net/ipv4/tcp_congestion_control')} (the kernel's default)`}\n`);
  for (const n of notes) process.stdout.write(`note: ${n}\n`);

  const progress = createProgress(countSteps(config));
  const started = Date.now();
  let lab;
  try {
    lab = await startLab({ prefix: config.prefix, nat: { a: 'cone', b: 'cone' } });
    // per network namespace since Linux 4.15: the two sites' TCP endpoints (the load generator, the
    // service, ssh and sshd) use it; the tunnel's SCTP has its own
    if (config.tcpCc) for (const site of ['a', 'b'] as const) await lab.exec(site, 'sysctl', ['-q', '-w', `net.ipv4.tcp_congestion_control=${config.tcpCc}`]);
  } catch (err) {
    await lab?.down();
    process.stderr.write(`tunnel bench --lab: the lab did not start: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    const results = await runLabSuite(lab, config, progress);
    progress.done();
    const sections = summarizeLab(config, results);
    const loadAfter = describeMachine(null).loadAverage;
    process.stdout.write(`\n${sections.map(renderSection).join('\n')}\n`);
    process.stdout.write(`figures are medians of ${config.runs} run(s) (completed runs only); MB = 10^6 bytes; bulk = the checked pattern, byte for byte; `
      + `a collapse = a second after the first ${RAMP_SECONDS} under ${COLLAPSE_FRACTION * 100}% of its run's median second; `
      + `>= marks a ping that never came back (counted with its time so far); load average after the run ${loadAfter.join(' ')}\n\n`);
    process.stdout.write(renderSeries(results));
    const undrained = results.flatMap((r) => r.bulk.filter((b) => b.drained === false).map((b) => `${r.path.name} upload ${b.streams} via ${b.transport} run ${b.run}`));
    if (undrained.length) process.stdout.write(`\nuploads whose last bytes were not counted within ${config.drainMs} ms of their window (not checked to the end):\n  ${undrained.join('\n  ')}\n`);
    const errors = results.flatMap((r) => r.errors);
    if (errors.length) process.stdout.write(`\n${errors.length} measurement(s) failed:\n${errors.map((e) => `  ${e}`).join('\n')}\n`);
    if (json) {
      mkdirSync(dirname(json), { recursive: true });
      writeFileSync(json, `${JSON.stringify({ machine, config, elapsedMs: Date.now() - started, loadAverageAfter: loadAfter, notes, results, sections, errors }, null, 2)}\n`);
      process.stdout.write(`JSON: ${json}\n`);
    }
    return errors.length ? 1 : 0;
  } catch (err) {
    progress.done();
    process.stderr.write(`tunnel bench --lab: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await lab.down();
  }
}
