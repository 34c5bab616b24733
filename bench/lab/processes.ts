// The processes a lab starts: spawned into a namespace, remembered, and stopped by down() (SIGTERM,
// then SIGKILL). Whatever they started in turn is caught by the namespace sweep in netns.ts.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { nsArgs } from './netns.js';

/** SIGTERM first; what still runs after this long gets SIGKILL (ms). coturn takes ~1 s to stop. */
const STOP_GRACE_MS = 2000;

export interface Tracked {
  spawn(ns: string, cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Every tracked process still running. */
  live(): ChildProcess[];
  stop(child: ChildProcess): Promise<void>;
  stopAll(): Promise<void>;
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

export function tracker(): Tracked {
  const children = new Set<ChildProcess>();
  const stop = (child: ChildProcess): Promise<void> => {
    if (!running(child)) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, STOP_GRACE_MS);
      child.once('exit', () => { clearTimeout(timer); resolve(); });
      try { child.kill('SIGTERM'); } catch { clearTimeout(timer); resolve(); }
    });
  };
  return {
    spawn(ns, cmd, args, opts = {}) {
      const child = spawn('ip', nsArgs(ns, cmd, args), { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
      children.add(child);
      child.once('exit', () => children.delete(child));
      // a spawn failure (no `ip`) must not become an unhandled 'error' that ends the process
      child.on('error', () => {});
      return child;
    },
    live: () => [...children].filter(running),
    stop,
    stopAll: () => Promise.all([...children].map(stop)).then(() => undefined),
  };
}

/** Lines a child writes to one of its streams, the last `keep` of them, with a waiter for a pattern. */
export interface LineLog {
  lines: string[];
  /** Resolves with the first line (seen so far or later) that matches; rejects on exit or timeout. */
  waitFor(pattern: RegExp, timeoutMs: number, what: string): Promise<string>;
}

export function lineLog(child: ChildProcess, streams: ('stdout' | 'stderr')[] = ['stdout', 'stderr'], keep = 2000): LineLog {
  const lines: string[] = [];
  const waiters = new Set<(line: string) => void>();
  for (const name of streams) {
    const stream = child[name];
    if (!stream) continue;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => {
      partial += text;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        for (const w of waiters) w(line);
      }
      if (lines.length > keep) lines.splice(0, lines.length - keep);
    });
  }
  return {
    lines,
    waitFor(pattern, timeoutMs, what) {
      const seen = lines.find((l) => pattern.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const done = (err: Error | null, line = '') => {
          clearTimeout(timer);
          waiters.delete(onLine);
          child.off('exit', onExit);
          if (err) reject(err); else resolve(line);
        };
        const onLine = (line: string) => { if (pattern.test(line)) done(null, line); };
        const onExit = (code: number | null) => done(new Error(`${what} exited (${code}) before it was ready:\n  ${lines.slice(-10).join('\n  ')}`));
        const timer = setTimeout(() => done(new Error(`${what} not ready in ${timeoutMs} ms:\n  ${lines.slice(-10).join('\n  ')}`)), timeoutMs);
        waiters.add(onLine);
        child.once('exit', onExit);
      });
    },
  };
}
