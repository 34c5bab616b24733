// How busy the machine was during a measurement, besides the bench itself: the 1-minute load average
// at its start and end, and the share of all cores that processes outside the bench used (machine
// busy time from /proc/stat minus the CPU of the harness and of every process in the lab's
// namespaces). On a shared 2-core VM that share is what makes two runs differ.

import os from 'node:os';
import { readFileSync } from 'node:fs';
import { cpuMs } from '../proc.js';
import { namespaceInode, pidsIn } from './netns.js';
import type { Lab } from './lab.js';

/** /proc/stat's unit (USER_HZ), which Linux keeps at 100 whatever the kernel's own tick. */
const STAT_TICKS_PER_S = 100;

export interface LoadSample {
  /** 1-minute load average at the start and at the end */
  loadAverage: [number, number];
  /** CPU used by processes outside the bench, % of all cores */
  otherCpuPct: number;
  /** time the hypervisor gave to others (steal), % of all cores */
  stealPct: number;
}

interface Snapshot { at: number; load: number; busyMs: number; stealMs: number; ours: Map<number, number> }

function machineTimes(): { busyMs: number; stealMs: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [, user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).map(Number);
  const ms = (ticks: number) => (ticks * 1000) / STAT_TICKS_PER_S;
  return { busyMs: ms(user + nice + system + irq + softirq), stealMs: ms(steal) };
}

function ourProcesses(lab: Lab): number[] {
  const inodes = new Set(Object.values(lab.ns).map(namespaceInode).filter((i): i is number => i !== null));
  return [process.pid, ...pidsIn(inodes)];
}

export function snapshot(lab: Lab): Snapshot {
  const ours = new Map<number, number>();
  for (const pid of ourProcesses(lab)) {
    const ms = cpuMs(pid);
    if (!Number.isNaN(ms)) ours.set(pid, ms);
  }
  return { at: performance.now(), load: os.loadavg()[0] ?? Number.NaN, ...machineTimes(), ours };
}

/** From a snapshot taken at the start to now. */
export function loadSince(lab: Lab, start: Snapshot): LoadSample {
  const end = snapshot(lab);
  let oursMs = 0;
  // a process that started meanwhile counts from 0; one that ended meanwhile is lost (rare: the
  // transports start before a measurement and stop after it)
  for (const [pid, ms] of end.ours) oursMs += ms - (start.ours.get(pid) ?? 0);
  const capacityMs = (end.at - start.at) * os.cpus().length; // /proc/stat sums every core
  const pct = (ms: number) => Math.round(Math.max(0, (ms / capacityMs) * 100));
  return {
    loadAverage: [round2(start.load), round2(end.load)],
    otherCpuPct: pct(end.busyMs - start.busyMs - oursMs),
    stealPct: pct(end.stealMs - start.stealMs),
  };
}

const round2 = (v: number) => Math.round(v * 100) / 100;
