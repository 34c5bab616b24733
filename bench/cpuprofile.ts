// Reads the .cpuprofile files that `node --cpu-prof` writes (one per thread, workers included) and
// lists the functions with the most self time: where each thread's CPU went.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; hitCount?: number; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples?: number[]; timeDeltas?: number[] }

export interface HotSpot { name: string; where: string; selfMs: number; percent: number }
export interface ProfileSummary {
  file: string;
  pid: number;
  /** 0: the main thread; workers count from 1 */
  thread: number;
  /** sampled time that was not idle (ms) */
  busyMs: number;
  totalMs: number;
  top: HotSpot[];
}

/** "CPU.20261127.121212.4242.0.001.cpuprofile" -> pid 4242, thread 0 */
function ids(file: string): { pid: number; thread: number } {
  const parts = basename(file).split('.');
  return { pid: Number(parts[3] ?? Number.NaN), thread: Number(parts[4] ?? Number.NaN) };
}

function shortUrl(url: string): string {
  if (!url) return '';
  const at = url.search(/\/(dist|node_modules)\//);
  return at >= 0 ? url.slice(at + 1) : url.replace(/^file:\/\//, '');
}

export function summarizeProfile(file: string, topN = 8): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // a sample's time is the delta to the next sample
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i];
    const dt = deltas[i + 1] ?? 0;
    if (id !== undefined) selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  }
  const totals = new Map<string, { name: string; where: string; us: number }>();
  let busy = 0;
  let total = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    total += us;
    if (frame.functionName === '(idle)') continue;
    busy += us;
    const name = frame.functionName || '(anonymous)';
    const where = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const entry = totals.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    totals.set(key, entry);
  }
  const top = [...totals.values()].sort((a, b) => b.us - a.us).slice(0, topN)
    .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, percent: busy ? (100 * e.us) / busy : 0 }));
  return { file, ...ids(file), busyMs: busy / 1000, totalMs: total / 1000, top };
}

export function renderProfile(s: ProfileSummary, role: string): string {
  const lines = [`${role} ${s.thread === 0 ? 'main thread' : `worker thread ${s.thread}`} (pid ${s.pid}): busy ${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms sampled — ${basename(s.file)}`];
  for (const h of s.top) lines.push(`  ${h.selfMs.toFixed(0).padStart(7)} ms ${h.percent.toFixed(1).padStart(5)}%  ${h.name}${h.where ? `  ${h.where}` : ''}`);
  return lines.join('\n');
}
