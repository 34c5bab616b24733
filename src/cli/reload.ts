// Reloading the configuration of a running side (SIGHUP; `tunnel reload` sends one): the config file
// is read again and merged with the same flags as at start. Services (host) and forwards (client)
// change at once without touching the streams of the others (dataplane/reconfigure.ts), and so does
// the log level. Everything else is fixed for the life of the process: a change to it is logged as
// needing a restart, and the running value stays. A file that does not parse or check changes nothing
// and is logged; so does a new forward whose port is taken.

import { readFileSync } from 'node:fs';
import { tunnelError } from '../errors.js';
import type { Logger } from '../shared/log.js';
import type { Forward, Service } from '../shared/thread-messages.js';
import { settingsFor, type Said, type Settings } from './settings.js';

/** What a reload can change on the running side. */
export interface Reloadable {
  setServices?(services: Record<string, Service>): void;
  setForwards?(forwards: Forward[]): Promise<void>;
  setLogLevel(level: string): void;
}

/** Settings a running process cannot take without a restart. */
const FIXED: (keyof Settings)[] = ['listen', 'connect', 'workers', 'pin', 'tls', 'ca', 'iceServers', 'iceBind', 'window', 'keepalive', 'resumeTimeout', 'logFormat', 'metrics', 'pidFile', 'quiet'];

const KEY_NAMES: Partial<Record<keyof Settings, string>> = {
  iceServers: 'ice-servers', iceBind: 'ice-bind', logFormat: 'log-format', pidFile: 'pid-file', tls: 'tls-cert/tls-key',
};

export interface Reloader {
  /** Reads the file again and applies it; resolves true if it took (never rejects). */
  reload(): Promise<boolean>;
  current(): Settings;
}

export function createReloader(start: Settings, flags: Said, side: Reloadable, log: Logger, onResult?: (ok: boolean) => void): Reloader {
  let current = start;
  let chain: Promise<unknown> = Promise.resolve();

  async function once(): Promise<boolean> {
    if (!current.config) {
      log.warn('reload: there is no config file to read again (start with --config FILE)');
      return false;
    }
    let next: Settings;
    try {
      next = settingsFor(current.side, flags, current.config);
    } catch (err) {
      log.error(`reload failed, nothing changed: ${(err as Error).message}`);
      onResult?.(false);
      return false;
    }
    const fixed = FIXED.filter((k) => JSON.stringify(current[k]) !== JSON.stringify(next[k]));
    try {
      if (side.setForwards) await side.setForwards(next.forwards);
      side.setServices?.(next.services);
    } catch (err) {
      log.error(`reload failed, nothing changed: ${(err as Error).message}`);
      onResult?.(false);
      return false;
    }
    if (next.logLevel !== current.logLevel) side.setLogLevel(next.logLevel);
    for (const k of fixed) {
      log.warn(`reload: '${KEY_NAMES[k] ?? k}' changed, which needs a restart; the running value stays until then`);
      (next as unknown as Record<string, unknown>)[k] = current[k];
    }
    current = next;
    log.info('configuration reloaded', { file: current.config });
    onResult?.(true);
    return true;
  }

  return {
    reload() {
      const run = chain.then(once, once); // one at a time, in order
      chain = run;
      return run;
    },
    current: () => current,
  };
}

/** `tunnel reload PID` or `tunnel reload --pid-file FILE`: sends SIGHUP to a running tunnel. */
export function sendReload(args: string[]): number {
  let pidText: string | undefined;
  if (args[0] === '--pid-file' && args[1]) {
    try {
      pidText = readFileSync(args[1], 'utf8').trim();
    } catch (err) {
      throw tunnelError('BAD_FLAG', `--pid-file: cannot read ${args[1]}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else if (args.length === 1) {
    pidText = args[0];
  }
  if (!pidText || !/^\d+$/.test(pidText)) throw tunnelError('BAD_FLAG', 'usage: tunnel reload PID | tunnel reload --pid-file FILE (or systemctl reload UNIT)');
  try {
    process.kill(Number(pidText), 'SIGHUP');
  } catch (err) {
    throw tunnelError('BAD_FLAG', `cannot signal process ${pidText}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  process.stdout.write(`sent SIGHUP to ${pidText}: it reads its config file again (its log says what changed)\n`);
  return 0;
}
