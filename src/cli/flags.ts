// Reading the CLI's flag values: numbers, the PIN, files, the log level. Each failure is a BAD_FLAG
// error naming the flag.

import { readFileSync } from 'node:fs';
import { tunnelError } from '../errors.js';
import { isLevel } from '../shared/log.js';
import type { DataPlaneConfig } from '../shared/limits.js';
import type { SideOptions } from '../options.js';
import { parsePortRange } from '../webrtc/ice-servers.js';

/** Runs util.parseArgs (or anything that throws on a bad flag) with the error made a BAD_FLAG. */
export function parse<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw tunnelError('BAD_FLAG', (err as Error).message.split('\n')[0] ?? 'bad flag');
  }
}

export function integer(text: string | undefined, flag: string, min: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min) throw tunnelError('BAD_FLAG', `${flag} must be an integer >= ${min}, got '${text}'`);
  return Number(text);
}

export function readFlagFile(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw tunnelError('BAD_FLAG', `${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The PIN from --pin, --pin-file or TUNNEL_PIN (the last two keep it out of ps); undefined if none. */
export function readPin(values: { pin?: string | undefined; 'pin-file'?: string | undefined }): string | undefined {
  if (values.pin !== undefined && values['pin-file'] !== undefined) throw tunnelError('BAD_FLAG', 'give --pin or --pin-file, not both');
  if (values['pin-file'] !== undefined) return readFlagFile(values['pin-file'], '--pin-file').toString('utf8').trim();
  return values.pin ?? (process.env.TUNNEL_PIN || undefined);
}

/** The rendezvous code from --code or TUNNEL_CODE (which keeps its PIN out of ps); undefined if none. */
export function readCode(values: { code?: string | undefined }): string | undefined {
  return values.code ?? (process.env.TUNNEL_CODE || undefined);
}

/** The ICE and fallback flags, as startHost / startClient take them (they check the URLs). */
export function ice(values: {
  'ice-server'?: string[] | undefined; 'ice-bind'?: string | undefined; 'ice-relay-only'?: boolean | undefined;
  'ice-port-range'?: string | undefined; 'no-fallback'?: boolean | undefined;
}): Pick<SideOptions, 'iceServers' | 'iceBind' | 'iceRelayOnly' | 'icePortRange' | 'fallback'> {
  return {
    iceServers: values['ice-server'],
    iceBind: values['ice-bind'],
    iceRelayOnly: values['ice-relay-only'],
    icePortRange: values['ice-port-range'] === undefined ? undefined : parsePortRange(values['ice-port-range']),
    fallback: !values['no-fallback'],
  };
}

export function dataPlane(values: { window?: string | undefined; keepalive?: string | undefined }): Partial<DataPlaneConfig> {
  const window = integer(values.window, '--window', 64 * 1024);
  const keepalive = integer(values.keepalive, '--keepalive', 10);
  // --window fixes the window: it starts at that size and does not grow
  return { ...(window ? { windowBytes: window, initialWindowBytes: window } : {}), ...(keepalive ? { keepaliveMs: keepalive, peerTimeoutMs: 5 * keepalive } : {}) };
}

export function logLevel(value: string | undefined): string {
  if (value !== undefined && !isLevel(value)) throw tunnelError('BAD_FLAG', `--log-level must be error, warn, info or debug, got '${value}'`);
  return value ?? 'info';
}
