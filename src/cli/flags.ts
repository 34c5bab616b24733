// Reading the CLI's flag values: numbers, sizes, the PIN, files, the log level, into what the flags
// say (settings.ts merges that with the config file). Each failure is a BAD_FLAG error naming the flag.

import { readFileSync } from 'node:fs';
import { tunnelError } from '../errors.js';
import { isLevel, isLogFormat } from '../shared/log.js';
import { parseExpose, parseForward, parseHostPort } from '../address.js';
import type { Service } from '../shared/thread-messages.js';
import { parseDuration, parseSize } from './units.js';
import type { Said } from './settings.js';
import { parsePortRange } from '../webrtc/ice-servers.js';
import { MAX_BULK_LANES } from '../webrtc/channels.js';

/** Runs util.parseArgs (or anything that throws on a bad flag) with the error made a BAD_FLAG. */
export function parse<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw tunnelError('BAD_FLAG', (err as Error).message.split('\n')[0] ?? 'bad flag');
  }
}

export function integer(text: string | undefined, flag: string, min: number, max = Infinity): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw tunnelError('BAD_FLAG', `${flag} must be an integer ${max === Infinity ? `>= ${min}` : `from ${min} to ${max}`}, got '${text}'`);
  }
  return Number(text);
}

/** A size flag: bytes, or with a unit (4MiB, 512KiB). */
export function size(text: string | undefined, flag: string, min: number): number | undefined {
  if (text === undefined) return undefined;
  let bytes: number;
  try {
    bytes = parseSize(text);
  } catch (err) {
    throw tunnelError('BAD_FLAG', `${flag}: ${(err as Error).message}`);
  }
  if (bytes < min) throw tunnelError('BAD_FLAG', `${flag} must be at least ${min} bytes, got '${text}'`);
  return bytes;
}

/** A duration flag: milliseconds, or with a unit (500ms, 1s). */
export function duration(text: string | undefined, flag: string, min: number): number | undefined {
  if (text === undefined) return undefined;
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (err) {
    throw tunnelError('BAD_FLAG', `${flag}: ${(err as Error).message}`);
  }
  if (ms < min) throw tunnelError('BAD_FLAG', `${flag} must be at least ${min} ms, got '${text}'`);
  return ms;
}

export function readFlagFile(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw tunnelError('BAD_FLAG', `${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The flags both sides share, as util.parseArgs returns them. */
export interface CommonFlags {
  pin?: string | undefined;
  'pin-file'?: string | undefined;
  workers?: string | undefined;
  'ice-server'?: string[] | undefined;
  'ice-bind'?: string | undefined;
  'ice-relay-only'?: boolean | undefined;
  'ice-port-range'?: string | undefined;
  'no-fallback'?: boolean | undefined;
  mtu?: string | undefined;
  lanes?: string | undefined;
  rendezvous?: string | undefined;
  window?: string | undefined;
  keepalive?: string | undefined;
  'resume-timeout'?: string | undefined;
  'log-level'?: string | undefined;
  'log-format'?: string | undefined;
  metrics?: string | undefined;
  quiet?: boolean | undefined;
  'pid-file'?: string | undefined;
}

export interface SideFlags extends CommonFlags {
  listen?: string | undefined;
  expose?: string[] | undefined;
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
  'rendezvous-id'?: string | undefined;
  connect?: string | undefined;
  code?: string | undefined;
  forward?: string[] | undefined;
  ca?: string | undefined;
}

/** What the flags say, checked. */
export function saidByFlags(values: SideFlags): Said {
  const said: Said = {};
  const set = <K extends keyof Said>(key: K, value: Said[K] | undefined) => { if (value !== undefined) said[key] = value; };
  set('pin', values.pin);
  set('pinFile', values['pin-file']);
  set('workers', integer(values.workers, '--workers', 0));
  if (values['ice-server']?.length) said.iceServers = values['ice-server'];
  set('iceBind', values['ice-bind']);
  if (values['ice-relay-only']) said.iceRelayOnly = true;
  if (values['ice-port-range'] !== undefined) said.icePortRange = parsePortRange(values['ice-port-range']);
  if (values['no-fallback']) said.fallback = false;
  set('mtu', integer(values.mtu, '--mtu', 1));
  set('lanes', integer(values.lanes, '--lanes', 1, MAX_BULK_LANES));
  set('rendezvous', values.rendezvous);
  set('rendezvousId', values['rendezvous-id']);
  set('code', values.code);
  set('window', size(values.window, '--window', 64 * 1024));
  set('keepalive', duration(values.keepalive, '--keepalive', 10));
  set('resumeTimeout', duration(values['resume-timeout'], '--resume-timeout', 0));
  if (values['log-level'] !== undefined) {
    if (!isLevel(values['log-level'])) throw tunnelError('BAD_FLAG', `--log-level must be error, warn, info or debug, got '${values['log-level']}'`);
    said.logLevel = values['log-level'];
  }
  if (values['log-format'] !== undefined) {
    if (!isLogFormat(values['log-format'])) throw tunnelError('BAD_FLAG', `--log-format must be text or json, got '${values['log-format']}'`);
    said.logFormat = values['log-format'];
  }
  if (values.metrics !== undefined) said.metrics = parseHostPort(values.metrics, '--metrics', '127.0.0.1');
  if (values.quiet) said.quiet = true;
  set('pidFile', values['pid-file']);
  if (values.listen !== undefined) { parseHostPort(values.listen, '--listen'); said.listen = values.listen; }
  set('tlsCert', values['tls-cert']);
  set('tlsKey', values['tls-key']);
  if (values.expose?.length) {
    const services: Record<string, Service> = {};
    for (const text of values.expose) {
      const { name, host, port } = parseExpose(text);
      if (Object.hasOwn(services, name)) throw tunnelError('BAD_FLAG', `--expose: service '${name}' is named twice`);
      services[name] = { host, port };
    }
    said.services = services;
  }
  if (values.connect !== undefined) {
    if (!/^wss?:\/\//.test(values.connect)) throw tunnelError('BAD_FLAG', `--connect must be a ws:// or wss:// URL, got '${values.connect}'`);
    said.connect = values.connect;
  }
  if (values.forward?.length) said.forwards = values.forward.map(parseForward);
  set('ca', values.ca);
  return said;
}
