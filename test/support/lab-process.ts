// A program run in one of the lab's namespaces by a lab test (the tunnel CLI, the echo service, a
// sender): every line it prints, stamped with performance.now() on arrival, and the ways the tests
// wait on it and stop it. Used by test/integration/lab-paths.test.ts and lab-resume.test.ts.

import type { ChildProcess } from 'node:child_process';
import type { Lab } from '../../bench/lab/lab.js';
import { lineLog, type LineLog } from '../../bench/lab/processes.js';

export interface LabProcess {
  name: string;
  child: ChildProcess;
  out: LineLog;
  err: LineLog;
  /** performance.now() just before the spawn */
  t0: number;
  /** every line of stdout and stderr with performance.now() when it arrived (up to `keep`) */
  lines: { t: number; line: string }[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

/** `node ARGS` in site A or B of the lab. */
export function spawnIn(lab: Lab, site: 'a' | 'b', name: string, args: string[], keep = 20_000): LabProcess {
  const t0 = performance.now();
  const child = lab.spawn(site, process.execPath, args);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, ms: performance.now() - t0 }));
  });
  const lines: { t: number; line: string }[] = [];
  const out = lineLog(child, ['stdout'], 500);
  const err = lineLog(child, ['stderr'], 500);
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream?.on('data', (text: string) => {
      const parts = (partial + text).split('\n');
      partial = parts.pop() ?? '';
      const t = performance.now();
      for (const line of parts) if (lines.length < keep) lines.push({ t, line });
    });
  }
  return { name, child, out, err, t0, lines, exited };
}

export const running = (p: LabProcess) => p.child.exitCode === null && p.child.signalCode === null;

/** Its last lines, for a failure's message. */
export const tail = (p: LabProcess) => [...p.out.lines.slice(-5), ...p.err.lines.slice(-8)].join(' | ');

/** SIGTERM, and SIGKILL if it is still there after 3 s (the CLI forces its own exit after 2 s). */
export async function stopProcess(p: LabProcess | undefined): Promise<void> {
  if (!p || !running(p)) return;
  const timer = setTimeout(() => { try { p.child.kill('SIGKILL'); } catch { /* gone */ } }, 3000);
  p.child.kill('SIGTERM');
  await p.exited;
  clearTimeout(timer);
}

/** Resolves with the `n`-th line of `log` that matches (1-based), or rejects on the exit or after `ms`. */
export async function nthLine(p: LabProcess, log: LineLog, re: RegExp, n: number, ms: number): Promise<RegExpMatchArray> {
  const deadline = performance.now() + ms;
  for (;;) {
    const hits = log.lines.map((l) => l.match(re)).filter((m): m is RegExpMatchArray => m !== null);
    if (hits.length >= n) return hits[n - 1] as RegExpMatchArray;
    if (!running(p)) throw new Error(`${p.name} exited before printing ${re}: ${tail(p)}`);
    if (performance.now() > deadline) throw new Error(`${p.name}: no ${re} in ${ms} ms: ${tail(p)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The first stamped line (from index `from`) matching `re`, with its arrival; rejects on the exit or after `ms`. */
export async function waitLine(p: LabProcess, re: RegExp, ms: number, from = 0): Promise<{ t: number; line: string; m: RegExpMatchArray }> {
  const deadline = performance.now() + ms;
  for (;;) {
    for (let i = from; i < p.lines.length; i++) {
      const l = p.lines[i] as LabProcess['lines'][number];
      const m = l.line.match(re);
      if (m) return { ...l, m };
    }
    if (!running(p)) throw new Error(`${p.name} exited before ${re}: ${tail(p)}`);
    if (performance.now() > deadline) throw new Error(`${p.name}: no ${re} in ${ms} ms: ${tail(p)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** When (performance.now()) the `n`-th line matching `re` arrived, or NaN. */
export const arrival = (p: LabProcess, re: RegExp, n = 1) => p.lines.filter((s) => re.test(s.line))[n - 1]?.t ?? NaN;
