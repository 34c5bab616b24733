// The CLI: flags (and a config file) in, one of startHost / startClient / the demo / the benchmark
// out. A thin layer: everything it does is an exported function that tests and benchmarks call too.

import { parseArgs } from 'node:util';
import { TunnelError, tunnelError, EXIT_CONFIG } from '../errors.js';
import { releaseDataChannelLibrary } from '../webrtc/peer.js';
import { VERSION } from '../version.js';
import { jsonRecord } from '../shared/log.js';
import { PROTOCOL_VERSION } from '../signaling/codec.js';
import { HOST_HELP, CLIENT_HELP, MAIN_HELP } from './help.js';
import { parse, saidByFlags } from './flags.js';
import { settingsFor } from './settings.js';
import { renderConfig } from './print-config.js';
import { runHost, runClient } from './run-side.js';
import { sendReload } from './reload.js';
import { runBench } from './run-bench.js';

const common = {
  config: { type: 'string' },
  'print-config': { type: 'boolean' },
  pin: { type: 'string' },
  'pin-file': { type: 'string' },
  workers: { type: 'string' },
  'ice-server': { type: 'string', multiple: true },
  'ice-bind': { type: 'string' },
  'ice-relay-only': { type: 'boolean' },
  'ice-port-range': { type: 'string' },
  'no-fallback': { type: 'boolean' },
  mtu: { type: 'string' },
  lanes: { type: 'string' },
  rendezvous: { type: 'string' },
  window: { type: 'string' },
  keepalive: { type: 'string' },
  'resume-timeout': { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  metrics: { type: 'string' },
  'pid-file': { type: 'string' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

const HOST_FLAGS = { ...common, listen: { type: 'string' }, expose: { type: 'string', multiple: true }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, 'rendezvous-id': { type: 'string' } } as const;
const CLIENT_FLAGS = { ...common, connect: { type: 'string' }, forward: { type: 'string', multiple: true }, ca: { type: 'string' }, code: { type: 'string' } } as const;

async function side(which: 'host' | 'client', args: string[]): Promise<number> {
  const { values } = which === 'host'
    ? parse(() => parseArgs({ args, strict: true, options: HOST_FLAGS }))
    : parse(() => parseArgs({ args, strict: true, options: CLIENT_FLAGS }));
  if (values.help) { process.stdout.write(which === 'host' ? HOST_HELP : CLIENT_HELP); return 0; }
  const flags = saidByFlags(values);
  if (values['print-config']) {
    process.stdout.write(renderConfig(settingsFor(which, flags, values.config, { readPin: false })));
    return 0;
  }
  const settings = settingsFor(which, flags, values.config);
  try {
    return await (which === 'host' ? runHost(settings, flags) : runClient(settings, flags));
  } catch (err) {
    // with --log-format json a start-up failure is a JSON record too (journald, Loki), still one line
    if (settings.logFormat === 'json') throw new Reported(err, jsonRecord(new Date(), 'error', which, (err as Error).message, { code: (err as TunnelError).code }));
    throw err;
  }
}

/** A failure already written as it should be: main() prints `line` instead of its plain sentence. */
class Reported extends Error {
  readonly cause: unknown;
  readonly line: string;
  constructor(cause: unknown, line: string) {
    super((cause as Error).message);
    this.cause = cause;
    this.line = line;
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case 'host': case 'client': return await side(command, args);
      case 'reload': return sendReload(args);
      case 'demo': return await (await import('./demo.js')).demo(args);
      case 'bench': return await runBench(args);
      case '--version': case '-v': case 'version':
        process.stdout.write(`tunnel ${VERSION} (datachannel-tunnel; protocol ${PROTOCOL_VERSION}; Node ${process.versions.node})\n`);
        return 0;
      case undefined: case '--help': case '-h': case 'help':
        process.stdout.write(MAIN_HELP);
        return command === undefined ? 1 : 0;
      default:
        throw tunnelError('BAD_FLAG', `unknown command '${command}' (try tunnel --help)`);
    }
  } catch (caught) {
    // start-up failures are one plain sentence (or one JSON record), never a stack trace
    const err = caught instanceof Reported ? caught.cause : caught;
    const known = err instanceof TunnelError;
    process.stderr.write(caught instanceof Reported ? caught.line : `tunnel${command ? ` ${command}` : ''}: ${(err as Error).message}\n`);
    if (!known && process.env.TUNNEL_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    releaseDataChannelLibrary();
    if (!known) return 1;
    return err.code === 'BAD_FLAG' || err.code === 'BAD_CONFIG' ? EXIT_CONFIG : 2;
  }
}
