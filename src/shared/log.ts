// Log records on stderr, one per line, in one of two formats:
//   text: "12:00:01.234 host warn message key=value"            (a terminal)
//   json: {"time":"2026-…Z","level":"warn","name":"host","msg":"message","key":"value"}   (journald, Loki)
// The JSON field names are stable: time (ISO 8601, UTC), level, name (host, client, host[0] for a
// shard), msg, then the record's own fields (a field named like one of those four is prefixed "_").
//
// A library was considered (pino): worker threads may import no package (test/unit/boundary.test.ts),
// the volume is a few records per stream at most, and JSON.stringify is all a JSON line needs; pino's
// strengths (asynchronous writing, transports) would cost a dependency in every thread for none of it.

export const LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type Level = (typeof LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface Logger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  /** Changes the level from now on (a configuration reload). */
  setLevel?(level: string): void;
}

export function isLevel(value: string): value is Level {
  return (LEVELS as readonly string[]).includes(value);
}

export function isLogFormat(value: string): value is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(value);
}

function format(fields: Record<string, unknown> | undefined): string {
  if (!fields) return '';
  let out = '';
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    out += ` ${k}=${/\s/.test(s) ? JSON.stringify(s) : s}`;
  }
  return out;
}

const RESERVED = new Set(['time', 'level', 'name', 'msg']);

/** One JSON record; exported for the tests. */
export function jsonRecord(time: Date, level: Level, name: string, msg: string, fields?: Record<string, unknown>): string {
  const record: Record<string, unknown> = { time: time.toISOString(), level, name, msg };
  if (fields) {
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      record[RESERVED.has(k) ? `_${k}` : k] = typeof v === 'bigint' ? String(v) : v;
    }
  }
  return `${JSON.stringify(record)}\n`;
}

export function createLogger(name: string, level: string = 'info', write: (line: string) => void = (l) => process.stderr.write(l), logFormat: LogFormat = 'text'): Logger {
  let max = LEVELS.indexOf(isLevel(level) ? level : 'info');
  const at = (lvl: Level) => (msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS.indexOf(lvl) > max) return;
    const now = new Date();
    if (logFormat === 'json') write(jsonRecord(now, lvl, name, msg, fields));
    else write(`${now.toISOString().slice(11, 23)} ${name} ${lvl} ${msg}${format(fields)}\n`);
  };
  return {
    error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'),
    setLevel: (next) => { if (isLevel(next)) max = LEVELS.indexOf(next); },
  };
}
