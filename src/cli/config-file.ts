// The config file (`--config FILE`, TOML, parsed by smol-toml): every key is a flag's name, and says
// what that flag says (README, "Config file"). A bad file is one sentence naming the file, the line
// and the key; an unknown key is an error, never ignored. Paths in the file are relative to the file.
//
//   text ──smol-toml──▶ plain object ──schema: known key? right type?──▶ same checks as the flags ──▶ Said

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { tunnelError, TunnelError } from '../errors.js';
import { checkServiceName, parseForward, parseHostPort } from '../address.js';
import { isLevel, isLogFormat } from '../shared/log.js';
import { parseDuration, parseSize } from './units.js';
import { parsePortRange } from '../webrtc/ice-servers.js';
import { MAX_BULK_LANES } from '../webrtc/channels.js';
import type { Said, Side } from './settings.js';

type Kind = 'string' | 'integer' | 'boolean' | 'strings' | 'size' | 'duration' | 'table';

/** Every key the file may hold, its TOML type, and which side reads it. */
const SCHEMA: Record<string, { kind: Kind; side?: Side }> = {
  pin: { kind: 'string' },
  'pin-file': { kind: 'string' },
  workers: { kind: 'integer' },
  'ice-servers': { kind: 'strings' },
  'ice-bind': { kind: 'string' },
  'ice-relay-only': { kind: 'boolean' },
  'ice-port-range': { kind: 'string' },
  fallback: { kind: 'boolean' },
  mtu: { kind: 'integer' },
  lanes: { kind: 'integer' },
  rendezvous: { kind: 'string' },
  window: { kind: 'size' },
  keepalive: { kind: 'duration' },
  'resume-timeout': { kind: 'duration' },
  'log-level': { kind: 'string' },
  'log-format': { kind: 'string' },
  metrics: { kind: 'string' },
  quiet: { kind: 'boolean' },
  'pid-file': { kind: 'string' },
  listen: { kind: 'string', side: 'host' },
  'rendezvous-id': { kind: 'string', side: 'host' },
  'tls-cert': { kind: 'string', side: 'host' },
  'tls-key': { kind: 'string', side: 'host' },
  services: { kind: 'table', side: 'host' },
  connect: { kind: 'string', side: 'client' },
  code: { kind: 'string', side: 'client' },
  ca: { kind: 'string', side: 'client' },
  forwards: { kind: 'table', side: 'client' },
};

export function configKeys(side: Side): string[] {
  return Object.keys(SCHEMA).filter((k) => (SCHEMA[k]?.side ?? side) === side);
}

/** Reads and checks `file` for `side`; throws BAD_CONFIG naming the file, the line and the key. */
export function readConfigFile(file: string, side: Side): Said {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw tunnelError('BAD_CONFIG', `cannot read the config file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseConfig(text, file, side);
}

/** The same, from the file's text (the unit tests call it directly). */
export function parseConfig(text: string, file: string, side: Side): Said {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const reason = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    throw tunnelError('BAD_CONFIG', `${file}, line ${err.line}: not valid TOML: ${reason}`);
  }
  const fail = (keyPath: string[], message: string): never => {
    const line = lineOf(text, keyPath);
    throw tunnelError('BAD_CONFIG', `${file}${line ? `, line ${line}` : ''}: ${message}`);
  };
  const dir = path.dirname(path.resolve(file));
  const said: Said = {};
  for (const [key, value] of Object.entries(doc)) {
    const spec = SCHEMA[key];
    if (!spec || (spec.side ?? side) !== side) {
      const where = spec ? ` (it is a ${spec.side} setting)` : '';
      fail([key], `unknown key '${key}'${where}; a ${side} config knows ${configKeys(side).join(', ')}`);
    }
    try {
      apply(said, key, checkType(key, value, spec?.kind ?? 'string'), dir);
    } catch (err) {
      if (err instanceof KeyError) fail(err.keyPath, err.message);
      if (err instanceof TunnelError || err instanceof RangeError) fail([key], `key '${key}': ${err.message.replace(/^[\w.-]+: /, '')}`);
      throw err;
    }
  }
  return said;
}

/** A type error at a key inside a table. */
class KeyError extends Error {
  readonly keyPath: string[];
  constructor(keyPath: string[], message: string) {
    super(message);
    this.keyPath = keyPath;
  }
}

type Checked = string | number | boolean | string[] | Record<string, string>;

function checkType(key: string, value: unknown, kind: Kind): Checked {
  const wrong = (want: string): never => { throw new KeyError([key], `key '${key}' must be ${want}, got ${describe(value)}`); };
  switch (kind) {
    case 'string': return typeof value === 'string' ? value : wrong('a string');
    case 'boolean': return typeof value === 'boolean' ? value : wrong('true or false');
    case 'integer': return typeof value === 'number' && Number.isInteger(value) ? value : wrong('an integer');
    case 'size': case 'duration':
      if (typeof value === 'number' && Number.isInteger(value)) return value;
      return typeof value === 'string' ? value : wrong(kind === 'size' ? 'bytes or a size such as "4MiB"' : 'milliseconds or a duration such as "1s"');
    case 'strings':
      if (!Array.isArray(value)) return wrong('an array of strings');
      value.forEach((v) => { if (typeof v !== 'string') wrong('an array of strings'); });
      return value as string[];
    case 'table': {
      if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Date) return wrong('a table');
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw new KeyError([key, k], `key '${key}.${k}' must be a string, got ${describe(v)}`);
        out[k] = v;
      }
      return out;
    }
  }
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (typeof value === 'object' && value !== null) return 'a table';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** The same checks the flags get, then into `said`. */
function apply(said: Said, key: string, value: Checked, dir: string): void {
  const str = () => value as string;
  const file = () => path.resolve(dir, str());
  switch (key) {
    case 'pin': said.pin = str(); break;
    case 'pin-file': said.pinFile = file(); break;
    case 'workers': said.workers = value as number; break;
    case 'ice-servers': said.iceServers = value as string[]; break;
    case 'ice-bind': said.iceBind = str(); break;
    case 'ice-relay-only': said.iceRelayOnly = value as boolean; break;
    case 'ice-port-range': said.icePortRange = parsePortRange(str()); break;
    case 'fallback': said.fallback = value as boolean; break;
    case 'mtu': said.mtu = value as number; break;
    case 'rendezvous': said.rendezvous = str(); break;
    case 'rendezvous-id': said.rendezvousId = str(); break;
    case 'code': said.code = str(); break;
    case 'window': said.window = typeof value === 'number' ? value : parseSize(str()); break;
    case 'keepalive': said.keepalive = typeof value === 'number' ? value : parseDuration(str()); break;
    case 'resume-timeout': said.resumeTimeout = typeof value === 'number' ? value : parseDuration(str()); break;
    case 'log-level':
      if (!isLevel(str())) throw new RangeError(`must be error, warn, info or debug, got '${str()}'`);
      said.logLevel = str() as Said['logLevel'];
      break;
    case 'log-format':
      if (!isLogFormat(str())) throw new RangeError(`must be text or json, got '${str()}'`);
      said.logFormat = str() as Said['logFormat'];
      break;
    case 'metrics': said.metrics = parseHostPort(str(), 'metrics', '127.0.0.1'); break;
    case 'quiet': said.quiet = value as boolean; break;
    case 'pid-file': said.pidFile = file(); break;
    case 'listen': parseHostPort(str(), 'listen'); said.listen = str(); break;
    case 'tls-cert': said.tlsCert = file(); break;
    case 'tls-key': said.tlsKey = file(); break;
    case 'ca': said.ca = file(); break;
    case 'lanes':
      if ((value as number) < 1 || (value as number) > MAX_BULK_LANES) throw new RangeError(`must be from 1 to ${MAX_BULK_LANES}, got ${String(value)}`);
      said.lanes = value as number;
      break;
    case 'connect':
      if (!/^wss?:\/\//.test(str())) throw new RangeError(`must be a ws:// or wss:// URL, got '${str()}'`);
      said.connect = str();
      break;
    case 'services': {
      said.services = {};
      for (const [name, address] of Object.entries(value as Record<string, string>)) {
        try {
          checkServiceName(name, 'services');
          const target = parseHostPort(address, 'services');
          if (target.port === 0) throw new RangeError('needs a port other than 0');
          said.services[name] = target;
        } catch (err) {
          throw new KeyError(['services', name], `key 'services.${name}': ${(err as Error).message.replace(/^services: /, '')}`);
        }
      }
      break;
    }
    case 'forwards': {
      said.forwards = [];
      for (const [listen, service] of Object.entries(value as Record<string, string>)) {
        try {
          said.forwards.push(parseForward(`${listen}=${service}`));
        } catch (err) {
          throw new KeyError(['forwards', listen], `key 'forwards."${listen}"': ${(err as Error).message.replace(/^--forward: /, '')}`);
        }
      }
      break;
    }
  }
}

// ---- where a key is ----

/** The table path a header line names: "[a.b]" -> ['a', 'b']; "[[a]]" -> ['a']. */
function headerPath(line: string): string[] | null {
  const m = /^\s*\[\[?\s*(.+?)\s*\]\]?\s*(?:#.*)?$/.exec(line);
  return m?.[1] ? splitKey(m[1]) : null;
}

/** "a.\"b c\".d" -> ['a', 'b c', 'd'] (bare and quoted key parts). */
function splitKey(text: string): string[] {
  const parts: string[] = [];
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*(?:\.|$)/y;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    parts.push(m[1] ?? m[2] ?? m[3] ?? '');
    if (re.lastIndex >= text.length) break;
  }
  return parts;
}

/** The 1-based line where `keyPath` is set (or its table starts, or the closest key before), if found. */
export function lineOf(text: string, keyPath: string[]): number | undefined {
  const lines = text.split(/\r?\n/);
  let table: string[] = [];
  let best: { line: number; depth: number } | undefined;
  const consider = (full: string[], line: number) => {
    let depth = 0;
    while (depth < full.length && depth < keyPath.length && full[depth] === keyPath[depth]) depth++;
    if (depth === 0 || depth < full.length) return; // not on the way to the key
    if (!best || depth > best.depth) best = { line, depth };
  };
  lines.forEach((line, i) => {
    const header = headerPath(line);
    if (header) {
      table = header;
      consider(table, i + 1);
      return;
    }
    const m = /^\s*((?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_.\s-])+?)\s*=/.exec(line);
    if (m?.[1]) consider([...table, ...splitKey(m[1])], i + 1);
  });
  return best?.line;
}
