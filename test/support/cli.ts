// The tunnel as processes: where the compiled CLI is, one wrapper for every child a test starts
// (the CLI or a fixture script), and the flags that keep a spawned host or client on 127.0.0.1.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { within } from './timing.js';

/** The project root (this file runs as dist/test/support/cli.js). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
/** Compiled fixture scripts (test/support/fixtures/*.ts). */
export const FIXTURES = path.join(ROOT, 'dist', 'test', 'support', 'fixtures');

/** Log level of the tunnels under test, in this process and in children; TUNNEL_TEST_LOG=debug to
 *  see everything. Quiet by default: many tests provoke resets and refusals on purpose. */
export const LOG_LEVEL = process.env.TUNNEL_TEST_LOG ?? 'error';
/** The PIN of the tunnels under test, spawned or in this process. */
export const PIN = '73519468';

export interface Exit { code: number | null; signal: NodeJS.Signals | null }

export interface Child {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout match of `re` (rejects on exit or after `ms`). */
  line(re: RegExp, ms: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or the signal) once the process and its output are gone. */
  exited: Promise<Exit>;
  /** Ends the process if it is still running: SIGKILL (which also ends a stopped one), or first
   *  `signal` and SIGKILL only if it is still there after 2 s. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** How long a child asked to stop with a gentler signal than SIGKILL may take (ms). */
const GRACE_MS = 2000;

/** Children not yet gone, so stopChildren() can end whatever a failed test left running. */
const running = new Set<Child>();

/**
 * Runs `node SCRIPT ARGS` with the Node binary running the tests. The environment is this one minus
 * TUNNEL_PIN (a developer's own PIN must not leak into a test), plus `env`. With `viaNpx`, the CLI
 * runs exactly as a user types it (`npx node dist/src/cli.js ...`); only for commands that are not
 * signalled: npx does not forward SIGTERM (it exits and leaves its child running) and SIGKILL on
 * npx would kill only npx.
 */
export function spawnNode(script: string, args: string[], options: { viaNpx?: boolean; env?: NodeJS.ProcessEnv } = {}): Child {
  const env: NodeJS.ProcessEnv = { ...process.env, ...(options.viaNpx ? { npm_config_update_notifier: 'false' } : {}), ...options.env };
  if (!options.env || !('TUNNEL_PIN' in options.env)) delete env.TUNNEL_PIN;
  const [cmd, argv] = options.viaNpx ? ['npx', ['node', script, ...args]] : [process.execPath, [script, ...args]];
  const proc = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
  const what = path.basename(script) === 'cli.js' ? `tunnel ${args[0] ?? ''}` : path.basename(script);
  let out = '';
  let err = '';
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const check = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      const m = w ? out.match(w.re) : null;
      if (w && m) {
        waiters.splice(i, 1);
        w.resolve(m);
      }
    }
  };
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d; check(); });
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => { err += d; });
  let gone = false;
  const exited = new Promise<Exit>((resolve) => {
    proc.once('close', (code, signal) => { gone = true; running.delete(child); resolve({ code, signal }); });
  });
  const child: Child = {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    line(re, ms) {
      return within(new Promise<RegExpMatchArray>((resolve, reject) => {
        waiters.push({ re, resolve });
        check();
        void exited.then(({ code, signal }) => reject(new Error(`${what} exited (${code ?? signal}) before printing ${re}; stderr: ${err.trim()}`)));
      }), ms, `${what}: waiting for ${re} (stdout so far: ${JSON.stringify(out)}, stderr: ${JSON.stringify(err)})`);
    },
    async stop(signal = 'SIGKILL') {
      if (gone) return;
      proc.kill(signal);
      if (signal !== 'SIGKILL') await within(exited, GRACE_MS, 'exit').catch(() => proc.kill('SIGKILL'));
      await exited;
    },
  };
  running.add(child);
  return child;
}

/** `tunnel ARGS` as a process (see spawnNode). */
export function runCli(args: string[], options: { viaNpx?: boolean; env?: NodeJS.ProcessEnv } = {}): Child {
  return spawnNode(CLI, args, options);
}

/** Runs `tunnel ARGS` to its end. Taking longer than `ms` fails the test; the process then gets
 *  SIGINT, so that one with children of its own (`tunnel bench`) can end them. */
export async function runToExit(args: string[], ms: number, options: { viaNpx?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<Exit & { stdout: string; stderr: string }> {
  const child = runCli(args, options);
  try {
    const exit = await within(child.exited, ms, `tunnel ${args.join(' ')}`);
    return { ...exit, stdout: child.stdout(), stderr: child.stderr() };
  } finally {
    await child.stop('SIGINT');
  }
}

/** The CLI's contract for a start-up failure: one plain sentence on stderr ("tunnel client: ..."),
 *  no stack trace. (The exit code is the caller's to check.) */
export function assertOnePlainLine(stderr: string, what: string): void {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: one line on stderr, got ${JSON.stringify(stderr)}`);
  assert.match(lines[0] ?? '', /^tunnel( \w+)?: \S/, `${what}: a plain sentence`);
  assert.doesNotMatch(stderr, /\n\s+at |Error:|node:internal/, `${what}: no stack trace`);
}

/** Kills every child still running; for a file's last after(). */
export async function stopChildren(): Promise<void> {
  await Promise.all([...running].map((c) => c.stop()));
}

export interface SideFlags {
  /** --workers (default 1) */
  workers?: number;
  /** --pin; leave it out to give the PIN by --pin-file or TUNNEL_PIN */
  pin?: string;
  /** --listen of a host (default 127.0.0.1:0) */
  listen?: string;
}

/** Flags every spawned host and client shares: ICE kept on 127.0.0.1, the tests' log level. */
function common(flags: SideFlags): string[] {
  return ['--ice-bind', '127.0.0.1', '--workers', String(flags.workers ?? 1), '--log-level', LOG_LEVEL, ...(flags.pin === undefined ? [] : ['--pin', flags.pin])];
}

/** `tunnel host` exposing `echo` at 127.0.0.1:`echoPort`; `extra` flags come last (a later
 *  --log-level overrides the tests' own). */
export function hostArgs(echoPort: number, flags: SideFlags, ...extra: string[]): string[] {
  return ['host', '--listen', flags.listen ?? '127.0.0.1:0', '--expose', `echo=127.0.0.1:${echoPort}`, ...common(flags), ...extra];
}

/** `tunnel client` of `url` forwarding 127.0.0.1:`port` to `echo`; `extra` flags come last. */
export function clientArgs(url: string, port: number, flags: SideFlags, ...extra: string[]): string[] {
  return ['client', '--connect', url, '--forward', `127.0.0.1:${port}=echo`, ...common(flags), ...extra];
}

/** Starts `tunnel host` and resolves with it and its signaling URL once it listens. */
export async function spawnHost(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<{ child: Child; url: string }> {
  const child = runCli(args, options);
  const url = (await child.line(/listening on (wss?:\/\/\S+)/, 15_000))[1] ?? '';
  return { child, url };
}

/** Starts `tunnel client` and resolves once it forwards. */
export async function spawnClient(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<Child> {
  const child = runCli(args, options);
  await child.line(/forwarding \S+ -> \S+/, 20_000);
  return child;
}
