// Plain log lines on stderr, one per event: "12:00:01.234 host warn message key=value".
// A library was considered (pino): its JSON lines need pino-pretty and a transport thread to read
// well in a terminal, which is heavier than the whole of this file; a CLI wants plain lines.

export const LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type Level = (typeof LEVELS)[number];

export interface Logger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}

export function isLevel(value: string): value is Level {
  return (LEVELS as readonly string[]).includes(value);
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

export function createLogger(name: string, level: string = 'info', write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const max = LEVELS.indexOf(isLevel(level) ? level : 'info');
  const at = (lvl: Level) => (msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS.indexOf(lvl) > max) return;
    const time = new Date().toISOString().slice(11, 23);
    write(`${time} ${name} ${lvl} ${msg}${format(fields)}\n`);
  };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}
