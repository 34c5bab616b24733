// Impairing the "internet": one-way delay and random loss by the C forwarder (delay.c) on two TUN
// devices in PUB, rate by tbf on both ends of each WAN link.
//
//   from RA ──pa──▶ PUB: rule `iif pa` → table 100 → dev dla ─▶ [delay.c A→B] ─▶ dla ─▶ routed on (to pb, or to coturn)
//   from RB ──pb──▶ PUB: rule `iif pb` → table 101 → dev dlb ─▶ [delay.c B→A] ─▶ dlb ─▶ routed on (to pa, or to coturn)
//
// Every packet that comes in from a router is delayed once, on the way in; what PUB itself sends
// (coturn's relayed packets, the PeerJS server's replies) is not delayed. So a one-way trip costs one
// delay whether it goes direct (A → PUB → B) or through the relay (A → coturn, coturn → B): a relayed
// path has the same RTT as a direct one, as it would with a TURN server near the middle of the path.
// The local table's rule moves behind the two `iif` rules, or packets for coturn would skip the delay.
//
// One process per direction, so data and ACKs do not share one single-threaded forwarder.
//
// What the forwarders carry (plain TCP A → B at RTT 40 ms, `npx node dist/bench/lab/ceiling.js`, busy
// 2-core machine, single runs): 8 streams 274-527 MB/s with GSO pass-through (no loss), 35-103 MB/s
// per packet (any loss); the table and the method are in delay.c's header and bench/lab/README.md.

import { execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { ipBatch, nsRun, sysctl } from './netns.js';
import { lineLog, type LineLog, type Tracked } from './processes.js';

export interface Shape {
  /** One-way delay (ms) on every path between the sites and to PUB: RTT A↔B = 2 × delayMs. */
  delayMs?: number;
  /** Random loss (%) in each direction, or per direction (ab = A→B and A→PUB). */
  lossPct?: number | { ab: number; ba: number };
  /** Rate limit (Mbit/s) in each direction. */
  rateMbit?: number;
}

interface Forwarder { child: ChildProcess; log: LineLog; dev: string }

export interface ShapeState {
  forwarders: Forwarder[];
  /** The last stats line of each forwarder that ended. */
  finished: string[];
  rated: boolean;
}

export const emptyShapeState = (): ShapeState => ({ forwarders: [], finished: [], rated: false });

export interface ShapeContext {
  ns: { pub: string; ra: string; rb: string };
  tracked: Tracked;
  /** The compiled forwarder. */
  delayBin: string;
}

/** The two directions: device, routing table, the link packets come in by. */
const DIRECTIONS = [
  { dev: 'dla', table: 100, iif: 'pa', key: 'ab' },
  { dev: 'dlb', table: 101, iif: 'pb', key: 'ba' },
] as const;

/** Rate-limited links: both ends of each WAN link, so each direction is limited where it leaves. */
const RATED = (ctx: ShapeContext) => [[ctx.ns.ra, 'wan'], [ctx.ns.rb, 'wan'], [ctx.ns.pub, 'pa'], [ctx.ns.pub, 'pb']] as const;

/** The forwarder must say `ready DEV` within this time (ms). */
const FORWARDER_READY_MS = 5000;

export async function applyShape(ctx: ShapeContext, state: ShapeState, shape: Shape): Promise<void> {
  const delayMs = shape.delayMs ?? 0;
  const loss = typeof shape.lossPct === 'object' ? shape.lossPct : { ab: shape.lossPct ?? 0, ba: shape.lossPct ?? 0 };
  const rate = shape.rateMbit ?? 0;
  for (const v of [delayMs, loss.ab, loss.ba, rate]) if (!(Number.isFinite(v) && v >= 0)) throw new Error(`shape: bad value ${v}`);
  if (loss.ab > 100 || loss.ba > 100) throw new Error('shape: loss is a percentage (0-100)');
  await clearShape(ctx, state);

  if (delayMs > 0 || loss.ab > 0 || loss.ba > 0) {
    for (const d of DIRECTIONS) {
      const child = ctx.tracked.spawn(ctx.ns.pub, ctx.delayBin, ['--dev', d.dev, '--delay-ms', String(delayMs), '--loss-pct', String(loss[d.key])]);
      const log = lineLog(child);
      state.forwarders.push({ child, log, dev: d.dev });
      await log.waitFor(new RegExp(`^ready ${d.dev}$`), FORWARDER_READY_MS, `delay forwarder ${d.dev}`);
      // a deep queue on the TUN device: the forwarder reads in bursts
      await ipBatch(ctx.ns.pub, [`link set ${d.dev} up txqueuelen 10000`, `route add default dev ${d.dev} table ${d.table}`]);
      // packets come back out of the device with addresses that are PUB's own or not on that link
      await sysctl(ctx.ns.pub, { [`net.ipv4.conf.${d.dev}.rp_filter`]: 0, [`net.ipv4.conf.${d.dev}.accept_local`]: 1 });
    }
    await ipBatch(ctx.ns.pub, [
      ...DIRECTIONS.map((d) => `rule add pref ${d.table} iif ${d.iif} lookup ${d.table}`),
      'rule add pref 150 lookup local',
      'rule del pref 0 lookup local',
    ]);
  }

  if (rate > 0) {
    // burst: 1 ms at the rate (at least 3 KB); queue: max(20 ms, 2 × delay) at the rate (at least 64 KB)
    const bytesPerMs = rate * 125;
    const burst = Math.max(3000, Math.round(bytesPerMs));
    const limit = Math.max(65536, Math.round(bytesPerMs * Math.max(20, 2 * delayMs)));
    for (const [ns, dev] of RATED(ctx)) {
      await nsRun(ns, 'tc', ['qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${rate}mbit`, 'burst', String(burst), 'limit', String(limit)]);
    }
    state.rated = true;
  }
}

export async function clearShape(ctx: ShapeContext, state: ShapeState): Promise<void> {
  if (state.forwarders.length > 0) {
    // routing first, so traffic flows undelayed while the forwarders stop
    await ipBatch(ctx.ns.pub, ['rule add pref 0 lookup local', 'rule del pref 150', ...DIRECTIONS.map((d) => `rule del pref ${d.table}`)]).catch(() => {});
    await Promise.all(state.forwarders.map((f) => ctx.tracked.stop(f.child)));
    for (const f of state.forwarders) {
      const stats = f.log.lines.filter((l) => l.startsWith('stats ')).at(-1);
      if (stats) state.finished.push(`${f.dev} ${stats}`);
    }
    state.forwarders = [];
  }
  if (state.rated) {
    for (const [ns, dev] of RATED(ctx)) await nsRun(ns, 'tc', ['qdisc', 'del', 'dev', dev, 'root']).catch(() => {});
    state.rated = false;
  }
}

/** Each running forwarder's counters (`dla stats in=… out=… drop_loss=…`), asked for with SIGUSR1. */
export async function forwarderStats(state: ShapeState): Promise<string[]> {
  return Promise.all(state.forwarders.map(async (f) => {
    const before = f.log.lines.length;
    f.child.kill('SIGUSR1');
    for (let i = 0; i < 150; i++) { // up to 3 s: a busy machine may take a while to schedule it
      const line = f.log.lines.slice(before).find((l) => l.startsWith('stats '));
      if (line) return `${f.dev} ${line}`;
      await new Promise((r) => setTimeout(r, 20));
    }
    return `${f.dev} (no answer)`;
  }));
}

/** Compiles delay.c with `cc -O2` (the lab calls this once at start). */
export function buildForwarder(source: string, out: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('cc', ['-O2', '-Wall', '-o', out, source], { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`cc -O2 ${source}: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}
