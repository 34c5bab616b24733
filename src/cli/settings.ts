// What the tunnel runs with: the flags over the config file over the defaults. Both sources are
// first checked on their own (flags.ts, config-file.ts) into a `Said` — what that source says — and
// then merged here, so a reload re-reads the file and merges it with the same flags again.
//
// Precedence: a flag > the file > the default. Services merge by name and forwards by listen address
// (a flag's replaces the file's of the same name or address; the others stay); --ice-server replaces
// the file's list. The PIN: --pin / --pin-file, then TUNNEL_PIN, then the file's pin / pin-file.

import { tunnelError } from '../errors.js';
import type { Forward, Service } from '../shared/thread-messages.js';
import type { Level, LogFormat } from '../shared/log.js';
import { defaultConfig } from '../shared/limits.js';
import { workerCount } from '../options.js';
import { DEFAULT_BULK_LANES } from '../webrtc/channels.js';
import { readFlagFile } from './flags.js';
import { readConfigFile } from './config-file.js';

export type Side = 'host' | 'client';

/** Everything one source (the flags, or the file) says; absent = not said. */
export interface Said {
  pin?: string;
  pinFile?: string;
  workers?: number;
  iceServers?: string[];
  iceBind?: string;
  iceRelayOnly?: boolean;
  icePortRange?: { min: number; max: number };
  fallback?: boolean;
  mtu?: number;
  lanes?: number;
  /** a PeerJS relay: the host registers there, the client finds the host there by its code */
  rendezvous?: string;
  rendezvousId?: string;
  code?: string;
  window?: number;
  keepalive?: number;
  resumeTimeout?: number;
  logLevel?: Level;
  logFormat?: LogFormat;
  metrics?: { host: string; port: number };
  quiet?: boolean;
  pidFile?: string;
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  services?: Record<string, Service>;
  connect?: string;
  ca?: string;
  forwards?: Forward[];
}

export type PinSource = 'flag' | 'flag-file' | 'env' | 'file' | 'file-file' | 'generated';

export interface Settings {
  side: Side;
  /** the config file, if any (what a reload re-reads) */
  config?: string | undefined;
  /** undefined: the host generates one */
  pin?: { value: string; from: PinSource; path?: string | undefined } | undefined;
  workers: number;
  iceServers: string[];
  iceBind?: string | undefined;
  iceRelayOnly: boolean;
  icePortRange?: { min: number; max: number } | undefined;
  fallback: boolean;
  /** undefined: the default (webrtc/mtu.ts) */
  mtu?: number | undefined;
  /** bulk lanes (webrtc/channels.ts): the client's wish, the host's limit; the smaller wins */
  lanes: number;
  rendezvous?: string | undefined;
  /** undefined: the automatic window (it grows per round trip); a number: fixed at that size */
  window?: number | undefined;
  keepalive: number;
  /** how long streams wait for a lost peer to come back (ms); 0: resume off */
  resumeTimeout: number;
  logLevel: Level;
  logFormat: LogFormat;
  metrics?: { host: string; port: number } | undefined;
  quiet: boolean;
  pidFile?: string | undefined;
  // host
  /** undefined: no signaling port (a host that only registers at a rendezvous relay) */
  listen?: string | undefined;
  rendezvousId?: string | undefined;
  tls?: { cert: string; key: string } | undefined;
  services: Record<string, Service>;
  // client
  connect?: string | undefined;
  /** the host's code at the rendezvous relay (ID-PIN, or ID with the PIN given apart) */
  code?: { value: string; from: 'flag' | 'env' | 'file' } | undefined;
  ca?: string | undefined;
  forwards: Forward[];
}

export const DEFAULT_LISTEN = '127.0.0.1:8765';

/** The settings of `side` from its flags and, when `config` names one, the file. `readPin: false`
 *  leaves a PIN file unread (--print-config shows its path, not its content). */
export function settingsFor(side: Side, flags: Said, config: string | undefined, options: { readPin?: boolean } = {}): Settings {
  const file = config ? readConfigFile(config, side) : {};
  return merge(side, flags, file, config, options.readPin !== false);
}

export function merge(side: Side, flags: Said, file: Said, config?: string, readPin = true): Settings {
  const pick = <K extends keyof Said>(key: K): Said[K] => (flags[key] !== undefined ? flags[key] : file[key]);
  const tlsCert = pick('tlsCert');
  const tlsKey = pick('tlsKey');
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw tunnelError('BAD_FLAG', 'tls-cert and tls-key go together');
  const services: Record<string, Service> = { ...file.services, ...flags.services };
  const forwards = new Map<string, Forward>();
  for (const f of [...(file.forwards ?? []), ...(flags.forwards ?? [])]) forwards.set(forwardKey(f), f);
  const settings: Settings = {
    side, config,
    pin: pinOf(flags, file, readPin),
    workers: workerCount(pick('workers')),
    iceServers: pick('iceServers') ?? [],
    iceBind: pick('iceBind'),
    iceRelayOnly: pick('iceRelayOnly') ?? false,
    icePortRange: pick('icePortRange'),
    fallback: pick('fallback') ?? true,
    mtu: pick('mtu'),
    lanes: pick('lanes') ?? DEFAULT_BULK_LANES,
    rendezvous: pick('rendezvous'),
    window: pick('window'),
    keepalive: pick('keepalive') ?? defaultConfig.keepaliveMs,
    resumeTimeout: pick('resumeTimeout') ?? defaultConfig.resumeTimeoutMs,
    logLevel: pick('logLevel') ?? 'info',
    logFormat: pick('logFormat') ?? 'text',
    metrics: pick('metrics'),
    quiet: pick('quiet') ?? false,
    pidFile: pick('pidFile'),
    // a host that registers at a relay listens only when told to
    listen: pick('listen') ?? (pick('rendezvous') === undefined ? DEFAULT_LISTEN : undefined),
    rendezvousId: pick('rendezvousId'),
    tls: tlsCert && tlsKey ? { cert: tlsCert, key: tlsKey } : undefined,
    services,
    connect: pick('connect'),
    code: flags.code !== undefined ? { value: flags.code, from: 'flag' } : process.env.TUNNEL_CODE ? { value: process.env.TUNNEL_CODE, from: 'env' } : file.code !== undefined ? { value: file.code, from: 'file' } : undefined,
    ca: pick('ca'),
    forwards: [...forwards.values()],
  };
  if (settings.window !== undefined && settings.window < 64 * 1024) throw tunnelError('BAD_FLAG', `window must be at least 64KiB (one full packet), got ${settings.window} bytes`);
  if (side === 'host' && settings.rendezvousId !== undefined && settings.rendezvous === undefined) throw tunnelError('BAD_FLAG', 'rendezvous-id goes with --rendezvous URL');
  if (settings.keepalive < 10) throw tunnelError('BAD_FLAG', `keepalive must be at least 10 ms, got ${settings.keepalive}`);
  const where = config ? ` (flags or ${config})` : ' (see tunnel ' + side + ' --help)';
  if (side === 'host' && Object.keys(services).length === 0) throw tunnelError('BAD_FLAG', `at least one service is needed: --expose NAME=HOST:PORT or [services]${where}`);
  if (side === 'client') {
    if (settings.rendezvous !== undefined && settings.connect !== undefined) throw tunnelError('BAD_FLAG', 'give --connect URL or --rendezvous URL --code CODE, not both');
    if (settings.rendezvous !== undefined && settings.code === undefined) throw tunnelError('BAD_FLAG', '--rendezvous needs the host\'s code: --code CODE (or TUNNEL_CODE)');
    if (settings.rendezvous === undefined && !settings.connect) throw tunnelError('BAD_FLAG', `--connect ws://HOST:PORT (or --rendezvous URL --code CODE) is needed${where}`);
    if (!settings.pin && settings.rendezvous === undefined) throw tunnelError('BAD_FLAG', 'the host\'s PIN is needed: --pin PIN, --pin-file PATH, TUNNEL_PIN, or pin / pin-file in the config file');
    if (settings.forwards.length === 0) throw tunnelError('BAD_FLAG', `at least one forward is needed: --forward [ADDR:]PORT=NAME or [forwards]${where}`);
  }
  return settings;
}

export const forwardKey = (f: { host: string; port: number }) => `${f.host.includes(':') ? `[${f.host}]` : f.host}:${f.port}`;

function pinOf(flags: Said, file: Said, readPin: boolean): Settings['pin'] {
  const read = (p: string, what: string) => (readPin ? readFlagFile(p, what).toString('utf8').trim() : '');
  if (flags.pin !== undefined && flags.pinFile !== undefined) throw tunnelError('BAD_FLAG', 'give --pin or --pin-file, not both');
  if (file.pin !== undefined && file.pinFile !== undefined) throw tunnelError('BAD_CONFIG', 'the config file gives both pin and pin-file; keep one');
  if (flags.pin !== undefined) return { value: flags.pin, from: 'flag' };
  if (flags.pinFile !== undefined) return { value: read(flags.pinFile, '--pin-file'), from: 'flag-file', path: flags.pinFile };
  if (process.env.TUNNEL_PIN) return { value: process.env.TUNNEL_PIN, from: 'env' };
  if (file.pin !== undefined) return { value: file.pin, from: 'file' };
  if (file.pinFile !== undefined) return { value: read(file.pinFile, 'pin-file'), from: 'file-file', path: file.pinFile };
  return undefined;
}
