// The CLI: flags in, one of startHost / startClient / the demo / the benchmark out. A thin layer:
// everything it does is an exported function that tests and benchmarks call too.

import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { startHost, defaultWorkers } from './host.js';
import { startClient } from './client.js';
import { parseExpose, parseForward } from './address.js';
import { TunnelError, tunnelError } from './errors.js';
import { isLevel, createLogger } from './log.js';
import { releaseDataChannelLibrary } from './peer.js';
import type { Service } from './messages.js';
import type { DataPlaneConfig } from './config.js';
import { startStatusLine } from './status.js';

const HOST_HELP = `Usage: tunnel host [options] --expose NAME=HOST:PORT [--expose ...]

Runs the signaling server and exposes the named local TCP services to clients that know the PIN.

  --expose NAME=HOST:PORT  a service clients may reach by NAME (repeatable; nothing else is ever dialed)
  --listen ADDR:PORT       signaling address (default 127.0.0.1:8765)
  --pin PIN                the PIN clients must know (default: a random 8-digit PIN, printed)
  --pin-file PATH          read the PIN from a file (or set TUNNEL_PIN), so it does not show in ps
  --tls-cert FILE          serve wss:// with this certificate (PEM), together with --tls-key FILE
  --tls-key FILE           the certificate's private key (PEM)
  --workers N              worker threads (default ${defaultWorkers()}, the available parallelism; 0 = main thread only)
  --ice-server URL         STUN/TURN server, e.g. stun:stun.example.org:3478 (repeatable)
  --ice-bind ADDR          bind ICE to ADDR and use only candidates on it (127.0.0.1 keeps traffic on loopback)
  --window BYTES           per-stream flow-control window (default 1048576)
  --keepalive MS           keepalive interval (default 1000); a peer silent for 5 intervals is gone
  --log-level LEVEL        error, warn, info (default) or debug
  --quiet                  no live status line on the terminal
  --help                   this text
`;

const CLIENT_HELP = `Usage: tunnel client --connect ws://HOST:PORT --pin PIN --forward [ADDR:]PORT=NAME [options]

Connects to a host and forwards local TCP ports to the services it exposes.

  --connect URL            the host's signaling URL, e.g. ws://127.0.0.1:8765 or wss://host.example:8765
  --ca FILE                trust this CA certificate (PEM) for a wss:// host
  --pin PIN                the host's PIN (or --pin-file PATH, or TUNNEL_PIN in the environment)
  --pin-file PATH          read the PIN from a file
  --forward [ADDR:]PORT=NAME  listen on ADDR:PORT (ADDR defaults to 127.0.0.1; PORT must not be 0)
                           and carry each connection to service NAME (repeatable)
  --workers N              worker threads (default ${defaultWorkers()}; 0 = main thread only)
  --ice-server URL         STUN/TURN server (repeatable)
  --ice-bind ADDR          bind ICE to ADDR and use only candidates on it
  --window BYTES           per-stream flow-control window (default 1048576)
  --keepalive MS           keepalive interval (default 1000); a peer silent for 5 intervals is gone
  --log-level LEVEL        error, warn, info (default) or debug
  --quiet                  no live status line on the terminal
  --help                   this text
`;

const MAIN_HELP = `Usage: tunnel <command> [options]

Commands:
  host     expose local TCP services to clients over WebRTC     (tunnel host --help)
  client   forward local ports to a host's services              (tunnel client --help)
  demo     a host, an echo service and a client on loopback, a byte-exact check and a quick benchmark
  bench    the benchmark suite                                   (tunnel bench --help)
`;

const common = {
  pin: { type: 'string' },
  'pin-file': { type: 'string' },
  workers: { type: 'string' },
  'ice-server': { type: 'string', multiple: true },
  'ice-bind': { type: 'string' },
  window: { type: 'string' },
  keepalive: { type: 'string' },
  'log-level': { type: 'string' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

function parse<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw tunnelError('BAD_FLAG', (err as Error).message.split('\n')[0] ?? 'bad flag');
  }
}

function integer(text: string | undefined, flag: string, min: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min) throw tunnelError('BAD_FLAG', `${flag} must be an integer >= ${min}, got '${text}'`);
  return Number(text);
}

function readPin(values: { pin?: string | undefined; 'pin-file'?: string | undefined }): string | undefined {
  if (values.pin !== undefined && values['pin-file'] !== undefined) throw tunnelError('BAD_FLAG', 'give --pin or --pin-file, not both');
  if (values['pin-file'] !== undefined) {
    try {
      return readFileSync(values['pin-file'], 'utf8').trim();
    } catch (err) {
      throw tunnelError('BAD_FLAG', `--pin-file: cannot read ${values['pin-file']}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return values.pin ?? (process.env.TUNNEL_PIN || undefined);
}

function dataPlane(values: { window?: string | undefined; keepalive?: string | undefined }): Partial<DataPlaneConfig> {
  const window = integer(values.window, '--window', 64 * 1024);
  const keepalive = integer(values.keepalive, '--keepalive', 10);
  return { ...(window ? { windowBytes: window } : {}), ...(keepalive ? { keepaliveMs: keepalive, peerTimeoutMs: 5 * keepalive } : {}) };
}

function readFlagFile(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw tunnelError('BAD_FLAG', `${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function logLevel(value: string | undefined): string {
  if (value !== undefined && !isLevel(value)) throw tunnelError('BAD_FLAG', `--log-level must be error, warn, info or debug, got '${value}'`);
  return value ?? 'info';
}

/** Runs until SIGINT/SIGTERM; a second signal exits at once. */
function untilSignal(close: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = () => {
      if (stopping) process.exit(130);
      stopping = true;
      const force = setTimeout(() => process.exit(0), 2000);
      force.unref();
      close().finally(() => {
        releaseDataChannelLibrary();
        resolve(0);
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

async function host(args: string[]): Promise<number> {
  const { values } = parse(() => parseArgs({ args, strict: true, options: { ...common, listen: { type: 'string' }, expose: { type: 'string', multiple: true }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' } } }));
  if (values.help) { process.stdout.write(HOST_HELP); return 0; }
  const services: Record<string, Service> = {};
  for (const text of values.expose ?? []) {
    const { name, host, port } = parseExpose(text);
    if (Object.hasOwn(services, name)) throw tunnelError('BAD_FLAG', `--expose: service '${name}' is named twice`);
    services[name] = { host, port };
  }
  if (Object.keys(services).length === 0) throw tunnelError('BAD_FLAG', 'at least one --expose NAME=HOST:PORT is needed (see tunnel host --help)');
  const level = logLevel(values['log-level']);
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw tunnelError('BAD_FLAG', '--tls-cert and --tls-key go together');
  const tls = values['tls-cert'] && values['tls-key'] ? { cert: readFlagFile(values['tls-cert'], '--tls-cert'), key: readFlagFile(values['tls-key'], '--tls-key') } : undefined;
  const handle = await startHost({
    tls,
    pin: readPin(values),
    listen: values.listen,
    services,
    workers: integer(values.workers, '--workers', 0),
    iceServers: values['ice-server'],
    iceBind: values['ice-bind'],
    logLevel: level,
    log: createLogger('host', level),
    config: dataPlane(values),
  });
  const generated = readPin(values) === undefined;
  process.stdout.write(`tunnel host listening on ${handle.url}\n`);
  process.stdout.write(`PIN: ${handle.pin}${generated ? ' (generated; pass --pin or --pin-file to choose one)' : ''}\n`);
  for (const [name, s] of Object.entries(services)) process.stdout.write(`exposing ${name} -> ${s.host}:${s.port}\n`);
  const stopStatus = values.quiet ? () => {} : startStatusLine(handle);
  return untilSignal(() => { stopStatus(); return handle.close(); });
}

async function client(args: string[]): Promise<number> {
  const { values } = parse(() => parseArgs({ args, strict: true, options: { ...common, connect: { type: 'string' }, forward: { type: 'string', multiple: true }, ca: { type: 'string' } } }));
  if (values.help) { process.stdout.write(CLIENT_HELP); return 0; }
  if (!values.connect) throw tunnelError('BAD_FLAG', '--connect ws://HOST:PORT is needed (see tunnel client --help)');
  if (!/^wss?:\/\//.test(values.connect)) throw tunnelError('BAD_FLAG', `--connect must be a ws:// or wss:// URL, got '${values.connect}'`);
  const pin = readPin(values);
  if (pin === undefined) throw tunnelError('BAD_FLAG', 'the host\'s PIN is needed: --pin PIN, --pin-file PATH or TUNNEL_PIN');
  const forwards = (values.forward ?? []).map(parseForward);
  if (forwards.length === 0) throw tunnelError('BAD_FLAG', 'at least one --forward [ADDR:]PORT=NAME is needed (see tunnel client --help)');
  const level = logLevel(values['log-level']);
  let fatal: (code: number) => void = () => {};
  const handle = await startClient({
    ca: values.ca ? readFlagFile(values.ca, '--ca') : undefined,
    connect: values.connect,
    pin,
    forwards,
    workers: integer(values.workers, '--workers', 0),
    iceServers: values['ice-server'],
    iceBind: values['ice-bind'],
    logLevel: level,
    log: createLogger('client', level),
    config: dataPlane(values),
    onFatal: (err) => {
      process.stderr.write(`tunnel client: ${err.message}\n`);
      fatal(1);
    },
  });
  for (const f of forwards) process.stdout.write(`forwarding ${f.host}:${f.port} -> ${f.service}\n`);
  const stopStatus = values.quiet ? () => {} : startStatusLine({ stats: () => handle.stats(), peers: () => (handle.connected() ? 1 : 0) });
  return Promise.race([
    untilSignal(() => { stopStatus(); return handle.close(); }),
    new Promise<number>((resolve) => {
      fatal = (code) => void handle.close().finally(() => { releaseDataChannelLibrary(); resolve(code); });
    }),
  ]);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case 'host': return await host(args);
      case 'client': return await client(args);
      case 'demo': return await (await import('./demo.js')).demo(args);
      case 'bench': return await (await import('../bench/run.js')).bench(args);
      case undefined: case '--help': case '-h': case 'help':
        process.stdout.write(MAIN_HELP);
        return command === undefined ? 1 : 0;
      default:
        throw tunnelError('BAD_FLAG', `unknown command '${command}' (try tunnel --help)`);
    }
  } catch (err) {
    // start-up failures are one plain sentence, never a stack trace
    const known = err instanceof TunnelError;
    process.stderr.write(`tunnel${command ? ` ${command}` : ''}: ${(err as Error).message}\n`);
    if (!known && process.env.TUNNEL_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    releaseDataChannelLibrary();
    return known ? 2 : 1;
  }
}
