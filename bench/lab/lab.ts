// The project's network lab: two NATed sites and an "internet" between them, built from network
// namespaces, with a real coturn (and optionally the real PeerJS server) in the middle. Tests and the
// benchmark share it; see topology.ts for the picture and bench/lab/README.md for how to use it.
//
//   const lab = await startLab({ nat: { a: 'cone', b: 'symmetric' }, peerjs: true });
//   await lab.shape({ delayMs: 20 });                      // RTT 40 ms between A and B
//   const peer = lab.spawn('b', process.execPath, [...]);  // ended by down()
//   console.log(await lab.counters());                     // which path the bytes took
//   await lab.down();
//
// Needs root, `ip`, `nft`, `turnserver`, `cc` and /dev/net/tun: labSkipReason() says what is missing.
// Everything the lab starts is tracked and ended by down(), and, best effort, when the process exits or
// gets SIGINT/SIGTERM; a lab left behind by a crashed run with the same prefix is taken down at start
// (one whose owner still runs is refused, not touched).

import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, accessSync, constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADDR, MAC, PEERJS, SITES, TURN, checkPrefix, nsName, type Site } from './topology.js';
import { destroyNamespacesSync, hasCommand, ipBatch, namespaceInode, nft, nsRun, run, startTime, sysctl, type ExecResult } from './netns.js';
import { NAT_MODES, portForwardRule, routerRules, type NatMode, type Proto } from './nat.js';
import { installCounters, readCounters, type Counters } from './counters.js';
import { applyShape, buildForwarder, clearShape, emptyShapeState, forwarderStats, type Shape } from './shape.js';
import { startCoturn, turnDenials } from './coturn.js';
import { startPeerServer } from './peerjs.js';
import { tracker } from './processes.js';

export type { Site, NatMode, Shape, Counters, Proto, ExecResult };
export { ADDR, TURN, PEERJS };

export interface LabOptions {
  /** Namespace prefix (default 'dct'): namespaces are PREFIX_a, PREFIX_ra, PREFIX_pub, PREFIX_rb, PREFIX_b. */
  prefix?: string;
  /** NAT of each router (default cone for both). */
  nat?: { a?: NatMode; b?: NatMode };
  /** Drop every UDP packet in PUB: only TCP crosses the internet (the WebSocket-fallback case). */
  blockUdp?: boolean;
  /** Start the PeerJS server in PUB. */
  peerjs?: boolean;
  /** Impairments from the start. */
  shape?: Shape;
}

export interface Lab {
  prefix: string;
  /** Namespace names by site. */
  ns: Readonly<Record<Site, string>>;
  addr: typeof ADDR;
  nat: { a: NatMode; b: NatMode };
  /** turn:USER:PASS@PUB:3478 (node-datachannel's grammar), and the plain STUN URL. */
  turnUrl: string;
  stunUrl: string;
  /** ws://PUB:9000/peerjs (add ?key=peerjs&id=ID&token=TOKEN), or null without `peerjs`. */
  peerjsUrl: string | null;
  /** The lab's directory: the compiled forwarder, coturn's database. Removed by down(). */
  dir: string;
  /** Replaces the current impairments (an empty shape removes them). */
  shape(shape: Shape): Promise<void>;
  /** DNAT `port` on a router's WAN address to its host (default: RB → B, tcp). */
  portForward(port: number, opts?: { site?: 'a' | 'b'; proto?: Proto }): Promise<void>;
  /** A process in a site's namespace (stdio pipes unless `opts.stdio` says otherwise); down() ends it. */
  spawn(site: Site, cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Runs a command in a site's namespace to the end; rejects on a non-zero exit. */
  exec(site: Site, cmd: string, args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<ExecResult>;
  /** PUB's path counters (reset: read and zero them). */
  counters(opts?: { reset?: boolean }): Promise<Counters>;
  /** coturn's log, and the lines of it that refuse something. */
  turnLog(): string[];
  turnDenials(): string[];
  /** The delay forwarders' packet counters (running ones, then ones that ended). */
  forwarderStats(): Promise<string[]>;
  down(): Promise<void>;
}

/** The project root (this file runs as dist/bench/lab/lab.js); delay.c stays in the source tree. */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DELAY_SOURCE = path.join(ROOT, 'bench', 'lab', 'delay.c');

/** Why a lab cannot be built on this machine, or null when it can. Tests skip with this text. */
export function labSkipReason(): string | null {
  if (process.platform !== 'linux') return 'the lab needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'the lab needs root (network namespaces, nft, TUN devices)';
  const missing = [['ip', 'iproute2'], ['tc', 'iproute2'], ['ss', 'iproute2'], ['nft', 'nftables'], ['turnserver', 'coturn'], ['cc', 'gcc']]
    .filter(([cmd]) => !hasCommand(cmd ?? '')).map(([cmd, pkg]) => `${cmd} (Debian ${pkg})`);
  if (missing.length) return `the lab needs ${missing.join(', ')}`;
  try { accessSync('/dev/net/tun', constants.R_OK | constants.W_OK); } catch { return 'the lab needs /dev/net/tun'; }
  if (!existsSync(DELAY_SOURCE)) return `the lab needs its forwarder source ${DELAY_SOURCE}`;
  return null;
}

// ---- labs alive in this process, for the exit and signal hooks ----

const alive = new Map<string, () => void>();
const onExit = () => { for (const teardown of [...alive.values()]) teardown(); };
const onSignal = (signal: NodeJS.Signals) => {
  onExit();
  process.off(signal, onSignal);
  // nobody else handles it: die of it, as without us
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
};

function hold(prefix: string, teardown: () => void): void {
  if (alive.size === 0) {
    process.on('exit', onExit);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  alive.set(prefix, teardown);
}

function release(prefix: string): void {
  alive.delete(prefix);
  if (alive.size === 0) {
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

// ---- stale labs ----

/** Takes down a lab with our prefix left behind by a run that is gone; refuses one whose owner runs. */
function reclaim(prefix: string, names: string[], dir: string): void {
  const present = names.filter((n) => namespaceInode(n) !== null);
  if (present.length === 0 && !existsSync(dir)) return;
  let owner = '';
  try { owner = readFileSync(path.join(dir, 'owner'), 'utf8').trim(); } catch { /* no owner file: stale */ }
  const [pid, started] = owner.split(' ');
  if (alive.has(prefix)) throw new Error(`lab ${prefix} is already up in this process`);
  if (pid && Number(pid) !== process.pid && started && startTime(Number(pid)) === started) {
    throw new Error(`lab ${prefix} belongs to PID ${pid}, which still runs: use another prefix`);
  }
  destroyNamespacesSync(names);
  rmSync(dir, { recursive: true, force: true });
}

// ---- building ----

async function buildTopology(ns: Record<Site, string>, nat: { a: NatMode; b: NatMode }, blockUdp: boolean): Promise<void> {
  await run('ip', ['-batch', '-'], { input: SITES.map((s) => `netns add ${ns[s]}`).join('\n') + '\n' });
  const noV6 = { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 };
  await Promise.all([
    // early demux off in PUB: it attaches a local TCP/UDP socket to a packet before routing, and a packet
    // with a socket attached is dropped by the forward path, which the delay's detour through the TUN
    // device takes (measured: a TCP handshake to PUB hung on its third packet)
    sysctl(ns.pub, { ...noV6, 'net.ipv4.ip_forward': 1, 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.default.rp_filter': 0,
      'net.ipv4.conf.all.send_redirects': 0, 'net.ipv4.conf.default.send_redirects': 0, 'net.ipv4.ip_early_demux': 0 }),
    sysctl(ns.ra, { ...noV6, 'net.ipv4.ip_forward': 1 }),
    sysctl(ns.rb, { ...noV6, 'net.ipv4.ip_forward': 1 }),
    sysctl(ns.a, noV6),
    sysctl(ns.b, noV6),
  ]);
  // links are made inside the namespaces, so no interface name ever exists in the root namespace
  await ipBatch(ns.pub, [
    'link set lo up',
    `addr add ${ADDR.pub}/32 dev lo`,
    `link add pa address ${MAC.pubToRa} type veth peer name wan netns ${ns.ra} address ${MAC.raWan}`,
    `link add pb address ${MAC.pubToRb} type veth peer name wan netns ${ns.rb} address ${MAC.rbWan}`,
    'link set pa up', 'link set pb up',
    `route add ${ADDR.raWan}/32 dev pa src ${ADDR.pub}`,
    `route add ${ADDR.rbWan}/32 dev pb src ${ADDR.pub}`,
    `neigh replace ${ADDR.raWan} lladdr ${MAC.raWan} dev pa nud permanent`,
    `neigh replace ${ADDR.rbWan} lladdr ${MAC.rbWan} dev pb nud permanent`,
    // the internet does not route 10/8: a default route into a link whose other end is down drops
    // those packets silently (coturn needs its sends to private peers to succeed, see coturn.ts);
    // the kernel here has no dummy device type
    'link add sink type veth peer name sinkp',
    'link set sink arp off up',
    'route add default dev sink',
  ]);
  const sides = [
    { router: ns.ra, host: ns.a, wan: ADDR.raWan, lan: ADDR.raLan, ip: ADDR.a, pubMac: MAC.pubToRa, mode: nat.a },
    { router: ns.rb, host: ns.b, wan: ADDR.rbWan, lan: ADDR.rbLan, ip: ADDR.b, pubMac: MAC.pubToRb, mode: nat.b },
  ];
  await Promise.all(sides.map(async (s) => {
    await ipBatch(s.router, [
      'link set lo up',
      `addr add ${s.wan}/32 dev wan`, 'link set wan up',
      `route add ${ADDR.pub}/32 dev wan src ${s.wan}`,
      `route add default via ${ADDR.pub} dev wan src ${s.wan}`,
      `neigh replace ${ADDR.pub} lladdr ${s.pubMac} dev wan nud permanent`,
      `link add lan type veth peer name eth0 netns ${s.host}`,
      `addr add ${s.lan}/24 dev lan`, 'link set lan up',
    ]);
    await ipBatch(s.host, ['link set lo up', `addr add ${s.ip}/24 dev eth0`, 'link set eth0 up', `route add default via ${s.lan}`]);
    await nft(s.router, routerRules(s.mode));
  }));
  await installCounters(ns.pub, blockUdp);
}

export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const reason = labSkipReason();
  if (reason) throw new Error(reason);
  const prefix = opts.prefix ?? 'dct';
  checkPrefix(prefix);
  const nat = { a: opts.nat?.a ?? 'cone', b: opts.nat?.b ?? 'cone' };
  for (const mode of [nat.a, nat.b]) if (!NAT_MODES.includes(mode)) throw new Error(`NAT mode must be one of ${NAT_MODES.join(', ')}: ${mode}`);
  const ns = Object.fromEntries(SITES.map((s) => [s, nsName(prefix, s)])) as Record<Site, string>;
  const names = SITES.map((s) => ns[s]);
  const dir = path.join(os.tmpdir(), `${prefix}-lab`);
  reclaim(prefix, names, dir);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'owner'), `${process.pid} ${startTime(process.pid) ?? ''}\n`);

  const tracked = tracker();
  const shapeState = emptyShapeState();
  const delayBin = path.join(dir, 'delay');
  const shapeCtx = { ns: { pub: ns.pub, ra: ns.ra, rb: ns.rb }, tracked, delayBin };
  const teardownSync = () => {
    for (const child of tracked.live()) { try { child.kill('SIGKILL'); } catch { /* gone */ } }
    destroyNamespacesSync(names);
    rmSync(dir, { recursive: true, force: true });
    release(prefix);
  };
  hold(prefix, teardownSync);

  let downed: Promise<void> | null = null;
  const down = () => {
    downed ??= (async () => {
      await clearShape(shapeCtx, shapeState).catch(() => {});
      await tracked.stopAll();
      teardownSync();
    })();
    return downed;
  };

  try {
    // allSettled, not all: on a failure, down() must not run while another step still starts things
    const steps = await Promise.allSettled([
      buildTopology(ns, nat, opts.blockUdp ?? false),
      buildForwarder(DELAY_SOURCE, delayBin),
      // coturn and the PeerJS server wait for PUB's address, which buildTopology adds first
      waitForAddress(ns.pub).then(() => startCoturn(ns.pub, dir, tracked)),
      opts.peerjs ? waitForAddress(ns.pub).then(() => startPeerServer(ns.pub, tracked)) : Promise.resolve(null),
    ] as const);
    const failed = steps.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const [, , coturnStep, peerStep] = steps;
    if (coturnStep.status !== 'fulfilled' || peerStep.status !== 'fulfilled') throw new Error('unreachable');
    const coturn = coturnStep.value;
    const peer = peerStep.value;
    const site = (s: Site) => {
      if (!SITES.includes(s)) throw new Error(`no such lab site: ${s}`);
      return ns[s];
    };
    const lab: Lab = {
      prefix, ns, addr: ADDR, nat, dir,
      turnUrl: `turn:${TURN.user}:${TURN.pass}@${ADDR.pub}:${TURN.port}`,
      stunUrl: `stun:${ADDR.pub}:${TURN.port}`,
      peerjsUrl: peer ? `ws://${ADDR.pub}:${PEERJS.port}${PEERJS.path.replace(/\/$/, '')}/peerjs` : null,
      shape: (shape) => applyShape(shapeCtx, shapeState, shape),
      async portForward(port, o = {}) {
        const side = o.site ?? 'b';
        if (nat[side] === 'closed') throw new Error(`router ${side} is closed: it forwards no port`);
        if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad port ${port}`);
        await nft(side === 'a' ? ns.ra : ns.rb, portForwardRule(side === 'a' ? 'ra' : 'rb', o.proto ?? 'tcp', port));
      },
      spawn: (s, cmd, args, o) => tracked.spawn(site(s), cmd, args, o),
      exec: (s, cmd, args, o) => nsRun(site(s), cmd, args, o),
      counters: (o = {}) => readCounters(ns.pub, o.reset),
      turnLog: () => [...coturn.log.lines],
      turnDenials: () => turnDenials(coturn.log),
      forwarderStats: async () => [...await forwarderStats(shapeState), ...shapeState.finished],
      down,
    };
    if (opts.shape) await lab.shape(opts.shape);
    return lab;
  } catch (err) {
    await down();
    throw err;
  }
}

/** Resolves once PUB has its public address (coturn binds to it). */
async function waitForAddress(pub: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const out = await nsRun(pub, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'lo']).catch(() => ({ stdout: '' }));
    if (out.stdout.includes(ADDR.pub)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`PUB never got ${ADDR.pub}`);
}
