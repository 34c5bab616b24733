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
import { parse, integer, readFlagFile, readPin, readCode, dataPlane, logLevel, ice } from './flags.js';
import { describePath, shortPath } from '../webrtc/path.js';
import type { PeerInfo } from '../host.js';
import { runBench } from './run-bench.js';

const common = {
  pin: { type: 'string' },
  'pin-file': { type: 'string' },
  workers: { type: 'string' },
  'ice-server': { type: 'string', multiple: true },
  'ice-bind': { type: 'string' },
  'ice-relay-only': { type: 'boolean' },
  'ice-port-range': { type: 'string' },
  'no-fallback': { type: 'boolean' },
  rendezvous: { type: 'string' },
  window: { type: 'string' },
  keepalive: { type: 'string' },
  'log-level': { type: 'string' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

/** The host's status-line paths: how many clients take each kind ("direct/host 2, websocket 1"). */
function hostPaths(peers: PeerInfo[]): string {
  const count = new Map<string, number>();
  for (const p of peers) count.set(shortPath(p.path), (count.get(shortPath(p.path)) ?? 0) + 1);
  return [...count].map(([kind, n]) => `${kind} ${n}`).join(', ') || '-';
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
  const { values } = parse(() => parseArgs({ args, strict: true, options: { ...common, listen: { type: 'string' }, expose: { type: 'string', multiple: true }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, 'rendezvous-id': { type: 'string' } } }));
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
  if (values['rendezvous-id'] !== undefined && values.rendezvous === undefined) throw tunnelError('BAD_FLAG', '--rendezvous-id goes with --rendezvous URL');
  const handle = await startHost({
    tls, pin, services,
    listen: values.listen,
    rendezvous: values.rendezvous,
    rendezvousId: values['rendezvous-id'],
    workers: integer(values.workers, '--workers', 0),
    ...ice(values),
    logLevel: level,
    log: createLogger('host', level),
    config: dataPlane(values),
    onPeer: (p) => process.stdout.write(`client ${p.peer} from ${p.address}: path: ${describePath(p.path)}\n`),
  });
  if (handle.url) {
    process.stdout.write(`tunnel host listening on ${handle.url}\n`);
    process.stdout.write(`PIN: ${handle.pin}${pin === undefined ? ' (generated; pass --pin or --pin-file to choose one)' : ''}\n`);
  }
  if (handle.code) {
    process.stdout.write(`tunnel host registered at the rendezvous relay ${values.rendezvous ?? ''}\n`);
    process.stdout.write(`code: ${handle.code}\n`);
  }
  for (const [name, s] of Object.entries(services)) process.stdout.write(`exposing ${name} -> ${s.host}:${s.port}\n`);
  const stopStatus = values.quiet ? () => {} : startStatusLine({ ...handle, path: () => hostPaths(handle.paths()) });
  return untilSignal(() => { stopStatus(); return handle.close(); });
}

async function client(args: string[]): Promise<number> {
  const { values } = parse(() => parseArgs({ args, strict: true, options: { ...common, connect: { type: 'string' }, forward: { type: 'string', multiple: true }, ca: { type: 'string' }, code: { type: 'string' } } }));
  if (values.help) { process.stdout.write(CLIENT_HELP); return 0; }
  const code = readCode(values);
  if (values.rendezvous !== undefined && values.connect !== undefined) throw tunnelError('BAD_FLAG', 'give --connect URL or --rendezvous URL --code CODE, not both');
  if (values.rendezvous !== undefined && code === undefined) throw tunnelError('BAD_FLAG', '--rendezvous needs the host\'s code: --code CODE (or TUNNEL_CODE)');
  if (values.rendezvous === undefined && !values.connect) throw tunnelError('BAD_FLAG', '--connect ws://HOST:PORT (or --rendezvous URL --code CODE) is needed (see tunnel client --help)');
  if (values.connect !== undefined && !/^wss?:\/\//.test(values.connect)) throw tunnelError('BAD_FLAG', `--connect must be a ws:// or wss:// URL, got '${values.connect}'`);
  const pin = readPin(values);
  if (pin === undefined && values.rendezvous === undefined) throw tunnelError('BAD_FLAG', 'the host\'s PIN is needed: --pin PIN, --pin-file PATH or TUNNEL_PIN');
  const forwards = (values.forward ?? []).map(parseForward);
  if (forwards.length === 0) throw tunnelError('BAD_FLAG', 'at least one --forward [ADDR:]PORT=NAME is needed (see tunnel client --help)');
  const level = logLevel(values['log-level']);
  let fatal: (code: number) => void = () => {};
  const handle = await startClient({
    ca: values.ca ? readFlagFile(values.ca, '--ca') : undefined,
    connect: values.connect,
    rendezvous: values.rendezvous !== undefined && code !== undefined ? { url: values.rendezvous, code } : undefined,
    pin,
    forwards,
    workers: integer(values.workers, '--workers', 0),
    ...ice(values),
    logLevel: level,
    log: createLogger('client', level),
    config: dataPlane(values),
    onFatal: (err) => {
      process.stderr.write(`tunnel client: ${err.message}\n`);
      fatal(1);
    },
    onReconnect: (path) => process.stdout.write(`path: ${describePath(path)}\n`),
  });
  process.stdout.write(`path: ${describePath(handle.path())}\n`);
  for (const f of forwards) process.stdout.write(`forwarding ${f.host}:${f.port} -> ${f.service}\n`);
  const stopStatus = values.quiet ? () => {} : startStatusLine({ stats: () => handle.stats(), peers: () => (handle.connected() ? 1 : 0), path: () => shortPath(handle.path(), true) });
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
