// How busy the machine was during a measurement: the 1-minute load average at its start and end, the
// share of all cores the whole machine was busy (/proc/stat, interrupts and softirqs included: where
// the kernel forwards the lab's packets), the share the lab's "internet" took (every process in PUB:
// the delay forwarders, coturn), and the share that processes outside the bench used (machine busy
// time minus the CPU of the harness and of every process in the lab's namespaces). On a shared 2-core
// VM the last is what makes two runs differ; the first says whether a figure was bound by the CPU.

import os from 'node:os';
import { readFileSync } from 'node:fs';
import { cpuMs } from '../proc.js';
import { namespaceInode, namespacesOf } from './netns.js';
import type { Lab } from './lab.js';

/** /proc/stat's unit (USER_HZ), which Linux keeps at 100 whatever the kernel's own tick. */
const STAT_TICKS_PER_S = 100;

export interface LoadSample {
  /** 1-minute load average at the start and at the end */
  loadAverage: [number, number];
  /** the whole machine busy (user, system, interrupts), % of all cores */
  machineBusyPct: number;
  /** CPU of the processes in PUB (the delay forwarders, coturn), % of all cores */
  pubCpuPct: number;
  /** CPU used by processes outside the bench, % of all cores */
  otherCpuPct: number;
  /** time the hypervisor gave to others (steal), % of all cores */
  stealPct: number;
}

interface Snapshot { at: number; load: number; busyMs: number; stealMs: number; ours: Map<number, number>; pub: Set<number> }

function machineTimes(): { busyMs: number; stealMs: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [, user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).map(Number);
  const ms = (ticks: number) => (ticks * 1000) / STAT_TICKS_PER_S;
  return { busyMs: ms(user + nice + system + irq + softirq), stealMs: ms(steal) };
}

export function snapshot(lab: Lab): Snapshot {
  const inodes = new Set(Object.values(lab.ns).map(namespaceInode).filter((i): i is number => i !== null));
  const pubInode = namespaceInode(lab.ns.pub);
  const ours = new Map<number, number>();
  const pub = new Set<number>();
  // the harness itself, then every process in the lab's namespaces (one pass over /proc)
  for (const [pid, inode] of [[process.pid, null], ...namespacesOf(inodes)] as [number, number | null][]) {
    const ms = cpuMs(pid);
    if (Number.isNaN(ms)) continue;
    ours.set(pid, ms);
    if (inode !== null && inode === pubInode) pub.add(pid);
  }
  return { at: performance.now(), load: os.loadavg()[0] ?? Number.NaN, ...machineTimes(), ours, pub };
}

/** From a snapshot taken at the start to now. */
export function loadSince(lab: Lab, start: Snapshot): LoadSample {
  const end = snapshot(lab);
  let oursMs = 0;
  let pubMs = 0;
  // a process that started meanwhile counts from 0; one that ended meanwhile is lost (rare: the
  // transports start before a measurement and stop after it)
  for (const [pid, ms] of end.ours) {
    const used = ms - (start.ours.get(pid) ?? 0);
    oursMs += used;
    if (end.pub.has(pid)) pubMs += used;
  }
  const capacityMs = (end.at - start.at) * os.cpus().length; // /proc/stat sums every core
  const pct = (ms: number) => Math.round(Math.max(0, (ms / capacityMs) * 100));
  return {
    loadAverage: [round2(start.load), round2(end.load)],
    machineBusyPct: pct(end.busyMs - start.busyMs),
    pubCpuPct: pct(pubMs),
    otherCpuPct: pct(end.busyMs - start.busyMs - oursMs),
    stealPct: pct(end.stealMs - start.stealMs),
  };
}

const round2 = (v: number) => Math.round(v * 100) / 100;
