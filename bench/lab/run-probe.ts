// Running probe.ts in a lab site from the harness: to the end (its JSON lines), or in the background
// until it says it is ready.

import type { ChildProcess } from 'node:child_process';
import type { Lab, Site } from './lab.js';
import { PROBE } from './probe.js';
import { lineLog, type LineLog } from './processes.js';

export interface Probe { child: ChildProcess; log: LineLog; done: Promise<unknown[]> }

function parse(lines: string[]): unknown[] {
  return lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as unknown);
}

/** Starts a probe; `done` resolves with its JSON lines when it exits (rejects on an error line or code). */
export function spawnProbe(lab: Lab, site: Site, args: string[]): Probe {
  const child = lab.spawn(site, process.execPath, [PROBE, ...args]);
  const log = lineLog(child);
  const done = new Promise<unknown[]>((resolve, reject) => {
    child.once('exit', (code) => {
      const out = parse(log.lines);
      const error = out.find((o) => typeof o === 'object' && o !== null && 'error' in o);
      if (code !== 0 || error) reject(new Error(`probe ${args[0]} in ${site} (exit ${code}): ${log.lines.slice(-5).join(' | ')}`));
      else resolve(out);
    });
  });
  done.catch(() => {}); // a caller that only waits for ready must not get an unhandled rejection
  return { child, log, done };
}

/** A probe run to its end. */
export function runProbe(lab: Lab, site: Site, args: string[]): Promise<unknown[]> {
  return spawnProbe(lab, site, args).done;
}

/** A server-like probe (udp-listen, udp-echo, tcp-sink), once it printed {"ready":true}. */
export async function startProbe(lab: Lab, site: Site, args: string[], timeoutMs = 10_000): Promise<Probe> {
  const probe = spawnProbe(lab, site, args);
  await probe.log.waitFor(/"ready":true/, timeoutMs, `probe ${args[0]} in ${site}`);
  return probe;
}
