// Running things in network namespaces, and finding every process that lives in one.
//
// A process is matched to a namespace by the namespace's inode (/proc/PID/ns/net against
// /run/netns/NAME), never by name or command line: cleanup then reaches whatever the lab's programs
// started themselves, and can never touch a process outside the lab's namespaces, however it is named.

import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';

/** One setup command may take this long (ms); a hung `ip` or `nft` must not hang the lab. */
const EXEC_TIMEOUT_MS = 15_000;

export interface ExecResult { stdout: string; stderr: string }

/** Runs a command (no shell) and rejects with its stderr in the message. */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? EXEC_TIMEOUT_MS, maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve({ stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** `cmd args` inside namespace `ns` (ip netns exec execs it, so a spawned PID is the command's own). */
export function nsArgs(ns: string, cmd: string, args: string[]): string[] {
  return ['netns', 'exec', ns, cmd, ...args];
}

export function nsRun(ns: string, cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  return run('ip', nsArgs(ns, cmd, args), opts);
}

/** Many `ip` commands in one process (`ip -n NS -batch -`): building the lab is mostly these. */
export function ipBatch(ns: string, lines: string[]): Promise<ExecResult> {
  return run('ip', ['-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n' });
}

/** A whole nft ruleset (or a few commands) into one namespace, atomically. */
export function nft(ns: string, ruleset: string): Promise<ExecResult> {
  return nsRun(ns, 'nft', ['-f', '-'], { input: ruleset });
}

export function sysctl(ns: string, settings: Record<string, string | number>): Promise<ExecResult> {
  return nsRun(ns, 'sysctl', ['-qw', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);
}

/** The inode that identifies a named namespace, or null when it does not exist. */
export function namespaceInode(ns: string): number | null {
  try {
    return statSync(`/run/netns/${ns}`).ino;
  } catch {
    return null;
  }
}

/** PIDs of every process whose network namespace is one of `inodes`. */
export function pidsIn(inodes: ReadonlySet<number>): number[] {
  return [...namespacesOf(inodes).keys()];
}

/** Every process whose network namespace is one of `inodes`, with that namespace's inode. */
export function namespacesOf(inodes: ReadonlySet<number>): Map<number, number> {
  const found = new Map<number, number>();
  if (inodes.size === 0) return found;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const match = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/ns/net`));
      if (match && inodes.has(Number(match[1]))) found.set(Number(entry), Number(match[1]));
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  return found;
}

/**
 * Synchronous teardown of namespaces: SIGKILL to every process in them, then delete them. For the exit
 * hook (no event loop left) and for a stale lab; down() stops processes politely first.
 */
export function destroyNamespacesSync(names: readonly string[]): void {
  const inodes = new Set<number>();
  for (const ns of names) {
    const ino = namespaceInode(ns);
    if (ino !== null) inodes.add(ino);
  }
  for (let round = 0; round < 3; round++) {
    const pids = pidsIn(inodes);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    sleepSync(50);
  }
  for (const ns of names) {
    if (namespaceInode(ns) === null) continue;
    try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: EXEC_TIMEOUT_MS }); } catch { /* best effort */ }
  }
}

export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The start time of a process (clock ticks since boot), to tell a live owner from a recycled PID. */
export function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** True if `cmd` is on the PATH. */
export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
