// The CLI: flags in, one of startHost / startClient / the demo / the benchmark out. A thin layer:
// everything it does is an exported function that tests and benchmarks call too.

import { parseArgs } from 'node:util';
import { startHost } from '../host.js';
import { startClient } from '../client.js';
import { parseExpose, parseForward } from '../address.js';
import { TunnelError, tunnelError } from '../errors.js';
import { createLogger } from '../shared/log.js';
import type { Service } from '../shared/thread-messages.js';
import { releaseDataChannelLibrary } from '../webrtc/peer.js';
import { startStatusLine } from './status-line.js';
import { HOST_HELP, CLIENT_HELP, MAIN_HELP } from './help.js';
import { parse, integer, readFlagFile, readPin, dataPlane, logLevel } from './flags.js';
import { runBench } from './run-bench.js';

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
  const pin = readPin(values);
  const handle = await startHost({
    tls, pin, services,
    listen: values.listen,
    workers: integer(values.workers, '--workers', 0),
    iceServers: values['ice-server'],
    iceBind: values['ice-bind'],
    logLevel: level,
    log: createLogger('host', level),
    config: dataPlane(values),
  });
  process.stdout.write(`tunnel host listening on ${handle.url}\n`);
  process.stdout.write(`PIN: ${handle.pin}${pin === undefined ? ' (generated; pass --pin or --pin-file to choose one)' : ''}\n`);
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
      case 'bench': return await runBench(args);
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
