// The benchmark's child processes: started here, tracked, and always ended — on success, on failure,
// on SIGINT/SIGTERM and at exit (a last SIGKILL sweep), so no host, client or load generator outlives
// a run.

import { spawn, spawnSync, fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { readLimits, descendants } from './proc.js';

const live = new Set<ChildProcess>();
let installed = false;
/** Grace between SIGTERM and SIGKILL (ms): the tunnel's CLI forces its own exit after 2 s. */
const STOP_GRACE_MS = 3000;

/** Kills every child on SIGINT/SIGTERM and exit. Returns the function that removes the handlers. */
export function installCleanup(): () => void {
  if (installed) return () => {};
  installed = true;
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\nbench: ${signal}, stopping ${live.size} child process(es)\n`);
    killAll('SIGKILL');
    process.exit(130);
  };
  const onExit = () => killAll('SIGKILL');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
    installed = false;
  };
}

export function killAll(signal: NodeJS.Signals): void {
  for (const child of live) {
    // a wrapper (clinic) has the real process below it: end the whole tree
    for (const pid of child.pid !== undefined ? descendants(child.pid) : []) {
      try { process.kill(pid, signal); } catch { /* already gone */ }
    }
    try { child.kill(signal); } catch { /* already gone */ }
  }
}

function track(child: ChildProcess, name: string, log: string[]): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.on('error', (err) => log.push(`${name}: ${err.message}`));
  // the last lines a child wrote to stderr, shown when something fails
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    for (const line of text.split('\n')) if (line) log.push(`${name}: ${line}`);
    if (log.length > 200) log.splice(0, log.length - 100);
  });
  return child;
}

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** recent stderr lines, for error messages */
  log: string[];
}

/** A bench/ script as a child with an IPC channel, on the Node that runs the harness. */
export function forkScript(name: string, script: string, args: string[] = []): Child {
  const log: string[] = [];
  const path = fileURLToPath(new URL(`./${script}`, import.meta.url));
  const proc = track(fork(path, args, { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }), name, log);
  if (proc.pid === undefined) throw new Error(`cannot start ${name}`);
  return { name, proc, pid: proc.pid, log };
}

/** How to run the CLI: extra Node flags (--cpu-prof), or a wrapper in front of node (clinic). */
export interface Launch { nodeArgs?: string[]; wrapper?: string[]; env?: Record<string, string>; cwd?: string }

/** The tunnel's CLI (dist/src/cli.js) as deployed, as a child; stdout is readable for its banner. */
export function spawnCli(name: string, args: string[], launch: Launch = {}): Child {
  const log: string[] = [];
  const cli = fileURLToPath(new URL('../src/cli.js', import.meta.url));
  const command = [...(launch.wrapper ?? []), process.execPath, ...(launch.nodeArgs ?? []), cli, ...args];
  const env = launch.env ? { ...process.env, ...launch.env } : process.env;
  const proc = track(spawn(command[0] ?? process.execPath, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env, ...(launch.cwd ? { cwd: launch.cwd } : {}) }), name, log);
  if (proc.pid === undefined) throw new Error(`cannot start ${name}`);
  return { name, proc, pid: proc.pid, log };
}

/** Any program as a tracked child (ended with the others), e.g. sshd and ssh for the ssh -L baseline. */
export function spawnProgram(name: string, command: string, args: string[]): Child {
  const log: string[] = [];
  const proc = track(spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] }), name, log);
  if (proc.pid === undefined) throw new Error(`cannot start ${name}`);
  return { name, proc, pid: proc.pid, log };
}

/** Resolves with the stdout lines seen once `done(lines)` says enough; rejects on exit or timeout. */
export function waitForLines(child: Child, done: (lines: string[]) => boolean, timeoutMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const lines: string[] = [];
    let partial = '';
    const stdout = child.proc.stdout;
    if (!stdout) { reject(new Error(`${child.name} has no stdout`)); return; }
    const finish = (err: Error | null) => {
      clearTimeout(timer);
      stdout.off('data', onData);
      child.proc.off('exit', onExit);
      if (err) reject(err); else resolve(lines);
    };
    const onData = (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
      if (done(lines)) finish(null);
    };
    const onExit = (code: number | null) => finish(new Error(`${child.name} exited (${code}) before it was ready:\n  ${child.log.slice(-8).join('\n  ')}`));
    const timer = setTimeout(() => finish(new Error(`${child.name} not ready in ${timeoutMs} ms:\n  ${child.log.slice(-8).join('\n  ')}`)), timeoutMs);
    stdout.on('data', onData);
    child.proc.once('exit', onExit);
  });
}

/** SIGTERM (or `signal`), then SIGKILL after the grace period; resolves once the process is gone. */
export function stop(child: Child, graceMs = STOP_GRACE_MS, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const { proc } = child;
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => {
      for (const pid of descendants(child.pid)) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
      try { proc.kill('SIGKILL'); } catch { /* gone */ }
    }, graceMs);
    proc.once('exit', () => { clearTimeout(kill); resolve(); });
    try { proc.kill(signal); } catch { clearTimeout(kill); resolve(); }
  });
}

/**
 * Makes sure a child may open `need` file descriptors. Node raises its own soft limit to the hard
 * limit at start-up; where that is still short, prlimit raises the soft limit (never past the hard
 * one). Returns the soft limit in force afterwards.
 */
export function ensureFdLimit(child: Child, need: number): number {
  const limits = readLimits(child.pid);
  if (!limits || limits.soft >= need) return limits?.soft ?? need;
  const target = Math.min(need, limits.hard);
  const result = spawnSyncQuiet('prlimit', ['--pid', String(child.pid), `--nofile=${target}:${limits.hard}`]);
  return result ? readLimits(child.pid)?.soft ?? limits.soft : limits.soft;
}

function spawnSyncQuiet(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 5000 });
  return result.status === 0;
}

/** Resolves true once the process has exited, false after `timeoutMs`. */
export function exited(child: Child, timeoutMs: number): Promise<boolean> {
  const { proc } = child;
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    proc.once('exit', () => { clearTimeout(timer); resolve(true); });
  });
}

/** Resolves once something accepts on 127.0.0.1:`port`; rejects, with the child's last lines, if
 *  `child` exits first or `timeoutMs` passes. */
export async function untilAccepting(what: string, port: number, child: Child, timeoutMs = 15_000, pollMs = 100): Promise<void> {
  const connects = () => new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
  const deadline = Date.now() + timeoutMs;
  while (!(await connects())) {
    if (child.proc.exitCode !== null) throw new Error(`${child.name} exited (${child.proc.exitCode}): ${child.log.slice(-5).join(' | ')}`);
    if (Date.now() > deadline) throw new Error(`${what} not ready in ${timeoutMs} ms: ${child.log.slice(-5).join(' | ')}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
